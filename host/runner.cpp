#include "host/runner.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <lua.hpp>
#include <thread>

#include "bindings/lua_value.hpp"
#include "host/audit_file.hpp"
#include "host/catalog.hpp"
#include "host/chunk_leases.hpp"
#include "host/chunk_plan.hpp"
#include "host/conninfo.hpp"
#include "host/crash_point.hpp"
#include "host/database.hpp"
#include "host/file_hash.hpp"
#include "host/input_file.hpp"
#include "host/json_log.hpp"
#include "host/ledger.hpp"
#include "host/progress.hpp"
#include "host/recipe_session.hpp"
#include "host/report.hpp"
#include "host/report_breakdown.hpp"
#include "host/retry_policy.hpp"
#include "host/run_lock.hpp"
#include "host/sequential_batches.hpp"
#include "host/stop_signal.hpp"
#include "host/table_scan.hpp"
#include "host/throttle.hpp"
#include "host/worker_pool.hpp"

namespace host {

namespace {

constexpr long long k_default_batch_size = 1000;
constexpr long long k_report_list_limit = 10000;
// A chunk is a few batches, so that workers (and joined processes) find work
// while more than one chunk is left, whatever their number; and as many as an
// adaptive chunk's rows hold at the default batch size, since a chunk's last batch
// (it claims the next chunk) is written alone, never beside the one before.
constexpr long long k_batches_per_chunk = 20;
// An adaptive batch may grow to this many rows inside one chunk.
constexpr long long k_adaptive_chunk_rows = 20000;
constexpr long long k_sequences_per_batch = 1LL << 32;

std::string new_run_id() {
  uuid_t id;
  uuid_generate_random(id);
  char text[37];
  uuid_unparse_lower(id, text);
  return text;
}

std::string absolute(const std::string& path) {
  return std::filesystem::absolute(path).lexically_normal().string();
}


class Run {
 public:
  explicit Run(RunOptions options) : m_options(std::move(options)) {}

  RunOutcome execute();
  std::vector<std::string> check();
  // After a failed execute(): rolls back, records the failure in the ledger
  // (committed runs only) and returns the failure report.
  nlohmann::json fail(const std::string& message);
  // The failure report from what is in memory, for when the database cannot be asked.
  nlohmann::json failure_report_offline(const std::string& message) const;
  std::string restore_source_paths(const std::string& message) const {
    return m_session ? m_session->restore_source_paths(message) : message;
  }

 private:
  void load();
  void decide_shape();
  // Opens the run's row (or takes up a resumed one) and plans its chunks.
  void open(nlohmann::json& checkpoint);
  void take_up(nlohmann::json& checkpoint);
  ChunkPlanRequest chunk_plan_request();
  void record_new_run(const nlohmann::json& checkpoint);
  // Resume: refuses (UsageError or RecipeError) a run that may not go on, or whose
  // recipe, modules, inputs or source table are no longer those it started with.
  void refuse_unresumable(const RunRecord& record) const;
  // The chunks of a batch run, by --workers threads (and any joined process).
  void work_in_chunks();
  // Makes the run's counters the sum of its chunks' (what every worker committed).
  void gather_chunk_totals();
  RunOutcome finish();
  // The COMMIT that ends the run with `status` (see its definition).
  void commit_run_end(const std::string& status);
  RunOutcome stopped(StopKind kind);
  void show_progress(bool final);
  void reconnect_if_lost();
  long long estimate_rows(const TableInfo& table);
  nlohmann::json build_report(const std::string& status, const std::string& error);
  nlohmann::json timing_json() const;
  void record_failure(const std::string& message);

  RunContext& context() { return m_session->context(); }
  Database& database() { return m_session->database(); }
  Ledger& ledger() { return m_session->ledger(); }

  RunOptions m_options;
  std::string m_conninfo;
  std::unique_ptr<RecipeSession> m_session;
  std::unique_ptr<RunLock> m_run_lock;
  std::unique_ptr<Throttle> m_throttle;
  std::unique_ptr<InputFile> m_input;
  std::unique_ptr<ProgressPrinter> m_progress;
  nlohmann::json m_input_hashes = nlohmann::json::object();

  CommitMode m_commit_mode = CommitMode::atomic;
  bool m_commit_per_batch = false;
  bool m_chunked = false;
  bool m_resuming = false;
  std::optional<long long> m_fixed_batch_size;
  long long m_batch_size = k_default_batch_size;
  int m_workers = 1;
  long long m_rows_estimate = 0;
  long long m_sequence = 0;
  bool m_run_row_committed = false;
  // A resume that was refused (the run is live, reverted, changed) must not touch
  // the run's row: only a process that took the run up records its failure.
  bool m_took_up = false;
  RunTiming m_timing;
  RunStats m_verify_stats_base;  // the session's counters before verify ran
  std::chrono::steady_clock::time_point m_started = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point m_last_totals{};
  ChunkTotals m_totals;
};

void Run::load() {
  // A wrong path on the command line is a usage error (exit 2), not a recipe's.
  if (!std::filesystem::is_regular_file(m_options.recipe_path))
    throw UsageError(m_options.recipe_path + ": no such recipe file");
  m_conninfo = resolve_conninfo(m_options.db);
  m_session = std::make_unique<RecipeSession>(m_options, m_conninfo,
                                              read_file(m_options.recipe_path));
  m_session->load();
}

void Run::decide_shape() {
  const Recipe& recipe = m_session->recipe();
  m_resuming = !m_options.resume_run_id.empty();
  m_commit_mode = m_options.commit.value_or(recipe.commit.value_or(CommitMode::atomic));
  m_commit_per_batch = m_commit_mode == CommitMode::batch && !m_options.dry_run;
  if (m_options.batch_size)
    m_fixed_batch_size = *m_options.batch_size;
  else if (recipe.batch_size)
    m_fixed_batch_size = *recipe.batch_size;
  m_batch_size = m_fixed_batch_size.value_or(k_default_batch_size);
  m_workers = m_options.operating.workers;
  if (m_workers > 1 && m_commit_mode == CommitMode::atomic)
    throw UsageError("--workers " + std::to_string(m_workers) +
                     " needs commit = \"batch\": an atomic run is one transaction on one "
                     "connection");
  m_chunked = m_commit_per_batch && m_session->source() != nullptr;
  if (m_workers > 1 && !m_chunked) {
    std::cerr << "host: " << (m_options.dry_run ? "a dry run" : "a run over an input file")
              << " uses one connection; --workers " << m_workers << " is ignored\n";
    m_workers = 1;
  }
}

void Run::refuse_unresumable(const RunRecord& record) const {
  const std::string& id = record.run_id;
  if (!record.reverted_at.empty())
    throw UsageError("run " + id + " was reverted at " + record.reverted_at +
                     "; it cannot be resumed. Start a new run");
  if (record.status != "running" && record.status != "paused" && record.status != "failed")
    throw UsageError("run " + id + " is " + record.status + "; it cannot be resumed");
  const nlohmann::json& options = record.options;
  auto refuse = [&](const std::string& what) {
    throw RecipeError(what + " changed since run " + id +
                      " started; resume refused. Start a new run: recipes are idempotent, so "
                      "it redoes nothing that is done");
  };
  nlohmann::json modules = options.value("modules", nlohmann::json::object());
  if (record.checkpoint.is_object() && record.checkpoint.contains("modules"))
    modules.update(record.checkpoint["modules"]);
  std::string changed = changed_dependency(record, m_options.inputs);
  if (!changed.empty()) refuse(changed);
  const LoadedModules& loaded = m_session->modules();
  for (const auto& [name, module] : modules.items()) {
    std::string path = module.value("path", "");
    auto now = loaded.find(name);
    if (now != loaded.end() && now->second.path != path)
      refuse("module '" + name + "' (now found at " + now->second.path + ", was " + path + ")");
  }
  const TableInfo* source = m_session->source();
  if (options.contains("source") && options["source"].is_object() && source &&
      (options["source"].value("table", "") != source->qualified_name ||
       options["source"].value("oid", "") != source->oid))
    refuse("the source table (now " + source->qualified_name + ", was " +
           options["source"].value("table", "") + ")");
}

ChunkPlanRequest Run::chunk_plan_request() {
  ChunkPlanRequest plan;
  plan.table = m_session->source();
  plan.key = m_session->key();
  plan.chunk_rows =
      m_fixed_batch_size ? *m_fixed_batch_size * k_batches_per_chunk : k_adaptive_chunk_rows;
  plan.where = &m_session->recipe().where;
  plan.guard = &context().query_guard;
  return plan;
}

void Run::take_up(nlohmann::json& checkpoint) {
  const std::string& id = context().run_id;
  // Locked, then read: a revert that commits meanwhile is seen, not overrun.
  database().exec(
      "SELECT 1 FROM " + ledger().table("runs") + " WHERE run_id::text = lower($1) FOR UPDATE",
      {id});
  auto record = ledger().find_run(id);
  if (!record) throw UsageError("no run " + id + " in the ledger");
  refuse_unresumable(*record);
  // Only what committed batches did counts: the ledger's run stats also hold the
  // batch that failed and was rolled back.
  if (record->checkpoint.is_object() && record->checkpoint.contains("stats"))
    context().stats = RunStats::from_json(record->checkpoint["stats"]);
  if (record->checkpoint.is_object() && record->checkpoint.contains("protected_by_column"))
    context().protected_by_column = protected_from_json(record->checkpoint["protected_by_column"]);
  m_sequence = record->last_sequence;
  checkpoint = record->checkpoint.is_object() ? record->checkpoint : nlohmann::json::object();
  if (m_chunked && !any_worker_alive(database(), id))
    // Nobody works on it: the leases of the processes that died need not run out.
    database().exec("UPDATE " + ledger().table("chunks") +
                        " SET lease_owner = NULL, lease_until = NULL WHERE run_id = $1",
                    {id});
  database().exec("UPDATE " + ledger().table("runs") +
                      " SET status = 'running', finished_at = NULL, stop_request = NULL "
                      "WHERE run_id = $1",
                  {id});
  if (m_chunked && record->options.value("chunked", false)) {
    m_rows_estimate = chunk_totals(database(), ledger(), id).rows_estimate;
    return;
  }
  if (m_chunked) {
    // A run begun by a host without chunks: plan the rest from its checkpoint.
    ChunkPlanRequest plan = chunk_plan_request();
    if (checkpoint.contains("after")) plan.after = key_params(checkpoint["after"]);
    m_rows_estimate = plan_chunks(database(), ledger(), id, plan);
  }
}

void Run::record_new_run(const nlohmann::json& checkpoint) {
  const Recipe& recipe = m_session->recipe();
  RunRecord record;
  record.run_id = context().run_id;
  record.recipe = recipe.name;
  record.recipe_path = absolute(recipe.path);
  record.recipe_hash = recipe.hash;
  record.recipe_version = recipe.version;
  record.mode = m_options.dry_run ? "dry-run" : "commit";
  record.commit_mode = m_commit_mode == CommitMode::batch ? "batch" : "atomic";
  record.status = "running";
  nlohmann::json inputs = nlohmann::json::object(), libs = nlohmann::json::array();
  for (const auto& [name, path] : m_options.inputs) inputs[name] = absolute(path);
  for (const auto& lib : m_options.libs) libs.push_back(absolute(lib));
  const OperatingOptions& operating = m_options.operating;
  const TableInfo* source = m_session->source();
  record.options = {
      {"recipe_path", absolute(recipe.path)},
      {"inputs", inputs},
      {"vars", m_options.vars},
      {"min_confidence", confidence_name(m_options.min_confidence)},
      {"batch_size", m_fixed_batch_size ? nlohmann::json(*m_fixed_batch_size) : nlohmann::json()},
      {"commit", record.commit_mode},
      {"libs", libs},
      {"audit_file", m_options.audit_file.empty() ? "" : absolute(m_options.audit_file)},
      {"limit", m_options.limit ? nlohmann::json(*m_options.limit) : nlohmann::json()},
      {"search_path", m_session->resolved_search_path()},
      {"writes", m_session->recorded_writes()},
      {"source", source ? nlohmann::json{{"table", source->qualified_name}, {"oid", source->oid}}
                        : nlohmann::json()},
      {"modules", m_session->modules_json()},
      {"input_hashes", m_input_hashes},
      {"chunked", m_chunked},
      {"workers", m_workers},
      {"lease_seconds", operating.lease_seconds},
      {"lock_timeout_ms", operating.lock_timeout_ms},
      {"statement_timeout_ms", operating.statement_timeout_ms},
      {"retries", operating.retries},
      {"max_rate", operating.max_rate ? nlohmann::json(*operating.max_rate) : nlohmann::json()},
      {"pause_when", operating.pause_when ? nlohmann::json(*operating.pause_when)
                                          : nlohmann::json()},
      {"target_batch_ms", operating.target_batch_ms},
      {"time_per_call_ms", m_options.limits.time_per_call.count()},
      {"memory_bytes", m_options.limits.memory_bytes}};
  record.checkpoint = checkpoint;
  record.stats = context().stats.to_json();
  ledger().insert_run(record);
  if (!m_chunked) return;
  ChunkPlanRequest plan = chunk_plan_request();
  plan.limit = m_options.limit;
  m_rows_estimate = plan_chunks(database(), ledger(), context().run_id, plan);
}

void Run::open(nlohmann::json& checkpoint) {
  database().begin();
  ledger().ensure_schema();
  if (m_chunked && m_resuming) {
    // Before taking the run's locks: are the workers of some process still at it?
    take_up(checkpoint);
    m_run_lock = RunLock::try_acquire(m_conninfo, context().run_id);
    if (!m_run_lock)
      throw UsageError("run " + context().run_id + " is being processed by another host process");
  } else {
    if (m_commit_per_batch) {
      m_run_lock = RunLock::try_acquire(m_conninfo, context().run_id);
      if (!m_run_lock)
        throw UsageError("run " + context().run_id +
                         " is being processed by another host process");
    }
    if (m_resuming)
      take_up(checkpoint);
    else
      record_new_run(checkpoint);
  }
  if (m_commit_per_batch) {
    database().commit();
    m_run_row_committed = true;
  }
  m_took_up = true;
}

RunOutcome Run::execute() {
  load();
  auto problems = m_session->validate();
  const Recipe& recipe = m_session->recipe();
  if (!problems.empty()) throw RecipeError(recipe.path + ": " + problems.front());
  decide_shape();
  if (recipe.input) {
    auto it = m_options.inputs.find(*recipe.input);
    if (it == m_options.inputs.end())
      throw UsageError(recipe.path + ": the recipe reads input '" + *recipe.input +
                       "': pass --input " + *recipe.input + "=PATH");
    m_input = std::make_unique<InputFile>(it->second);
  }
  // Resume skips records by count: an edited input would shift every record. A
  // resume checks its inputs against these recorded hashes (changed_dependency).
  if (!m_resuming)
    for (const auto& [name, path] : m_options.inputs) m_input_hashes[name] = file_hash(path);
  // pause_when is checked before anything is written; a bad one is a usage error.
  ThrottleOptions throttling;
  throttling.max_rate = m_options.operating.max_rate;
  throttling.pause_when = m_options.operating.pause_when ? m_options.operating.pause_when
                                                         : recipe.pause_when;
  if (throttling.max_rate || throttling.pause_when)
    m_throttle = std::make_unique<Throttle>(m_conninfo, throttling,
                                            m_session->resolved_search_path(),
                                            m_options.operating.lock_timeout_ms,
                                            m_options.operating.statement_timeout_ms);
  if (throttling.pause_when && !m_options.operating.pause_when)
    m_options.operating.pause_when = throttling.pause_when;  // recorded for join and resume
  context().run_id = m_resuming ? m_options.resume_run_id : new_run_id();
  m_session->open_audit_file(context().run_id);

  nlohmann::json checkpoint = nlohmann::json::object();
  open(checkpoint);
  std::cout << "run_id: " << context().run_id << " (recipe " << recipe.name << ", "
            << (m_options.dry_run ? "dry run" : "commit") << ", "
            << (m_commit_mode == CommitMode::batch ? "batch" : "atomic") << " mode"
            << (m_chunked ? ", " + std::to_string(m_workers) +
                                (m_workers == 1 ? " worker" : " workers")
                          : "")
            << (m_resuming ? ", resumed" : "") << ")" << std::endl;
  set_log_run_id(context().run_id);

  m_progress = std::make_unique<ProgressPrinter>(
      choose_progress_mode(m_options.operating.progress, m_options.quiet, isatty(2) != 0),
      std::cerr, m_started);
  std::string run_id = context().run_id;
  std::string conninfo = m_conninfo;
  std::string schema = ledger().schema();
  bool committed_run = m_commit_per_batch;
  StopSignalScope signals([run_id, conninfo, schema, committed_run] {
    // The batch in flight is abandoned: the server rolls it back when we exit.
    if (committed_run) {
      try {
        Database database(conninfo);
        Ledger ledger(database, schema);
        database.exec("UPDATE " + ledger.table("runs") +
                          " SET status = 'paused', stop_request = 'pause' WHERE run_id = $1 AND "
                          "status = 'running'",
                      {run_id});
        std::cerr << "\nhost: stopped at once; the run is paused. Continue it with: host resume "
                  << run_id << std::endl;
      } catch (const std::exception&) {
        std::cerr << "\nhost: stopped at once; continue the run with: host resume " << run_id
                  << std::endl;
      }
    } else {
      std::cerr << "\nhost: stopped at once; nothing was committed" << std::endl;
    }
  });

  if (!m_chunked && m_session->source()) m_rows_estimate = estimate_rows(*m_session->source());
  if (m_chunked)
    work_in_chunks();
  else
    work_sequentially({m_session.get(), &m_options, m_input.get(), m_throttle.get(),
                       m_commit_per_batch, m_batch_size, &m_sequence, &m_timing,
                       [this] { show_progress(false); }},
                      checkpoint);
  StopKind stop = StopSignal::requested();
  if (stop != StopKind::none) return stopped(stop);
  return finish();
}

void Run::work_in_chunks() {
  WorkerShared shared;
  shared.options = &m_options;
  shared.run_id = context().run_id;
  shared.conninfo = m_conninfo;
  shared.recipe_source = m_session->recipe().source;
  shared.recipe_hash = m_session->recipe().hash;
  shared.fixed_batch_size = m_fixed_batch_size;
  shared.throttle = m_throttle.get();
  std::exception_ptr failure =
      run_workers(shared, m_workers, [this] { show_progress(false); });
  m_timing.retries = shared.retries.load();
  if (failure) std::rethrow_exception(failure);
}

void Run::gather_chunk_totals() {
  m_totals = chunk_totals(database(), ledger(), context().run_id);
  WorkerTotals workers = worker_totals(database(), ledger(), context().run_id);
  m_timing.batches = workers.batches;
  m_timing.retries = std::max(m_timing.retries, workers.retries);
  m_timing.throttled_seconds = workers.throttled_seconds;
  m_timing.batch_rows_min = workers.batch_rows_min;
  m_timing.batch_rows_max = workers.batch_rows_max;
  m_timing.workers = workers.workers;
}

void Run::show_progress(bool final) {
  if (!m_progress) return;
  auto now = std::chrono::steady_clock::now();
  ProgressSnapshot snapshot;
  if (m_chunked) {
    // The ledger sums every process's workers; read it about once a second.
    if (final || now - m_last_totals >= std::chrono::seconds(1)) {
      try {
        m_totals = chunk_totals(database(), ledger(), context().run_id);
      } catch (const DatabaseUnreachable&) {
        try {
          database().reconnect();
        } catch (const std::exception&) {
          // Progress is best effort; finishing the run tries again.
        }
      } catch (const std::exception&) {
        // Progress is best effort; the run's own statements report real trouble.
      }
      m_last_totals = now;
    }
    snapshot.rows_done = m_totals.stats.scanned;
    snapshot.patched = m_totals.stats.patched;
    snapshot.protected_fields = m_totals.stats.protected_fields;
    snapshot.review = m_totals.stats.review;
    snapshot.errors = m_totals.stats.errors;
    snapshot.rows_total_estimate = m_rows_estimate;
  } else {
    const RunStats& stats = context().stats;
    snapshot.rows_done = stats.scanned;
    snapshot.patched = stats.patched;
    snapshot.protected_fields = stats.protected_fields;
    snapshot.review = stats.review;
    snapshot.errors = stats.errors;
    snapshot.rows_total_estimate = std::max(m_rows_estimate, stats.scanned);
  }
  snapshot.elapsed_seconds = std::chrono::duration<double>(now - m_started).count();
  snapshot.throttled = m_throttle && m_throttle->throttled_now();
  if (final)
    m_progress->finish(snapshot);
  else
    m_progress->update(snapshot, now);
}

long long Run::estimate_rows(const TableInfo& table) {
  // For the progress line only: the planner's count when the table was analysed,
  // else a count that stops at a million rows (never a long scan of a big table).
  auto rows = database().exec(
      "SELECT CASE WHEN c.reltuples > 0 THEN c.reltuples::bigint ELSE (SELECT count(*) FROM "
      "(SELECT 1 FROM " + table.qualified_name + " LIMIT 1000000) s) END "
      "FROM pg_class c WHERE c.oid = $1::oid",
      {table.oid});
  return rows.empty() ? 0 : rows[0][0].as<long long>();
}

void Run::reconnect_if_lost() {
  // The lifecycle's connection sits idle while the workers work; an administrator
  // may have ended it meanwhile. The workers' commits are what count.
  try {
    database().exec("SELECT 1");
  } catch (const DatabaseUnreachable& e) {
    spdlog::warn("{}; re-opening the connection", e.what());
    database().reconnect();
  }
}

RunOutcome Run::stopped(StopKind kind) {
  std::string status = stop_status(kind);
  if (!m_commit_per_batch) {
    // Atomic and dry runs: everything was rolled back; nothing is left to resume.
    if (database().in_transaction()) database().rollback();
    status = "cancelled";
    show_progress(true);
    nlohmann::json report = failure_report_offline("");
    report.erase("error");
    report["status"] = status;
    report["timing"] = timing_json();
    std::cerr << "host: stopped; everything was rolled back" << std::endl;
    return {ExitCode::stopped, report};
  }
  if (m_chunked) reconnect_if_lost();
  database().begin();
  if (m_chunked) {
    gather_chunk_totals();
    context().stats = m_totals.stats;
    context().protected_by_column = m_totals.protected_by_column;
  }
  nlohmann::json report = build_report(status, "");
  // Every process of the run stops: a signal here stops the joined ones too.
  database().exec("UPDATE " + ledger().table("runs") +
                      " SET status = $2, stop_request = $3, stats = $4::jsonb, report = $5::jsonb"
                      ", finished_at = CASE WHEN $2 = 'cancelled' THEN clock_timestamp() END "
                      "WHERE run_id = $1",
                  {context().run_id, status, kind == StopKind::cancel ? "cancel" : "pause",
                   context().stats.to_json().dump(), report.dump()});
  database().commit();
  show_progress(true);
  if (kind == StopKind::cancel)
    std::cerr << "host: run " << context().run_id
              << " cancelled; what was committed stays (undo it with: host revert "
              << context().run_id << ")" << std::endl;
  else
    std::cerr << "host: run " << context().run_id
              << " paused. Continue it with: host resume " << context().run_id << std::endl;
  return {ExitCode::stopped, report};
}

RunOutcome Run::finish() {
  if (m_chunked) reconnect_if_lost();
  if (m_commit_per_batch) database().begin();
  if (m_chunked) {
    gather_chunk_totals();
    // Verify's review items and audit events get ledger numbers of their own.
    m_sequence = ledger().next_batch_number() * k_sequences_per_batch;
    context().stats = m_totals.stats;
    context().protected_by_column = m_totals.protected_by_column;
  }
  m_session->run_verify();
  m_session->record_events(m_sequence);  // verify may audit (and review) too
  RunContext& run = context();
  if (m_options.expect_no_changes) {
    long long left = run.stats.patched + run.stats.inserted + run.stats.ids_mapped;
    run.checks.push_back({"nothing left to change", left == 0,
                          left == 0 ? "0 changes"
                                    : std::to_string(run.stats.patched) + " cells, " +
                                          std::to_string(run.stats.inserted) + " rows and " +
                                          std::to_string(run.stats.ids_mapped) +
                                          " id mappings would still change"});
  }
  bool verified = std::all_of(run.checks.begin(), run.checks.end(),
                              [](const VerifyCheck& c) { return c.ok; });
  std::string status = verified ? "succeeded" : "verify_failed";
  nlohmann::json report = build_report(status, "");
  if (m_options.dry_run) {
    database().rollback();
  } else {
    ledger().finish_run(run.run_id, status, run.stats.to_json(), report);
    crash_point("run_finishing");
    commit_run_end(status);
  }
  show_progress(true);
  // Only what committed (or, in a dry run, what was shown) goes to the file.
  m_session->audit_file()->publish();
  return {verified ? ExitCode::ok : ExitCode::verify_failed, report};
}

// Should the result of the run's last COMMIT be lost with the connection, the run's
// row says whether it took effect. A run that did commit must not be reported
// failed: its row would be overwritten as failed, and an atomic run done again.
void Run::commit_run_end(const std::string& status) {
  std::exception_ptr lost;
  try {
    database().commit();
    if (fail_point("run_commit_unconfirmed"))
      throw DatabaseUnreachable("lost the connection to the database (HOST_FAIL_AT)");
    return;
  } catch (const DatabaseUnreachable&) {
    lost = std::current_exception();
  }
  std::string recorded;
  try {
    database().reconnect();
    if (auto run = ledger().find_run(context().run_id)) recorded = run->status;
  } catch (const std::exception& e) {
    spdlog::warn("could not find out whether the run's COMMIT took effect: {}", e.what());
  }
  if (recorded != status) std::rethrow_exception(lost);
  spdlog::warn("the run's COMMIT lost its connection, but it had taken effect");
}

nlohmann::json Run::timing_json() const {
  auto optional = [](const std::optional<long long>& value) {
    return value ? nlohmann::json(*value) : nlohmann::json();
  };
  double throttled = m_chunked ? m_timing.throttled_seconds
                               : (m_throttle ? m_throttle->throttled_seconds() : 0.0);
  return {{"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - m_started)
                          .count()},
          {"throttled_seconds", throttled},
          {"retries", m_timing.retries},
          {"batches", m_timing.batches},
          {"batch_rows_min", optional(m_timing.batch_rows_min)},
          {"batch_rows_max", optional(m_timing.batch_rows_max)}};
}

nlohmann::json Run::build_report(const std::string& status, const std::string& error) {
  RunContext& run = context();
  const Recipe& recipe = m_session->recipe();
  nlohmann::json report;
  report["run_id"] = run.run_id;
  report["recipe"] = recipe.name;
  report["recipe_path"] = recipe.path;
  report["recipe_version"] = recipe.version;
  report["mode"] = m_options.dry_run ? "dry-run" : "commit";
  report["commit"] = m_commit_mode == CommitMode::batch ? "batch" : "atomic";
  report["status"] = status;
  report["stats"] = run.stats.to_json();
  bool ledger_readable = error.empty() && database().in_transaction();
  report["changes"] = ledger_readable ? ledger().change_counts(run.run_id) : nlohmann::json::array();
  report["inserts"] = ledger_readable ? ledger().insert_counts(run.run_id) : nlohmann::json::array();
  BreakdownInputs breakdown;
  breakdown.changes = report["changes"];
  breakdown.inserts = report["inserts"];
  breakdown.review_counts =
      ledger_readable ? ledger().review_counts(run.run_id) : nlohmann::json::array();
  breakdown.protected_by_column = run.protected_by_column;
  breakdown.source_table = m_session->source() ? m_session->source()->display_name : "";
  breakdown.scanned = run.stats.scanned;
  breakdown.errors = run.stats.errors;
  auto counts = report_breakdown(breakdown);
  report["tables"] = counts["tables"];
  report["columns"] = counts["columns"];
  report["review"] = ledger_readable ? ledger().reviews(run.run_id, k_report_list_limit)
                                     : nlohmann::json::array();
  report["audit"] = ledger_readable ? ledger().audit_events(run.run_id, k_report_list_limit)
                                    : nlohmann::json::array();
  report["failed_rows"] = ledger_readable ? ledger().failed_rows(run.run_id, k_report_list_limit)
                                          : nlohmann::json::array();
  auto checks = nlohmann::json::array();
  for (const auto& check : run.checks)
    checks.push_back({{"check", check.check}, {"ok", check.ok}, {"detail", check.detail}});
  report["verify"] = checks;
  report["orphans"] = run.orphan_findings;
  if (!error.empty()) report["error"] = error;
  report["duration_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::steady_clock::now() - m_started)
                              .count();
  report["timing"] = timing_json();
  report["workers"] = m_chunked ? m_timing.workers : (m_timing.batches > 0 ? 1 : 0);
  report["revert_command"] = "host revert " + run.run_id;
  return report;
}

nlohmann::json Run::failure_report_offline(const std::string& message) const {
  const RunContext* run = m_session ? &m_session->context() : nullptr;
  std::string run_id = run ? run->run_id : "";
  return {{"run_id", run_id.empty() ? nlohmann::json() : nlohmann::json(run_id)},
          {"recipe", m_session ? m_session->recipe().name : ""},
          {"recipe_path", m_options.recipe_path},
          {"mode", m_options.dry_run ? "dry-run" : "commit"},
          {"commit", m_commit_mode == CommitMode::batch ? "batch" : "atomic"},
          {"status", "failed"},
          {"error", message},
          {"stats", run ? run->stats.to_json() : RunStats().to_json()},
          {"changes", nlohmann::json::array()},
          {"review", nlohmann::json::array()},
          {"verify", nlohmann::json::array()}};
}

nlohmann::json Run::fail(const std::string& message) {
  if (!m_session || !m_session->context().database) return failure_report_offline(message);
  try {
    if (database().in_transaction()) database().rollback();
  } catch (const std::exception&) {
    // The connection is gone; the server has rolled back.
  }
  nlohmann::json report = failure_report_offline(message);
  if (!context().run_id.empty()) {
    if (m_chunked && m_run_row_committed) {
      try {
        gather_chunk_totals();
        context().stats = m_totals.stats;
        context().protected_by_column = m_totals.protected_by_column;
      } catch (const std::exception&) {
        // The ledger cannot be read: the report says what this process knew.
      }
    }
    report = build_report("failed", message);
    record_failure(message);
  }
  return report;
}

void Run::record_failure(const std::string& message) {
  if (context().run_id.empty() || m_options.dry_run || (m_resuming && !m_took_up)) return;
  try {
    database().begin();
    if (!m_run_row_committed && m_options.resume_run_id.empty()) {
      ledger().ensure_schema();
      RunRecord record;
      record.run_id = context().run_id;
      record.recipe = m_session->recipe().name;
      record.recipe_path = absolute(m_session->recipe().path);
      record.recipe_hash = m_session->recipe().hash;
      record.recipe_version = m_session->recipe().version;
      record.mode = "commit";
      record.commit_mode = m_commit_mode == CommitMode::batch ? "batch" : "atomic";
      record.status = "failed";
      record.options = nlohmann::json::object();
      record.checkpoint = nlohmann::json::object();
      record.stats = context().stats.to_json();
      ledger().insert_run(record);
    }
    ledger().finish_run(context().run_id, "failed", context().stats.to_json(),
                        build_report("failed", message));
    database().commit();
  } catch (const std::exception& e) {
    spdlog::warn("could not record the failed run in the ledger: {}", e.what());
  }
}

std::vector<std::string> Run::check() {
  load();
  auto problems = m_session->validate();
  const Recipe& recipe = m_session->recipe();
  if (recipe.input && m_options.inputs.count(*recipe.input)) {
    try {
      InputFile file(m_options.inputs.at(*recipe.input));
      while (!file.next(10000).empty()) {
      }
    } catch (const RecipeError& e) {
      problems.push_back(e.what());
    }
  }
  return problems;
}

void emit(const RunOptions& options, const nlohmann::json& report) {
  for (const auto& path : options.report_paths) write_report(report, path);
  if (!options.quiet) std::cout << "\n" << markdown_report(report) << std::flush;
}

}  // namespace

RunOutcome run_recipe(RunOptions options) {
  Run run(options);
  std::string message;
  try {
    RunOutcome outcome = run.execute();
    emit(options, outcome.report);
    return outcome;
  } catch (const DatabaseUnreachable&) {
    throw;  // nothing can be recorded without the database
  } catch (const RecipeError& e) {
    message = run.restore_source_paths(e.what());
    auto report = run.fail(message);
    for (const auto& path : options.report_paths) write_report(report, path);
    throw RecipeError(message);
  } catch (const std::exception& e) {
    message = e.what();
    auto report = run.fail(message);
    for (const auto& path : options.report_paths) write_report(report, path);
    throw;
  }
}

std::vector<std::string> check_recipe(const RunOptions& options) {
  Run run(options);
  auto problems = run.check();
  for (auto& problem : problems) problem = run.restore_source_paths(problem);
  return problems;
}

}  // namespace host
