#include "host/recipe_session.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <lua.hpp>

#include "bindings/lua_value.hpp"
#include "bindings/primitives.hpp"
#include "bindings/verify_helpers.hpp"
#include "host/audit_file.hpp"
#include "host/catalog.hpp"
#include "host/crash_point.hpp"
#include "host/database.hpp"
#include "host/ledger.hpp"
#include "host/query_guard.hpp"
#include "host/report.hpp"

namespace host {

namespace {

constexpr std::size_t k_id_cache_limit = 200000;

}  // namespace

RecipeSession::RecipeSession(const RunOptions& options, std::string conninfo, std::string source)
    : m_options(options), m_conninfo(std::move(conninfo)), m_source_text(std::move(source)) {}

RecipeSession::~RecipeSession() = default;

std::string RecipeSession::restore_source_paths(const std::string& message) const {
  return m_sandbox ? m_sandbox->restore_source_paths(message) : message;
}

void RecipeSession::open_audit_file(const std::string& run_id) {
  m_audit_file = std::make_unique<AuditFile>(m_options.audit_file, run_id, m_recipe.name,
                                             m_options.dry_run ? "dry-run" : "commit");
}

void RecipeSession::load() {
  m_database = std::make_unique<Database>(m_conninfo);
  // Every statement of the run, the recipe's own included, so that the run never
  // blocks the application for long.
  m_database->configure("SELECT set_config('lock_timeout', $1, false)",
                        {std::to_string(m_options.operating.lock_timeout_ms)});
  m_database->configure("SELECT set_config('statement_timeout', $1, false)",
                        {std::to_string(m_options.operating.statement_timeout_ms)});
  // A resumed or joined run resolves names as the run did when it started.
  if (m_options.search_path)
    m_database->configure("SELECT set_config('search_path', $1, false)", {*m_options.search_path});
  m_catalog = std::make_unique<Catalog>(*m_database);
  m_ledger = std::make_unique<Ledger>(*m_database, m_options.ledger_schema);
  m_sandbox = std::make_unique<Sandbox>(m_options.limits);
  // Waiting for the batch before to be written is not the recipe's time.
  m_database->set_wait_observer(
      [this](std::chrono::nanoseconds waited) { m_sandbox->postpone_deadline(waited); });
  const RunOptions& options = m_options;
  m_sandbox->set_abandon_handler([this, &options](const std::string& message) {
    nlohmann::json report = {
        {"run_id", m_context.run_id.empty() ? nlohmann::json() : nlohmann::json(m_context.run_id)},
        {"recipe", m_recipe.name},
        {"recipe_path", options.recipe_path},
        {"status", "failed"},
        {"error", message},
        {"stats", m_context.stats.to_json()}};
    for (const auto& path : options.report_paths) write_report(report, path);
  });
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
    m_recipe = load_recipe_text(*m_sandbox, m_options.recipe_path, m_source_text);
  } catch (...) {
    if (m_database->in_transaction()) m_database->rollback();
    throw;
  }
  m_database->rollback();
  m_context.recipe_name = m_recipe.name;
}

void RecipeSession::refuse_protected_target(const TableInfo& table) const {
  // A forged ledger row would make `host revert` write whatever it names.
  if (table.schema == m_ledger->schema())
    throw RecipeError("writes: '" + table.display_name + "' is in the ledger schema '" +
                      m_ledger->schema() + "', which only the host writes");
}

std::string RecipeSession::resolved_search_path() {
  // The schemas the names resolved in, not the setting's text: "$user" and a
  // schema created later must not change what a resume or join resolves.
  return m_database
      ->exec(
          "SELECT coalesce(string_agg(quote_ident(s), ', ' ORDER BY o), '') "
          "FROM unnest(current_schemas(false)) WITH ORDINALITY AS x(s, o)")[0][0]
      .c_str();
}

nlohmann::json RecipeSession::recorded_writes() const {
  nlohmann::json writes = nlohmann::json::object();
  for (const auto& [table, columns] : m_context.allowed_writes)
    writes[table] = std::vector<std::string>(columns.begin(), columns.end());
  return writes;
}

nlohmann::json RecipeSession::modules_json() const {
  nlohmann::json modules = nlohmann::json::object();
  for (const auto& [name, module] : m_modules)
    modules[name] = {{"path", module.path}, {"hash", module.hash}};
  return modules;
}

std::vector<std::string> RecipeSession::validate() {
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

void RecipeSession::resume(RowTask& task, int arguments) {
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
  m_failed_rows.push_back({task.identity->key(), message});
  ++m_context.stats.errors;
}

void RecipeSession::answer_pending(std::vector<RowTask>& tasks) {
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
  // While the batch before is written, reads it cannot have changed need not wait.
  std::vector<const ReadRequest*> aside, here;
  std::vector<std::size_t> aside_positions, here_positions;
  for (std::size_t r = 0; r < reads.size(); ++r) {
    bool now = m_database->lent() && readable_aside(*reads[r]);
    (now ? aside : here).push_back(reads[r]);
    (now ? aside_positions : here_positions).push_back(read_positions[r]);
  }
  std::vector<ReadAnswer> answers_aside = answer_reads_aside(aside);
  std::vector<ReadAnswer> answers = answer_reads(*m_database, here);
  std::vector<const ReadAnswer*> answer_of(pending.size(), nullptr);
  for (std::size_t r = 0; r < here.size(); ++r) answer_of[here_positions[r]] = &answers[r];
  for (std::size_t r = 0; r < aside.size(); ++r)
    answer_of[aside_positions[r]] = &answers_aside[r];
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

bool RecipeSession::readable_aside(const ReadRequest& request) {
  const TableInfo& table = *request.table;
  if (request.filter.sql || !m_source || table.oid == m_source->oid || table.relkind != 'r' ||
      m_context.allowed_writes.count(table.qualified_name))
    return false;
  auto known = m_aside_tables.find(table.oid);
  if (known == m_aside_tables.end()) {
    Database& reader = this->reader();
    // Nothing that could hold rows of the source (a partition, a parent, a child)
    // and no row security (a policy may read the tables being written).
    auto rows = reader.exec(
        "SELECT NOT c.relrowsecurity AND NOT c.relispartition "
        "AND NOT EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid IN ($1::oid, $2::oid) "
        "OR i.inhparent IN ($1::oid, $2::oid)) "
        "AND NOT EXISTS (SELECT 1 FROM pg_class s WHERE s.oid = $2::oid AND s.relispartition) "
        "FROM pg_class c WHERE c.oid = $1::oid",
        {table.oid, m_source->oid});
    bool aside = !rows.empty() && std::string(rows[0][0].c_str()) == "t";
    known = m_aside_tables.emplace(table.oid, aside).first;
  }
  return known->second;
}

Database& RecipeSession::reader() {
  if (!m_reader) m_reader = m_database->another();
  return *m_reader;
}

std::vector<ReadAnswer> RecipeSession::answer_reads_aside(
    const std::vector<const ReadRequest*>& reads) {
  if (reads.empty()) return {};
  try {
    Database& reader = this->reader();
    reader.begin();
    auto answers = answer_reads(reader, reads);
    reader.commit();
    return answers;
  } catch (...) {
    forget_reader();  // opened afresh by the next batch that needs it
    throw;
  }
}

void RecipeSession::process_rows(std::size_t count, const RowPusher& push_row) {
  lua_State* L = m_sandbox->state();
  reset_row_registry(L, m_context);
  m_context.row_threads.clear();
  m_context.pending.clear();
  m_context.scanned_slots.clear();
  int top = lua_gettop(L);
  lua_createtable(L, static_cast<int>(count), 0);  // keeps the row threads alive
  int anchor = lua_gettop(L);
  std::vector<RowTask> tasks(count);
  // A row whose `each` returned leaves its thread to the next row: a thread per
  // row costs an allocation and garbage collection each. A thread that waits for
  // an answer, or failed, is not given again.
  std::vector<lua_State*> returned;
  int anchored = 0;
  m_context.writes_enabled = true;
  for (std::size_t i = 0; i < count; ++i) {
    RowTask& task = tasks[i];
    if (!returned.empty()) {
      task.thread = returned.back();
      returned.pop_back();
    } else {
      task.thread = lua_newthread(L);
      lua_rawseti(L, anchor, ++anchored);
      m_context.row_threads.insert(task.thread);
    }
    task.index = i;
    lua_rawgeti(task.thread, LUA_REGISTRYINDEX, m_recipe.each_ref);
    push_row(task.thread, i, task);
    ++m_context.stats.scanned;
    resume(task, 1);
    if (lua_status(task.thread) == 0) {
      lua_settop(task.thread, 0);
      returned.push_back(task.thread);
    }
  }
  while (!m_context.pending.empty()) answer_pending(tasks);
  m_context.writes_enabled = false;
  m_context.row_threads.clear();
  m_context.current_identity = RunContext::outside_rows();
  lua_settop(L, top);
}

void RecipeSession::run_verify() {
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

pqxx::result RecipeSession::scan_next(TableScan& scan) {
  try {
    return scan.next();
  } catch (const DatabaseError& e) {
    // Data (22), read-only (25) and syntax or name (42) errors come from the
    // recipe's SQL; anything else (locks, timeouts, permissions) is the database's.
    const std::string& state = e.sqlstate();
    bool from_filter =
        state.rfind("22", 0) == 0 || state.rfind("25", 0) == 0 || state.rfind("42", 0) == 0;
    if (!m_recipe.where.sql || !from_filter) throw;
    throw RecipeError(m_recipe.path + ": where: " + e.what());
  }
}

void RecipeSession::process_scanned(const pqxx::result& rows, std::size_t count) {
  std::vector<int> key_fields = key_field_numbers(rows, m_key);
  std::vector<std::string> place;  // the row's table oid and ctid
  process_rows(count, [&](lua_State* thread, std::size_t i, RowTask& task) {
    place.clear();
    push_result_row(thread, m_context, rows, static_cast<int>(i), TableScan::k_place_columns,
                    m_source, m_key, &key_fields, &place);
    m_context.scanned_slots.push_back(m_context.rows.size() - 1);
    const Params& key = m_context.rows.back().key;
    task.identity = std::make_shared<const RowIdentity>(
        RowIdentity{nullptr, "row " + describe_key(m_key, key), std::move(place[0]),
                    std::move(place[1]), m_source, &m_key, key});
  });
}

void RecipeSession::Counters::add_to(
    RunStats& to_stats, std::map<std::pair<std::string, std::string>, long long>& by_column) const {
  to_stats += stats;
  for (const auto& [where, count] : protected_by_column) by_column[where] += count;
}

RecipeSession::Counters& RecipeSession::Counters::operator+=(const Counters& other) {
  other.add_to(stats, protected_by_column);
  return *this;
}

void RecipeSession::flush_batch(int batch, long long& sequence, FlushIsolation isolation) {
  BatchOutput output = take_output();
  try {
    add_written(write_output(output, batch, sequence, isolation));
  } catch (const RecipeError&) {
    ++m_context.stats.errors;  // a value the database refused stopped the run
    throw;
  }
}

RecipeSession::BatchOutput RecipeSession::take_output() {
  BatchOutput output;
  std::swap(output.writes, m_context.writes);
  m_context.writes.reserve(output.writes.size());
  std::swap(output.reviews, m_context.reviews);
  std::swap(output.audit, m_context.audit);
  std::swap(output.failed_rows, m_failed_rows);
  return output;
}

RecipeSession::Counters RecipeSession::write_output(BatchOutput& output, int batch,
                                                    long long& sequence,
                                                    FlushIsolation isolation) {
  return write_output(output, batch, sequence, isolation, *m_database, *m_ledger);
}

RecipeSession::Counters RecipeSession::write_output(BatchOutput& output, int batch,
                                                    long long& sequence,
                                                    FlushIsolation isolation, Database& database,
                                                    Ledger& ledger) {
  std::size_t failed_before = output.failed_rows.size();
  FlushResult flushed =
      output.writes.flush(database, ledger, m_context.run_id, batch, sequence,
                          m_recipe.skip_failed_rows ? &output.failed_rows : nullptr, isolation);
  Counters written;
  written.stats.patched = flushed.patched;
  written.stats.protected_fields = flushed.protected_fields;
  written.stats.inserted = flushed.inserted;
  written.stats.errors = static_cast<long long>(output.failed_rows.size() - failed_before);
  written.protected_by_column = flushed.protected_by_column;
  crash_point("batch_flushed");
  record_events(sequence, output.reviews, output.audit, ledger);
  ledger.record_failed_rows(m_context.run_id, sequence, output.failed_rows);
  return written;
}

void RecipeSession::add_written(const Counters& written) {
  written.add_to(m_context.stats, m_context.protected_by_column);
}

void RecipeSession::record_events(long long& sequence) {
  record_events(sequence, m_context.reviews, m_context.audit, *m_ledger);
  m_context.reviews.clear();
  m_context.audit.clear();
}

void RecipeSession::record_events(long long& sequence, const std::vector<ReviewItem>& reviews,
                                  const std::vector<AuditEvent>& audit, Ledger& ledger) {
  ledger.record_reviews(m_context.run_id, sequence, reviews);
  ledger.record_audit(m_context.run_id, sequence, audit);
  if (m_audit_file) m_audit_file->stage(audit);
}

void RecipeSession::roll_back_batch(const Counters& before) {
  try {
    if (m_database->in_transaction()) m_database->rollback();
  } catch (const std::exception&) {
    // A lost connection has rolled back on the server.
  }
  m_context.stats = before.stats;
  m_context.protected_by_column = before.protected_by_column;
  m_context.writes.clear();
  m_context.reviews.clear();
  m_context.audit.clear();
  m_context.pending.clear();
  // A lost connection parked by a primitive belongs to the rolled-back try; left
  // here, it would fail every retry after the connection was re-opened.
  m_context.fatal = nullptr;
  m_failed_rows.clear();
  // Ids mapped by the rolled-back transaction are not in the ledger.
  m_context.id_cache.clear();
  if (m_audit_file) m_audit_file->discard();
}

}  // namespace host
