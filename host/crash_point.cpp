#include "host/crash_point.hpp"

#ifdef HOST_FAULT_INJECTION
#include <csignal>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>

namespace host {

namespace {

std::string environment(const char* variable) {
  const char* value = std::getenv(variable);
  return value ? value : "";
}

// Whether this is the N-th time `name` is reached, for `wanted` = NAME:N (of the
// variable `variable`).
bool reached_nth_time(const std::string& wanted, const char* variable, const char* name) {
  if (wanted.empty()) return false;
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
  static const std::string wanted = environment("HOST_CRASH_AT");
  if (reached_nth_time(wanted, "HOST_CRASH_AT", name)) std::raise(SIGKILL);
}

bool fail_point(const char* name) {
  static const std::string wanted = environment("HOST_FAIL_AT");
  return reached_nth_time(wanted, "HOST_FAIL_AT", name);
}

}  // namespace host
#endif
