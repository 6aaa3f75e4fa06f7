// Taking up a recorded run: the options `host resume` and `host join` read back
// from the ledger, and `host join` itself (more workers for a running batch run,
// from any process or machine).
#include <unistd.h>

#include <filesystem>
#include <iostream>

#include "bindings/recipe.hpp"
#include "host/conninfo.hpp"
#include "host/database.hpp"
#include "host/errors.hpp"
#include "host/file_hash.hpp"
#include "host/ledger.hpp"
#include "host/run_lock.hpp"
#include "host/runner.hpp"
#include "host/stop_signal.hpp"
#include "host/throttle.hpp"
#include "host/worker_pool.hpp"

namespace host {

namespace {

template <typename T>
void read_option(const nlohmann::json& saved, const char* name, T& into) {
  if (saved.contains(name) && !saved[name].is_null()) into = saved[name].get<T>();
}

}  // namespace

RunOptions resume_options(const std::string& run_id, const std::optional<std::string>& db,
                          const std::string& ledger_schema,
                          const std::optional<std::string>& recipe_path) {
  Database database(resolve_conninfo(db));
  Ledger ledger(database, ledger_schema);
  auto record = ledger.exists() ? ledger.find_run(run_id) : std::nullopt;
  if (!record) throw UsageError("no run " + run_id + " in the ledger");
  if (record->mode != "commit") throw UsageError("run " + run_id + " was a dry run; run it again");
  if (record->status == "succeeded" || record->status == "verify_failed")
    throw UsageError("run " + run_id + " already finished (" + record->status + ")");
  if (record->status == "cancelled")
    throw UsageError("run " + run_id +
                     " was cancelled; it cannot be resumed (host revert undoes what it did)");
  if (record->commit_mode != "batch")
    throw UsageError("run " + run_id +
                     " used commit = \"atomic\": nothing of it was committed, so there is "
                     "nothing to resume; run the recipe again");
  const auto& saved = record->options;
  RunOptions options;
  options.db = db;
  options.ledger_schema = ledger_schema;
  options.resume_run_id = record->run_id;
  options.recipe_path = recipe_path ? *recipe_path : saved.value("recipe_path", record->recipe_path);
  // Held in locals: a range-for over items() of a temporary would dangle.
  const nlohmann::json inputs = saved.value("inputs", nlohmann::json::object());
  for (const auto& [name, path] : inputs.items()) options.inputs[name] = path.get<std::string>();
  const nlohmann::json vars = saved.value("vars", nlohmann::json::object());
  for (const auto& [name, value] : vars.items()) options.vars[name] = value.get<std::string>();
  parse_confidence(saved.value("min_confidence", std::string("high")), options.min_confidence);
  if (saved.contains("batch_size") && saved["batch_size"].is_number())
    options.batch_size = saved["batch_size"].get<long long>();
  options.commit = CommitMode::batch;
  options.audit_file = saved.value("audit_file", std::string());
  const nlohmann::json libs = saved.value("libs", nlohmann::json::array());
  for (const auto& lib : libs) options.libs.push_back(lib.get<std::string>());
  if (saved.contains("search_path") && saved["search_path"].is_string())
    options.search_path = saved["search_path"].get<std::string>();
  if (saved.contains("limit") && saved["limit"].is_number())
    options.limit = saved["limit"].get<long long>();
  OperatingOptions& operating = options.operating;
  read_option(saved, "workers", operating.workers);
  read_option(saved, "lease_seconds", operating.lease_seconds);
  read_option(saved, "lock_timeout_ms", operating.lock_timeout_ms);
  read_option(saved, "statement_timeout_ms", operating.statement_timeout_ms);
  read_option(saved, "retries", operating.retries);
  read_option(saved, "target_batch_ms", operating.target_batch_ms);
  if (saved.contains("max_rate") && saved["max_rate"].is_number())
    operating.max_rate = saved["max_rate"].get<double>();
  if (saved.contains("pause_when") && saved["pause_when"].is_string())
    operating.pause_when = saved["pause_when"].get<std::string>();
  if (saved.contains("time_per_call_ms") && saved["time_per_call_ms"].is_number())
    options.limits.time_per_call = std::chrono::milliseconds(saved["time_per_call_ms"].get<long long>());
  if (saved.contains("memory_bytes") && saved["memory_bytes"].is_number())
    options.limits.memory_bytes = saved["memory_bytes"].get<std::size_t>();
  if (!std::filesystem::is_regular_file(options.recipe_path))
    throw RecipeError(options.recipe_path + ": the recipe of run " + run_id + " is gone");
  if (text_hash(read_file(options.recipe_path)) != record->recipe_hash) {
    // join --recipe names a file the user chose: a usage error (exit 2).
    if (recipe_path)
      throw UsageError(options.recipe_path + ": the recipe differs from the one run " + run_id +
                       " started with; join refused");
    throw RecipeError(options.recipe_path + ": the recipe changed since run " + run_id +
                      " started; resume refused. Start a new run: recipes are idempotent, so it "
                      "redoes nothing that is done");
  }
  return options;
}

std::string changed_dependency(const RunRecord& record,
                               const std::map<std::string, std::string>& inputs) {
  nlohmann::json modules = record.options.value("modules", nlohmann::json::object());
  if (record.checkpoint.is_object() && record.checkpoint.contains("modules"))
    modules.update(record.checkpoint["modules"]);
  for (const auto& [name, module] : modules.items()) {
    std::string path = module.value("path", "");
    std::string hash;
    try {
      hash = file_hash(path);
    } catch (const RecipeError&) {
      // Gone: not the module the run started with.
    }
    if (hash != module.value("hash", "")) return "module '" + name + "' (" + path + ")";
  }
  const nlohmann::json hashes = record.options.value("input_hashes", nlohmann::json::object());
  for (const auto& [name, hash] : hashes.items()) {
    auto path = inputs.find(name);
    if (path == inputs.end()) return "input '" + name + "'";
    std::string now;
    try {
      now = file_hash(path->second);
    } catch (const RecipeError&) {
      // Gone or unreadable: not the input the run started with.
    }
    if (now != hash.get<std::string>()) return "input '" + name + "' (" + path->second + ")";
  }
  return "";
}

ExitCode join_run(const std::string& run_id, const std::optional<std::string>& db,
                  const std::string& ledger_schema, const std::optional<std::string>& recipe,
                  int workers, std::optional<double> max_rate) {
  std::string conninfo = resolve_conninfo(db);
  RunOptions options;
  options.ledger_schema = ledger_schema;
  {
    Database database(conninfo);
    Ledger ledger(database, options.ledger_schema);
    auto record = ledger.exists() ? ledger.find_run(run_id) : std::nullopt;
    if (!record) throw UsageError("no run " + run_id + " in the ledger");
    if (record->status == "succeeded" || record->status == "verify_failed" ||
        record->status == "cancelled") {
      std::cout << "run " << run_id << " has already ended (" << record->status
                << "); nothing to join" << std::endl;
      return ExitCode::ok;
    }
    if (record->commit_mode != "batch" || !record->options.value("chunked", false))
      throw UsageError("run " + run_id +
                       " is not a batch run over a table; only those can be joined");
    if (record->status != "running")
      throw UsageError("run " + run_id + " is " + record->status +
                       "; resume it (host resume " + run_id + ") before joining it");
    try {
      options = resume_options(run_id, db, ledger_schema, recipe);
    } catch (const RecipeError& e) {
      throw UsageError(std::string(e.what()) + " (join refused)");  // exit 2, as section 10 says
    }
    options.quiet = true;
    options.operating.workers = workers;
    options.operating.max_rate = max_rate;
    std::string changed = changed_dependency(*record, options.inputs);
    if (!changed.empty())
      throw UsageError(changed + " differs from the one run " + run_id +
                       " started with; join refused");
  }
  auto lock = RunLock::acquire_worker(conninfo, run_id);
  if (!lock) throw UsageError("run " + run_id + " is being reverted; join refused");

  std::unique_ptr<Throttle> throttle;
  ThrottleOptions throttling;
  throttling.max_rate = options.operating.max_rate;
  throttling.pause_when = options.operating.pause_when;
  if (throttling.max_rate || throttling.pause_when)
    throttle = std::make_unique<Throttle>(conninfo, throttling, options.search_path,
                                          options.operating.lock_timeout_ms,
                                          options.operating.statement_timeout_ms);
  WorkerShared shared;
  shared.options = &options;
  shared.run_id = run_id;
  shared.conninfo = conninfo;
  shared.recipe_source = read_file(options.recipe_path);
  shared.recipe_hash = text_hash(shared.recipe_source);
  shared.fixed_batch_size = options.batch_size;
  shared.throttle = throttle.get();
  std::cout << "joined run " << run_id << " with " << options.operating.workers
            << (options.operating.workers == 1 ? " worker" : " workers") << std::endl;
  // A joined process leaving does not stop the run: the others carry its chunks on.
  StopSignalScope signals([] { std::cerr << "\nhost: stopped at once" << std::endl; });
  std::exception_ptr failure = run_workers(shared, options.operating.workers, nullptr);
  if (failure) std::rethrow_exception(failure);
  StopKind stop = StopSignal::requested();
  if (stop != StopKind::none) {
    std::cerr << "host: stopped (" << stop_status(stop) << "); this process's chunks are free "
              << "for the run's other workers" << std::endl;
    return ExitCode::stopped;
  }
  std::cout << "no chunk of run " << run_id << " is left; the process that started it (or host "
            << "resume " << run_id << ") finishes it" << std::endl;
  return ExitCode::ok;
}

}  // namespace host
