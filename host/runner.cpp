#include "host/runner.hpp"

#include <spdlog/spdlog.h>
#include <uuid/uuid.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <lua.hpp>

#include "bindings/lua_value.hpp"
#include "bindings/module_loader.hpp"
#include "bindings/primitives.hpp"
#include "bindings/recipe.hpp"
#include "bindings/run_context.hpp"
#include "bindings/verify_helpers.hpp"
#include "host/audit_file.hpp"
#include "host/catalog.hpp"
#include "host/conninfo.hpp"
#include "host/crash_point.hpp"
#include "host/database.hpp"
#include "host/file_hash.hpp"
#include "host/input_file.hpp"
#include "host/json_log.hpp"
#include "host/ledger.hpp"
#include "host/query_guard.hpp"
#include "host/report.hpp"
#include "host/report_breakdown.hpp"
#include "host/run_lock.hpp"
#include "host/table_scan.hpp"

namespace host {

namespace {

constexpr long long k_default_batch_size = 1000;
constexpr std::size_t k_id_cache_limit = 200000;
constexpr long long k_report_list_limit = 10000;
// Well below PostgreSQL's 64 cached subtransaction ids per backend, leaving room
// for the savepoints of id maps and anything else in the run's transaction.
constexpr int k_atomic_flush_savepoints = 32;

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

// Runs the work of one source row in its own coroutine, so that its reads can wait
// for the batch's set-at-a-time answer.
struct RowTask {
  lua_State* thread = nullptr;
  std::size_t index = 0;
  std::shared_ptr<const RowIdentity> identity = RunContext::outside_rows();
};

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
    return m_sandbox ? m_sandbox->restore_source_paths(message) : message;
  }

 private:
  void load();
  std::vector<std::string> validate();
  void refuse_protected_target(const TableInfo& table) const;
  // Resume: refuses (UsageError or RecipeError) a run that may not go on, or whose
  // recipe, modules, inputs or source table are no longer those it started with.
  void refuse_unresumable(const RunRecord& record) const;
  std::string resolved_search_path();
  nlohmann::json recorded_writes() const;
  nlohmann::json modules_json() const;
  void process_batch(std::size_t count,
                     const std::function<void(lua_State*, std::size_t, RowTask&)>& push_row);
  void resume(RowTask& task, int arguments);
  void answer_pending(std::vector<RowTask>& tasks);
  void run_verify();
  nlohmann::json build_report(const std::string& status, const std::string& error);
  nlohmann::json protected_by_column_json() const;
  // Moves the review items and audit events gathered since the last call to the ledger.
  void record_events();
  void record_failure(const std::string& message);

  RunOptions m_options;
  std::unique_ptr<Database> m_database;
  std::unique_ptr<Catalog> m_catalog;
  std::unique_ptr<Ledger> m_ledger;
  std::unique_ptr<Sandbox> m_sandbox;
  std::unique_ptr<RunLock> m_run_lock;
  LoadedModules m_modules;
  std::unique_ptr<AuditFile> m_audit_file;
  nlohmann::json m_input_hashes = nlohmann::json::object();
  RunContext m_context;
  Recipe m_recipe;

  const TableInfo* m_source = nullptr;
  std::vector<std::string> m_key;
  std::vector<std::string> m_columns;
  CommitMode m_commit_mode = CommitMode::atomic;
  bool m_commit_per_batch = false;
  long long m_batch_size = k_default_batch_size;
  long long m_sequence = 0;
  int m_flush_savepoints = 0;  // released in this transaction (see FlushIsolation)
  bool m_run_row_committed = false;
  std::vector<FailedRow> m_failed_rows;
  std::chrono::steady_clock::time_point m_started = std::chrono::steady_clock::now();
};

void Run::load() {
  std::string conninfo = resolve_conninfo(m_options.db);
  m_database = std::make_unique<Database>(conninfo);
  m_catalog = std::make_unique<Catalog>(*m_database);
  m_ledger = std::make_unique<Ledger>(*m_database, m_options.ledger_schema);
  m_sandbox = std::make_unique<Sandbox>(m_options.limits);
  m_sandbox->set_abandon_handler([this](const std::string& message) {
    auto report = failure_report_offline(message);
    for (const auto& path : m_options.report_paths) write_report(report, path);
  });
  // A resumed run resolves names as the run did when it started.
  if (m_options.search_path)
    m_database->exec("SELECT set_config('search_path', $1, false)", {*m_options.search_path});
  m_context.database = m_database.get();
  m_context.catalog = m_catalog.get();
  m_context.ledger = m_ledger.get();
  m_context.min_confidence = m_options.min_confidence;
  m_context.vars = m_options.vars;
  m_context.log = [this](bool warning, const std::string& line) {
    if (warning)
      spdlog::warn("[{}] {}", m_context.recipe_name, line);
    else
      spdlog::info("[{}] {}", m_context.recipe_name, line);
  };
  install_primitives(*m_sandbox, m_context);
  install_verify_helpers(*m_sandbox, m_context);
  std::vector<std::string> folders;
  std::string recipe_folder = std::filesystem::path(m_options.recipe_path).parent_path().string();
  folders.push_back(recipe_folder.empty() ? "." : recipe_folder);
  for (const auto& lib : m_options.libs) folders.push_back(lib);
  folders.push_back(stdlib_folder());
  install_module_loader(*m_sandbox, folders, &m_modules);
  // The recipe file may read (read, read_all, query) while it loads; nothing it
  // does is kept.
  m_database->begin();
  try {
    m_recipe = load_recipe(*m_sandbox, m_options.recipe_path);
  } catch (...) {
    if (m_database->in_transaction()) m_database->rollback();
    throw;
  }
  m_database->rollback();
  m_context.recipe_name = m_recipe.name;
}

void Run::refuse_protected_target(const TableInfo& table) const {
  // A forged ledger row would make `host revert` write whatever it names.
  if (table.schema == m_ledger->schema())
    throw RecipeError("writes: '" + table.display_name + "' is in the ledger schema '" +
                      m_ledger->schema() + "', which only the host writes");
}

std::string Run::resolved_search_path() {
  // The schemas the names resolved in, not the setting's text: "$user" and a
  // schema created later must not change what a resume or join resolves.
  return m_database
      ->exec(
          "SELECT coalesce(string_agg(quote_ident(s), ', ' ORDER BY o), '') "
          "FROM unnest(current_schemas(false)) WITH ORDINALITY AS x(s, o)")[0][0]
      .c_str();
}

nlohmann::json Run::recorded_writes() const {
  nlohmann::json writes = nlohmann::json::object();
  for (const auto& [table, columns] : m_context.allowed_writes)
    writes[table] = std::vector<std::string>(columns.begin(), columns.end());
  return writes;
}

nlohmann::json Run::modules_json() const {
  nlohmann::json modules = nlohmann::json::object();
  for (const auto& [name, module] : m_modules)
    modules[name] = {{"path", module.path}, {"hash", module.hash}};
  return modules;
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
  for (const auto& [name, module] : modules.items()) {
    std::string path = module.value("path", "");
    std::string hash;
    try {
      hash = file_hash(path);
    } catch (const RecipeError&) {
      refuse("module '" + name + "' (" + path + ")");
    }
    if (hash != module.value("hash", "")) refuse("module '" + name + "' (" + path + ")");
    auto now = m_modules.find(name);
    if (now != m_modules.end() && now->second.path != path)
      refuse("module '" + name + "' (now found at " + now->second.path + ", was " + path + ")");
  }
  const nlohmann::json hashes = options.value("input_hashes", nlohmann::json::object());
  for (const auto& [name, hash] : hashes.items()) {
    auto it = m_input_hashes.find(name);
    if (it == m_input_hashes.end() || *it != hash) {
      auto path = m_options.inputs.find(name);
      refuse("input '" + name + "'" +
             (path == m_options.inputs.end() ? "" : " (" + path->second + ")"));
    }
  }
  if (options.contains("source") && options["source"].is_object() && m_source &&
      (options["source"].value("table", "") != m_source->qualified_name ||
       options["source"].value("oid", "") != m_source->oid))
    refuse("the source table (now " + m_source->qualified_name + ", was " +
           options["source"].value("table", "") + ")");
}

std::vector<std::string> Run::validate() {
  std::vector<std::string> problems;
  // The probes of `where` values and SQL need savepoints, hence a transaction;
  // nothing they do is kept.
  m_database->begin();
  auto attempt = [&](const std::function<void()>& step) {
    try {
      step();
    } catch (const RecipeError& e) {
      problems.push_back(e.what());
    } catch (const DatabaseError& e) {
      problems.push_back(e.what());
    }
  };
  if (m_recipe.table) {
    attempt([&] {
      m_source = &m_catalog->table(*m_recipe.table);
      m_context.query_guard.check_relation(*m_database, *m_source, "table");
      m_key = m_recipe.key.empty() ? m_source->primary_key : m_recipe.key;
      if (m_key.empty())
        throw RecipeError("table '" + *m_recipe.table +
                          "' has no primary key; set the recipe's key");
      // A keyset scan over a key that repeats skips rows and hands a row values
      // computed from another; one that may be NULL never reaches those rows.
      m_source->require_row_identity(m_key, m_recipe.key.empty() ? "the scan key" : "key",
                                     KeyUse::scan);
      m_columns = m_recipe.columns.empty() ? m_source->column_names() : m_recipe.columns;
      for (const auto& c : m_columns) m_source->require_column(c);
      for (const auto& k : m_key)
        if (std::find(m_columns.begin(), m_columns.end(), k) == m_columns.end())
          m_columns.push_back(k);
      for (const auto& condition : m_recipe.where.conditions) {
        const Column& column = m_source->require_column(condition.column);
        for (const auto& value : condition.values) {
          if (!value) continue;
          m_database->savepoint("host_check");
          try {
            m_database->exec("SELECT $1::" + column.cast_type, {value});
            m_database->release("host_check");
          } catch (const DatabaseError& e) {
            m_database->rollback_to("host_check");
            m_database->release("host_check");
            throw RecipeError("where." + condition.column + ": " + e.what());
          }
        }
      }
      if (m_recipe.where.sql) {
        Params params;
        exec_recipe_sql(*m_database, m_context.query_guard,
                        "SELECT 1 FROM " + m_source->qualified_name + " t WHERE " +
                            render_filter(m_recipe.where, *m_source, "t", params) + " LIMIT 0",
                        params, "where");
      }
    });
  }
  for (const auto& entry : m_recipe.writes) {
    // Named, not a structured binding: C++17 lambdas cannot capture those.
    const std::string& target = entry.first;
    const auto& columns = entry.second;
    attempt([&] {
      auto parts = split_qualified_name(target);
      if (parts.size() == 2 && parts[0] == m_ledger->schema())
        throw RecipeError("writes: '" + target + "' is in the ledger schema '" +
                          m_ledger->schema() + "', which only the host writes");
      const TableInfo& table = m_catalog->table(target);
      refuse_protected_target(table);
      m_context.query_guard.check_writable(*m_database, table);
      auto& allowed = m_context.allowed_writes[table.qualified_name];
      for (const auto& column : columns) {
        if (column != "*" && table.require_column(column).generated)
          throw RecipeError("writes: column '" + column + "' of table '" + target +
                            "' is generated: PostgreSQL computes it, nothing may write it");
        allowed.insert(column);
      }
    });
  }
  m_database->rollback();
  return problems;
}

void Run::resume(RowTask& task, int arguments) {
  m_context.current_row = task.index;
  m_context.current_identity = task.identity;
  m_sandbox->set_activity(task.identity->description);
  m_sandbox->arm_deadline();
  int status = lua_resume(task.thread, arguments);
  m_sandbox->disarm_deadline();
  if (m_context.fatal) std::rethrow_exception(m_context.fatal);
  if (m_sandbox->limit_breached()) {
    ++m_context.stats.errors;
    throw RecipeError(m_recipe.path + ": " + m_sandbox->breach_message() + " while processing " +
                      task.identity->description);
  }
  if (status == LUA_YIELD) {
    bool waiting = !m_context.pending.empty() && m_context.pending.back().thread == task.thread;
    if (!waiting) {
      status = LUA_ERRRUN;
      std::string position = current_position(task.thread);
      lua_pushstring(task.thread,
                     ((position.empty() ? m_recipe.path + ":" : position) +
                      " each must not yield (coroutine.yield outside a coroutine of the "
                      "recipe's own)")
                         .c_str());
    }
  }
  if (status == 0 || status == LUA_YIELD) return;
  std::string message =
      error_text(task.thread, -1, m_recipe.path) + " [" + task.identity->description + "]";
  if (!m_recipe.skip_failed_rows) {
    ++m_context.stats.errors;  // the row that stopped the run
    throw RecipeError(message);
  }
  m_context.writes.drop_row(task.index);
  m_failed_rows.push_back({task.identity->key, message});
  ++m_context.stats.errors;
}

void Run::answer_pending(std::vector<RowTask>& tasks) {
  auto pending = std::move(m_context.pending);
  m_context.pending.clear();
  std::vector<const ReadRequest*> reads;
  std::vector<std::size_t> read_positions;
  std::map<std::string, std::vector<std::string>> legacy_by_entity;
  for (std::size_t i = 0; i < pending.size(); ++i) {
    if (pending[i].kind == PendingCall::Kind::read) {
      reads.push_back(&pending[i].read);
      read_positions.push_back(i);
    } else {
      legacy_by_entity[pending[i].entity].push_back(pending[i].legacy_id);
    }
  }
  std::vector<ReadAnswer> answers = answer_reads(*m_database, reads);
  std::vector<const ReadAnswer*> answer_of(pending.size(), nullptr);
  for (std::size_t r = 0; r < reads.size(); ++r) answer_of[read_positions[r]] = &answers[r];
  if (m_context.id_cache.size() > k_id_cache_limit) m_context.id_cache.clear();
  // Conflicts go back to the calls, so the error names the recipe line and row.
  std::map<std::string, std::string> conflicts;  // entity '\x1f' legacy -> problem
  for (const auto& [entity, legacy_ids] : legacy_by_entity) {
    std::map<std::string, std::string> entity_conflicts;
    auto ids = resolve_ids(*m_database, *m_ledger, m_context.run_id, entity, legacy_ids,
                           m_context.stats.ids_mapped, &entity_conflicts);
    for (const auto& [legacy, uuid] : ids) m_context.id_cache[entity + '\x1f' + legacy] = uuid;
    for (const auto& [legacy, problem] : entity_conflicts)
      conflicts[entity + '\x1f' + legacy] = problem;
  }
  std::map<lua_State*, RowTask*> task_of;
  for (auto& task : tasks) task_of[task.thread] = &task;
  for (std::size_t i = 0; i < pending.size(); ++i) {
    const PendingCall& call = pending[i];
    int pushed;
    if (call.kind == PendingCall::Kind::read) {
      pushed = push_read_answer(call.thread, m_context, call, *answer_of[i]);
    } else if (auto conflict = conflicts.find(call.entity + '\x1f' + call.legacy_id);
               conflict != conflicts.end()) {
      lua_pushboolean(call.thread, 0);
      lua_pushlstring(call.thread, conflict->second.data(), conflict->second.size());
      pushed = 2;
    } else {
      const std::string& uuid = m_context.id_cache.at(call.entity + '\x1f' + call.legacy_id);
      lua_pushboolean(call.thread, 1);
      lua_pushlstring(call.thread, uuid.data(), uuid.size());
      pushed = 2;
    }
    resume(*task_of.at(call.thread), pushed);
  }
}

void Run::process_batch(std::size_t count,
                        const std::function<void(lua_State*, std::size_t, RowTask&)>& push_row) {
  lua_State* L = m_sandbox->state();
  reset_row_registry(L, m_context);
  m_context.row_threads.clear();
  m_context.pending.clear();
  int top = lua_gettop(L);
  lua_createtable(L, static_cast<int>(count), 0);  // keeps the row threads alive
  int anchor = lua_gettop(L);
  std::vector<RowTask> tasks(count);
  m_context.writes_enabled = true;
  for (std::size_t i = 0; i < count; ++i) {
    RowTask& task = tasks[i];
    task.thread = lua_newthread(L);
    lua_rawseti(L, anchor, static_cast<int>(i + 1));
    task.index = i;
    m_context.row_threads.insert(task.thread);
    lua_rawgeti(task.thread, LUA_REGISTRYINDEX, m_recipe.each_ref);
    push_row(task.thread, i, task);
    ++m_context.stats.scanned;
    resume(task, 1);
  }
  while (!m_context.pending.empty()) answer_pending(tasks);
  m_context.writes_enabled = false;
  m_context.row_threads.clear();
  m_context.current_identity = RunContext::outside_rows();
  lua_settop(L, top);
}

void Run::run_verify() {
  if (m_recipe.verify_ref == -2) return;
  lua_State* L = m_sandbox->state();
  int top = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, m_recipe.verify_ref);
  m_sandbox->set_activity("verify");
  m_sandbox->arm_deadline();
  int status = lua_pcall(L, 0, 0, 0);
  m_sandbox->disarm_deadline();
  if (m_context.fatal) std::rethrow_exception(m_context.fatal);
  if (status != 0) {
    std::string message = m_sandbox->limit_breached()
                              ? m_recipe.path + ": " + m_sandbox->breach_message() + " in verify"
                              : error_text(L, -1, m_recipe.path);
    lua_settop(L, top);
    throw RecipeError(message + " [verify]");
  }
  lua_settop(L, top);
}

nlohmann::json Run::build_report(const std::string& status, const std::string& error) {
  nlohmann::json report;
  report["run_id"] = m_context.run_id;
  report["recipe"] = m_recipe.name;
  report["recipe_path"] = m_recipe.path;
  report["recipe_version"] = m_recipe.version;
  report["mode"] = m_options.dry_run ? "dry-run" : "commit";
  report["commit"] = m_commit_mode == CommitMode::batch ? "batch" : "atomic";
  report["status"] = status;
  report["stats"] = m_context.stats.to_json();
  bool ledger_readable = error.empty() && m_database->in_transaction();
  report["changes"] =
      ledger_readable ? m_ledger->change_counts(m_context.run_id) : nlohmann::json::array();
  report["inserts"] =
      ledger_readable ? m_ledger->insert_counts(m_context.run_id) : nlohmann::json::array();
  BreakdownInputs breakdown;
  breakdown.changes = report["changes"];
  breakdown.inserts = report["inserts"];
  breakdown.review_counts =
      ledger_readable ? m_ledger->review_counts(m_context.run_id) : nlohmann::json::array();
  breakdown.protected_by_column = m_context.protected_by_column;
  breakdown.source_table = m_source ? m_source->display_name : "";
  breakdown.scanned = m_context.stats.scanned;
  breakdown.errors = m_context.stats.errors;
  auto counts = report_breakdown(breakdown);
  report["tables"] = counts["tables"];
  report["columns"] = counts["columns"];
  report["review"] = ledger_readable ? m_ledger->reviews(m_context.run_id, k_report_list_limit)
                                     : nlohmann::json::array();
  report["audit"] = ledger_readable ? m_ledger->audit_events(m_context.run_id, k_report_list_limit)
                                    : nlohmann::json::array();
  report["failed_rows"] = ledger_readable
                              ? m_ledger->failed_rows(m_context.run_id, k_report_list_limit)
                              : nlohmann::json::array();
  auto checks = nlohmann::json::array();
  for (const auto& check : m_context.checks)
    checks.push_back({{"check", check.check}, {"ok", check.ok}, {"detail", check.detail}});
  report["verify"] = checks;
  report["orphans"] = m_context.orphan_findings;
  if (!error.empty()) report["error"] = error;
  report["duration_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::steady_clock::now() - m_started)
                              .count();
  report["revert_command"] = "host revert " + m_context.run_id;
  return report;
}

void Run::record_events() {
  m_ledger->record_reviews(m_context.run_id, m_sequence, m_context.reviews);
  m_ledger->record_audit(m_context.run_id, m_sequence, m_context.audit);
  if (m_audit_file) m_audit_file->stage(m_context.audit);
  m_context.reviews.clear();
  m_context.audit.clear();
}

nlohmann::json Run::protected_by_column_json() const {
  auto entries = nlohmann::json::array();
  for (const auto& [where, count] : m_context.protected_by_column)
    entries.push_back({where.first, where.second, count});
  return entries;
}

RunOutcome Run::execute() {
  load();
  auto problems = validate();
  if (!problems.empty()) throw RecipeError(m_recipe.path + ": " + problems.front());
  bool resuming = !m_options.resume_run_id.empty();
  m_commit_mode = m_options.commit.value_or(m_recipe.commit.value_or(CommitMode::atomic));
  m_commit_per_batch = m_commit_mode == CommitMode::batch && !m_options.dry_run;
  m_batch_size = m_options.batch_size.value_or(m_recipe.batch_size.value_or(k_default_batch_size));
  if (m_batch_size < 1) throw UsageError("--batch-size must be at least 1");
  std::unique_ptr<InputFile> input;
  if (m_recipe.input) {
    auto it = m_options.inputs.find(*m_recipe.input);
    if (it == m_options.inputs.end())
      throw UsageError(m_recipe.path + ": the recipe reads input '" + *m_recipe.input +
                       "': pass --input " + *m_recipe.input + "=PATH");
    input = std::make_unique<InputFile>(it->second);
  }
  // Resume skips records by count: an edited input would shift every record.
  for (const auto& [name, path] : m_options.inputs) m_input_hashes[name] = file_hash(path);
  m_context.run_id = resuming ? m_options.resume_run_id : new_run_id();
  m_audit_file = std::make_unique<AuditFile>(m_options.audit_file, m_context.run_id, m_recipe.name,
                                             m_options.dry_run ? "dry-run" : "commit");

  nlohmann::json checkpoint = nlohmann::json::object();
  m_database->begin();
  m_ledger->ensure_schema();
  if (m_commit_per_batch) {
    m_run_lock = RunLock::try_acquire(m_database->conninfo(), m_context.run_id);
    if (!m_run_lock)
      throw UsageError("run " + m_context.run_id + " is being processed by another host process");
  }
  if (resuming) {
    // Locked, then read: a revert that commits meanwhile is seen, not overrun.
    m_database->exec(
        "SELECT 1 FROM " + m_ledger->table("runs") + " WHERE run_id::text = lower($1) FOR UPDATE",
        {m_context.run_id});
    auto record = m_ledger->find_run(m_context.run_id);
    if (!record) throw UsageError("no run " + m_context.run_id + " in the ledger");
    refuse_unresumable(*record);
    // Only what committed batches did counts: the ledger's run stats also hold the
    // batch that failed and was rolled back.
    if (record->checkpoint.is_object() && record->checkpoint.contains("stats"))
      m_context.stats = RunStats::from_json(record->checkpoint["stats"]);
    if (record->checkpoint.is_object() && record->checkpoint.contains("protected_by_column"))
      for (const auto& entry : record->checkpoint["protected_by_column"])
        m_context.protected_by_column[{entry[0].get<std::string>(), entry[1].get<std::string>()}] =
            entry[2].get<long long>();
    m_sequence = record->last_sequence;
    checkpoint = record->checkpoint.is_object() ? record->checkpoint : nlohmann::json::object();
    m_database->exec("UPDATE " + m_ledger->table("runs") +
                         " SET status = 'running', finished_at = NULL WHERE run_id = $1",
                     {m_context.run_id});
  } else {
    RunRecord record;
    record.run_id = m_context.run_id;
    record.recipe = m_recipe.name;
    record.recipe_path = absolute(m_recipe.path);
    record.recipe_hash = m_recipe.hash;
    record.recipe_version = m_recipe.version;
    record.mode = m_options.dry_run ? "dry-run" : "commit";
    record.commit_mode = m_commit_mode == CommitMode::batch ? "batch" : "atomic";
    record.status = "running";
    nlohmann::json inputs = nlohmann::json::object(), libs = nlohmann::json::array();
    for (const auto& [name, path] : m_options.inputs) inputs[name] = absolute(path);
    for (const auto& lib : m_options.libs) libs.push_back(absolute(lib));
    record.options = {
        {"recipe_path", absolute(m_recipe.path)},
        {"inputs", inputs},
        {"vars", m_options.vars},
        {"min_confidence", confidence_name(m_options.min_confidence)},
        {"batch_size", m_batch_size},
        {"commit", record.commit_mode},
        {"libs", libs},
        {"audit_file", m_options.audit_file.empty() ? "" : absolute(m_options.audit_file)},
        {"limit", m_options.limit ? nlohmann::json(*m_options.limit) : nlohmann::json()},
        {"search_path", resolved_search_path()},
        {"writes", recorded_writes()},
        {"source", m_source
                       ? nlohmann::json{{"table", m_source->qualified_name}, {"oid", m_source->oid}}
                       : nlohmann::json()},
        {"modules", modules_json()},
        {"input_hashes", m_input_hashes}};
    record.checkpoint = checkpoint;
    record.stats = m_context.stats.to_json();
    m_ledger->insert_run(record);
  }
  if (m_commit_per_batch) {
    m_database->commit();
    m_run_row_committed = true;
  }
  std::cout << "run_id: " << m_context.run_id << " (recipe " << m_recipe.name << ", "
            << (m_options.dry_run ? "dry run" : "commit") << ", "
            << (m_commit_mode == CommitMode::batch ? "batch" : "atomic") << " mode"
            << (resuming ? ", resumed" : "") << ")" << std::endl;
  set_log_run_id(m_context.run_id);

  std::unique_ptr<TableScan> scan;
  if (m_source) {
    Params after;
    if (checkpoint.contains("after"))
      for (const auto& v : checkpoint["after"])
        after.push_back(v.is_null() ? Param{} : Param{v.get<std::string>()});
    scan = std::make_unique<TableScan>(*m_database, *m_source, m_key, m_columns, m_recipe.where,
                                       m_batch_size, after);
  } else if (checkpoint.contains("records")) {
    input->skip(checkpoint["records"].get<long long>());
  }
  long long batch_number = checkpoint.value("batches", 0LL);
  for (;;) {
    long long remaining =
        m_options.limit ? *m_options.limit - m_context.stats.scanned : m_batch_size;
    if (remaining <= 0) break;
    std::size_t wanted = static_cast<std::size_t>(std::min(remaining, m_batch_size));
    if (m_commit_per_batch) m_database->begin();
    std::size_t count = 0;
    if (scan) {
      pqxx::result rows;
      try {
        rows = scan->next();
      } catch (const DatabaseError& e) {
        // Data (22), read-only (25) and syntax or name (42) errors come from the
        // recipe's SQL; anything else (locks, permissions) is the database's.
        const std::string& state = e.sqlstate();
        bool from_filter =
            state.rfind("22", 0) == 0 || state.rfind("25", 0) == 0 || state.rfind("42", 0) == 0;
        if (!m_recipe.where.sql || !from_filter) throw;
        throw RecipeError(m_recipe.path + ": where: " + e.what());
      }
      count = std::min<std::size_t>(rows.size(), wanted);
      if (count > 0)
        process_batch(count, [&](lua_State* thread, std::size_t i, RowTask& task) {
          push_result_row(thread, m_context, rows, static_cast<int>(i), 0, m_source, m_key);
          Params key;
          for (const auto& k : m_key) {
            const auto& field = field_named(rows[static_cast<int>(i)], k);
            key.push_back(field.is_null() ? Param{} : Param{field.c_str()});
          }
          task.identity = std::make_shared<const RowIdentity>(
              RowIdentity{key_json(m_source, m_key, key), "row " + describe_key(m_key, key)});
        });
      if (count > 0) {
        auto last = nlohmann::json::array();
        for (const auto& k : m_key) {
          const auto& field = field_named(rows[static_cast<int>(count - 1)], k);
          last.push_back(field.is_null() ? nlohmann::json() : nlohmann::json(field.c_str()));
        }
        checkpoint["after"] = last;
      }
    } else {
      auto records = input->next(wanted);
      count = records.size();
      if (count > 0)
        process_batch(count, [&](lua_State* thread, std::size_t i, RowTask& task) {
          push_json(thread, records[i].fields);
          task.identity = std::make_shared<const RowIdentity>(
              RowIdentity{{{"input", *m_recipe.input}, {"line", records[i].line}},
                          "record " + input->path() + ":" + std::to_string(records[i].line)});
        });
      checkpoint["records"] = checkpoint.value("records", 0LL) + static_cast<long long>(count);
    }
    if (count == 0) {
      if (m_commit_per_batch) m_database->commit();
      break;
    }
    ++batch_number;
    crash_point("batch_processed");
    std::size_t failed_before = m_failed_rows.size();
    FlushResult flushed;
    try {
      bool isolate = m_commit_per_batch || m_flush_savepoints < k_atomic_flush_savepoints;
      if (isolate && !m_context.writes.empty()) ++m_flush_savepoints;
      flushed = m_context.writes.flush(*m_database, *m_ledger, m_context.run_id,
                                       static_cast<int>(batch_number), m_sequence,
                                       m_recipe.skip_failed_rows ? &m_failed_rows : nullptr,
                                       isolate ? FlushIsolation::savepoint : FlushIsolation::none);
    } catch (const RecipeError&) {
      ++m_context.stats.errors;  // a value the database refused stopped the run
      throw;
    }
    m_context.stats.patched += flushed.patched;
    m_context.stats.protected_fields += flushed.protected_fields;
    m_context.stats.inserted += flushed.inserted;
    m_context.stats.errors += static_cast<long long>(m_failed_rows.size() - failed_before);
    for (const auto& [where, count] : flushed.protected_by_column)
      m_context.protected_by_column[where] += count;
    crash_point("batch_flushed");
    record_events();
    m_ledger->record_failed_rows(m_context.run_id, m_sequence, m_failed_rows);
    m_failed_rows.clear();
    checkpoint["batches"] = batch_number;
    if (m_commit_per_batch) {
      checkpoint["modules"] = modules_json();  // a module required in `each` loads late
      checkpoint["stats"] = m_context.stats.to_json();
      checkpoint["protected_by_column"] = protected_by_column_json();
      m_ledger->update_progress(m_context.run_id, checkpoint, m_context.stats.to_json());
      crash_point("batch_checkpointed");
      m_database->commit();
      crash_point("batch_committed");
      m_audit_file->publish();
    }
    if (!m_options.quiet)
      spdlog::debug("batch {}: {} rows scanned so far", batch_number, m_context.stats.scanned);
    if (scan && count < wanted) break;
  }

  if (m_commit_per_batch) m_database->begin();
  run_verify();
  record_events();  // verify may audit (and review) too
  if (m_options.expect_no_changes) {
    long long left =
        m_context.stats.patched + m_context.stats.inserted + m_context.stats.ids_mapped;
    m_context.checks.push_back({"nothing left to change", left == 0,
                                left == 0
                                    ? "0 changes"
                                    : std::to_string(m_context.stats.patched) + " cells, " +
                                          std::to_string(m_context.stats.inserted) + " rows and " +
                                          std::to_string(m_context.stats.ids_mapped) +
                                          " id mappings would still change"});
  }
  bool verified = std::all_of(m_context.checks.begin(), m_context.checks.end(),
                              [](const VerifyCheck& c) { return c.ok; });
  std::string status = verified ? "succeeded" : "verify_failed";
  nlohmann::json report = build_report(status, "");
  if (m_options.dry_run) {
    m_database->rollback();
  } else {
    m_ledger->finish_run(m_context.run_id, status, m_context.stats.to_json(), report);
    crash_point("run_finishing");
    m_database->commit();
  }
  // Only what committed (or, in a dry run, what was shown) goes to the file.
  m_audit_file->publish();
  return {verified ? ExitCode::ok : ExitCode::verify_failed, report};
}

nlohmann::json Run::failure_report_offline(const std::string& message) const {
  return {
      {"run_id", m_context.run_id.empty() ? nlohmann::json() : nlohmann::json(m_context.run_id)},
      {"recipe", m_recipe.name},
      {"recipe_path", m_options.recipe_path},
      {"mode", m_options.dry_run ? "dry-run" : "commit"},
      {"commit", m_commit_mode == CommitMode::batch ? "batch" : "atomic"},
      {"status", "failed"},
      {"error", message},
      {"stats", m_context.stats.to_json()},
      {"changes", nlohmann::json::array()},
      {"review", nlohmann::json::array()},
      {"verify", nlohmann::json::array()}};
}

nlohmann::json Run::fail(const std::string& message) {
  try {
    if (m_database && m_database->in_transaction()) m_database->rollback();
  } catch (const std::exception&) {
    // The connection is gone; the server has rolled back.
  }
  nlohmann::json report = failure_report_offline(message);
  if (!m_context.run_id.empty()) {
    report = build_report("failed", message);
    record_failure(message);
  }
  return report;
}

void Run::record_failure(const std::string& message) {
  if (!m_database || m_context.run_id.empty() || m_options.dry_run) return;
  try {
    m_database->begin();
    if (!m_run_row_committed && m_options.resume_run_id.empty()) {
      m_ledger->ensure_schema();
      RunRecord record;
      record.run_id = m_context.run_id;
      record.recipe = m_recipe.name;
      record.recipe_path = absolute(m_recipe.path);
      record.recipe_hash = m_recipe.hash;
      record.recipe_version = m_recipe.version;
      record.mode = "commit";
      record.commit_mode = m_commit_mode == CommitMode::batch ? "batch" : "atomic";
      record.status = "failed";
      record.options = nlohmann::json::object();
      record.checkpoint = nlohmann::json::object();
      record.stats = m_context.stats.to_json();
      m_ledger->insert_run(record);
    }
    m_ledger->finish_run(m_context.run_id, "failed", m_context.stats.to_json(),
                         build_report("failed", message));
    m_database->commit();
  } catch (const std::exception& e) {
    spdlog::warn("could not record the failed run in the ledger: {}", e.what());
  }
}

std::vector<std::string> Run::check() {
  load();
  auto problems = validate();
  if (m_recipe.input && m_options.inputs.count(*m_recipe.input)) {
    try {
      InputFile file(m_options.inputs.at(*m_recipe.input));
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

RunOptions resume_options(const std::string& run_id, const std::optional<std::string>& db,
                          const std::string& ledger_schema) {
  Database database(resolve_conninfo(db));
  Ledger ledger(database, ledger_schema);
  auto record = ledger.find_run(run_id);
  if (!record) throw UsageError("no run " + run_id + " in the ledger");
  if (record->mode != "commit") throw UsageError("run " + run_id + " was a dry run; run it again");
  if (record->status == "succeeded" || record->status == "verify_failed")
    throw UsageError("run " + run_id + " already finished (" + record->status + ")");
  if (record->commit_mode != "batch")
    throw UsageError("run " + run_id +
                     " used commit = \"atomic\": nothing of it was committed, so there is "
                     "nothing to resume; run the recipe again");
  const auto& saved = record->options;
  RunOptions options;
  options.db = db;
  options.ledger_schema = ledger_schema;
  options.resume_run_id = record->run_id;
  options.recipe_path = saved.value("recipe_path", record->recipe_path);
  // Held in locals: a range-for over items() of a temporary would dangle.
  const nlohmann::json inputs = saved.value("inputs", nlohmann::json::object());
  for (const auto& [name, path] : inputs.items()) options.inputs[name] = path.get<std::string>();
  const nlohmann::json vars = saved.value("vars", nlohmann::json::object());
  for (const auto& [name, value] : vars.items()) options.vars[name] = value.get<std::string>();
  parse_confidence(saved.value("min_confidence", std::string("high")), options.min_confidence);
  options.batch_size = saved.value("batch_size", k_default_batch_size);
  options.commit = CommitMode::batch;
  options.audit_file = saved.value("audit_file", std::string());
  const nlohmann::json libs = saved.value("libs", nlohmann::json::array());
  for (const auto& lib : libs) options.libs.push_back(lib.get<std::string>());
  if (saved.contains("search_path") && saved["search_path"].is_string())
    options.search_path = saved["search_path"].get<std::string>();
  if (saved.contains("limit") && saved["limit"].is_number())
    options.limit = saved["limit"].get<long long>();
  if (!std::filesystem::is_regular_file(options.recipe_path))
    throw RecipeError(options.recipe_path + ": the recipe of run " + run_id + " is gone");
  if (text_hash(read_file(options.recipe_path)) != record->recipe_hash)
    throw RecipeError(options.recipe_path + ": the recipe changed since run " + run_id +
                      " started; resume refused. Start a new run: recipes are idempotent, so it "
                      "redoes nothing that is done");
  return options;
}

}  // namespace host
