#include "host/crash_point.hpp"

#ifdef HOST_FAULT_INJECTION
#include <csignal>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>

namespace host {

void crash_point(const char* name) {
  static const std::string wanted = [] {
    const char* spec = std::getenv("HOST_CRASH_AT");
    return std::string(spec ? spec : "");
  }();
  if (wanted.empty()) return;
  auto colon = wanted.rfind(':');
  if (colon == std::string::npos || wanted.compare(0, colon, name) != 0) return;
  // Workers of one process reach the same points from their own threads.
  static std::mutex mutex;
  std::lock_guard<std::mutex> lock(mutex);
  static std::map<std::string, long> hits;
  if (++hits[name] == std::atol(wanted.c_str() + colon + 1)) std::raise(SIGKILL);
}

}  // namespace host
#endif
