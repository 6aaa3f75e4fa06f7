#pragma once
// Fault injection for the crash-point sweep of the test suite. In a build with
// HOST_FAULT_INJECTION, HOST_CRASH_AT=NAME:N makes the process kill itself with
// SIGKILL the N-th time it reaches crash_point(NAME): a real kill -9 at an exact
// place, so that resume, re-run and revert can be proven from every one of them.
// Elsewhere crash_point() does nothing.

namespace host {

#ifdef HOST_FAULT_INJECTION
void crash_point(const char* name);
#else
inline void crash_point(const char*) {}
#endif

}  // namespace host
