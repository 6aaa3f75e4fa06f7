#pragma once
// How a run is asked to stop (RECIPE_API.md section 10, "Stopping"): SIGINT or
// SIGTERM in this process, or `host pause` / `host cancel` through the ledger.
// A first signal lets the batch in flight commit; a second one abandons it: the
// process marks the run paused if it can and exits 6 at once.
#include <atomic>
#include <functional>
#include <string>

namespace host {

enum class StopKind { none = 0, pause = 1, cancel = 2 };

// "pause" / "cancel" (the ledger's stop_request) or none.
StopKind stop_kind_from(const std::string& request);
const char* stop_status(StopKind kind);  // "paused" / "cancelled"

class StopSignal {
 public:
  // Installs the SIGINT/SIGTERM handlers for the rest of the process. `abandon`
  // runs on a watcher thread after the second signal; it should mark the run
  // paused (quickly, or not at all) and must not return: it ends the process.
  static void install(std::function<void()> abandon);
  // Puts back the default handlers (the run is over; a signal now ends the process).
  static void uninstall();

  // What has been asked of this process so far: by a signal, or by request().
  static StopKind requested();
  // Records a stop asked for through the ledger; a cancel outranks a pause.
  static void request(StopKind kind);
  static bool by_signal();
  // Clears everything (tests run several runs in one process).
  static void reset();
};

// The handlers for as long as it lives: installed (with the stop state cleared)
// when made, the default ones back when it goes, however the run ends.
class StopSignalScope {
 public:
  explicit StopSignalScope(std::function<void()> abandon) {
    StopSignal::reset();
    StopSignal::install(std::move(abandon));
  }
  ~StopSignalScope() { StopSignal::uninstall(); }
  StopSignalScope(const StopSignalScope&) = delete;
  StopSignalScope& operator=(const StopSignalScope&) = delete;
};

}  // namespace host
