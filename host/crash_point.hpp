#pragma once
// Fault injection for the crash-point sweep of the test suite. In a build with
// HOST_FAULT_INJECTION, HOST_CRASH_AT=NAME:N makes the process kill itself with
// SIGKILL the N-th time it reaches crash_point(NAME): a real kill -9 at an exact
// place, so that resume, re-run and revert can be proven from every one of them.
// HOST_FAIL_AT=NAME:N makes fail_point(NAME) true the N-th time it is reached, for
// failures a kill cannot make, such as a COMMIT that took effect but whose result
// the connection lost. Elsewhere both do nothing.

namespace host {

#ifdef HOST_FAULT_INJECTION
void crash_point(const char* name);
bool fail_point(const char* name);
#else
inline void crash_point(const char*) {}
inline bool fail_point(const char*) { return false; }
#endif

}  // namespace host
