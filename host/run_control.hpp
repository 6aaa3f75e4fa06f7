#pragma once
// Watching and stopping a run from any machine, through the ledger alone
// (RECIPE_API.md section 10, "Status" and "Stopping"): `host status`, `host pause`
// and `host cancel`. The processes of the run read the request between batches;
// these commands never wait for them.
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "host/errors.hpp"

namespace host {

class Database;
class Ledger;

// The `host status --json` document of run `run_id`:
// { run_id, recipe, commit, status, stop_request, started_at, finished_at,
//   stats (section 9: the sum of the chunks' while the run goes on, runs.stats once ended),
//   progress: { rows_done, rows_total_estimate, rows_per_second, eta_seconds, throttled },
//   workers: [ { id, host, pid, chunk, last_seen } ] }.
// `eta_seconds` is null when unknown, and when the run is paused, cancelled or
// failed; 0 once it succeeded. `chunk` is the chunk a worker holds a live lease
// on, else null. Reads only, in one snapshot. Throws UsageError when the ledger
// holds no such run.
nlohmann::json run_status(Database& database, Ledger& ledger, const std::string& run_id);

// A few lines for people: the run, its progress line, its workers.
std::string describe_status(const nlohmann::json& status);

enum class StopRequest { pause, cancel };

// What request_stop() did.
struct StopOutcome {
  std::string run_id;
  std::string previous_status;  // running | paused
  std::string status;           // the status now: running (asked), paused, cancelled
  // True when no process was alive on the run, so the status was set here;
  // false when the request was recorded for the run's processes to act on.
  bool set_directly = false;
  std::string message;  // one line saying what was recorded
};

// Records a pause or cancel of run `run_id` in one transaction on `database`
// (which must have none open). When no process works on the run (neither of its
// advisory locks is held), sets the status at once (paused, or cancelled with
// its leases cleared); otherwise sets runs.stop_request for them. Cancelling a
// paused run ends it. Throws UsageError when the run does not exist or has ended.
StopOutcome request_stop(Database& database, Ledger& ledger, const std::string& run_id,
                         StopRequest request);

// `host status RUN_ID [--json]`.
ExitCode command_status(const std::string& run_id, const std::optional<std::string>& db,
                        const std::string& ledger_schema, bool json);
// `host pause RUN_ID` and `host cancel RUN_ID`: 0 once recorded.
ExitCode command_stop(const std::string& run_id, StopRequest request,
                      const std::optional<std::string>& db, const std::string& ledger_schema);

}  // namespace host
