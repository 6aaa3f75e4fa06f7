#include "host/crash_point.hpp"

#ifdef HOST_FAULT_INJECTION
#include <csignal>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>

namespace host {

namespace {

// Whether this is the N-th time `name` is reached, for `variable` = NAME:N.
bool reached_nth_time(const char* variable, const char* name) {
  const char* spec = std::getenv(variable);
  if (!spec || !*spec) return false;
  std::string wanted(spec);
  auto colon = wanted.rfind(':');
  if (colon == std::string::npos || wanted.compare(0, colon, name) != 0) return false;
  // Workers of one process reach the same points from their own threads.
  static std::mutex mutex;
  std::lock_guard<std::mutex> lock(mutex);
  static std::map<std::string, long> hits;
  return ++hits[std::string(variable) + "/" + name] == std::atol(wanted.c_str() + colon + 1);
}

}  // namespace

void crash_point(const char* name) {
  if (reached_nth_time("HOST_CRASH_AT", name)) std::raise(SIGKILL);
}

bool fail_point(const char* name) { return reached_nth_time("HOST_FAIL_AT", name); }

}  // namespace host
#endif
