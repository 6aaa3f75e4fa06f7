#pragma once
// One recipe run, as DESIGN.md's data flow: load, plan, scan in batches, run
// `each` per row (reads answered set-at-a-time), write per batch with the
// ledger, commit per mode, verify, report.
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "bindings/sandbox.hpp"
#include "host/errors.hpp"
#include "host/ledger.hpp"
#include "host/run_types.hpp"

namespace host {

// How a run treats a live database (RECIPE_API.md section 10).
struct OperatingOptions {
  int workers = 1;
  bool workers_given = false;  // resume keeps the recorded number unless given
  long long lease_seconds = 60;
  long long lock_timeout_ms = 2000;
  long long statement_timeout_ms = 30000;
  int retries = 10;
  std::optional<double> max_rate;          // rows scanned per second, this process
  std::optional<std::string> pause_when;   // overrides the recipe's pause_when
  long long target_batch_ms = 1000;
  std::string progress = "auto";           // auto | plain | off
};

struct RunOptions {
  std::string recipe_path;
  bool dry_run = false;
  std::optional<std::string> db;
  std::map<std::string, std::string> inputs;
  std::map<std::string, std::string> vars;
  Confidence min_confidence = Confidence::high;
  std::optional<long long> batch_size;
  std::optional<CommitMode> commit;
  std::vector<std::string> libs;
  std::vector<std::string> report_paths;
  std::optional<long long> limit;
  std::string ledger_schema;
  SandboxLimits limits;
  bool quiet = false;
  // Appends the run's audit events to this JSON Lines file when it finishes.
  std::string audit_file;
  // `host verify`: a dry run that fails (exit 3) if anything is left to change.
  bool expect_no_changes = false;
  // `host resume`: the run to continue (options then come from the ledger).
  std::string resume_run_id;
  // `host resume`: the schemas the run's names resolved in when it started.
  std::optional<std::string> search_path;
  OperatingOptions operating;
};

struct RunOutcome {
  ExitCode exit = ExitCode::ok;
  nlohmann::json report;
};

// Runs (or resumes) a recipe. Errors that stop the run are thrown as the
// exception types of host/errors.hpp after the ledger has recorded the failure
// and the report files are written.
RunOutcome run_recipe(RunOptions options);

// `host check`: loads the recipe and checks every table, column and type it
// names against the live catalog, writing nothing. Returns the problems found
// (empty when the recipe is sound); throws for a recipe that does not load.
std::vector<std::string> check_recipe(const RunOptions& options);

// Options of an earlier run, for `host resume` and `host join`. `recipe_path`,
// when given, replaces the recorded one (join --recipe); its content must be the run's.
RunOptions resume_options(const std::string& run_id, const std::optional<std::string>& db,
                          const std::string& ledger_schema,
                          const std::optional<std::string>& recipe_path = std::nullopt);

// The first `require`d module or input file of `record` whose content is no
// longer what the run started with ("module 'x' (path)", "input 'y' (path)"), or
// "" when none changed: resume and join refuse to go on with it.
std::string changed_dependency(const RunRecord& record,
                               const std::map<std::string, std::string>& inputs);

// `host join RUN_ID`: adds this process's workers to a running batch run until no
// chunk is left. ok at once when the run has already finished; stopped when the
// run was paused or cancelled meanwhile.
// `recipe` replaces the recorded path; `max_rate` is this process's own.
ExitCode join_run(const std::string& run_id, const std::optional<std::string>& db,
                  const std::string& ledger_schema, const std::optional<std::string>& recipe,
                  int workers, std::optional<double> max_rate);

}  // namespace host
