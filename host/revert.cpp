#include "host/revert.hpp"

#include "host/catalog.hpp"
#include "host/conninfo.hpp"
#include "host/crash_point.hpp"
#include "host/database.hpp"
#include "host/errors.hpp"
#include "host/ledger.hpp"
#include "host/run_lock.hpp"
#include "host/sql_text.hpp"

namespace host {

namespace {

constexpr std::size_t k_conflict_list_limit = 1000;

std::vector<std::string> parse_text_array(const pqxx::field& field) {
  std::vector<std::string> items;
  auto parser = field.as_array();
  for (auto item = parser.get_next(); item.first != pqxx::array_parser::juncture::done;
       item = parser.get_next())
    if (item.first == pqxx::array_parser::juncture::string_value) items.push_back(item.second);
  return items;
}

// "t.a = (k.e->>0)::int AND t.b = (k.e->>1)::text"
std::string key_match(const TableInfo& table, const std::vector<std::string>& key_columns) {
  std::string sql;
  for (std::size_t i = 0; i < key_columns.size(); ++i) {
    const Column& column = table.require_column(key_columns[i]);
    sql += (i ? " AND " : "") + ("t." + quote_ident(column.name)) + " = (c.key->>" +
           std::to_string(i) + ")::" + column.cast_type;
  }
  return sql;
}

// Whether the cell still holds what the run wrote, compared as the column's type
// (so that no client setting can make equal values look different), or as
// canonical text for types without `=`.
std::string still_holds(const Column& column, const std::string& target) {
  if (column.has_equality) return target + " IS NOT DISTINCT FROM c.new::" + column.cast_type;
  return target + "::text IS NOT DISTINCT FROM c.new";
}

// What the run was allowed to write, as recorded when it started: qualified table
// name -> columns ("*" for all). Runs recorded before writes were kept allow all.
class RecordedWrites {
 public:
  explicit RecordedWrites(const nlohmann::json& options)
      : m_known(options.is_object() && options.contains("writes") && options["writes"].is_object()),
        m_writes(m_known ? options["writes"] : nlohmann::json::object()) {}

  bool allows(const std::string& qualified_table, const std::string& column) const {
    if (!m_known) return true;
    auto it = m_writes.find(qualified_table);
    if (it == m_writes.end()) return false;
    if (column.empty()) return true;
    for (const auto& allowed : *it)
      if (allowed == "*" || allowed == column) return true;
    return false;
  }

 private:
  bool m_known;
  nlohmann::json m_writes;
};

}  // namespace

RevertOutcome revert_run(const std::string& run_id, bool dry_run,
                         const std::optional<std::string>& db, const std::string& ledger_schema) {
  Database database(resolve_conninfo(db));
  Ledger ledger(database, ledger_schema);
  Catalog catalog(database);
  if (!ledger.exists()) throw UsageError("no run " + run_id + " in the ledger");
  database.begin();
  // The run's row is locked before it is read: a second revert waits here for
  // the first, then finds the run reverted, instead of redoing it from a stale read.
  auto locked = database.exec("SELECT run_id::text FROM " + ledger.table("runs") +
                                  " WHERE run_id::text = lower($1) FOR UPDATE",
                              {run_id});
  if (locked.empty()) throw UsageError("no run " + run_id + " in the ledger");
  auto run = ledger.find_run(locked[0][0].c_str());
  if (run->mode != "commit")
    throw UsageError("run " + run_id + " was a dry run: nothing to revert");
  RevertOutcome outcome;
  auto conflicts = nlohmann::json::array();
  if (!run->reverted_at.empty()) {
    // Reverting twice must not undo what happened after the first revert.
    database.rollback();
    outcome.report = {{"run_id", run->run_id}, {"recipe", run->recipe},
                      {"dry_run", dry_run},    {"already_reverted_at", run->reverted_at},
                      {"restored_cells", 0},   {"deleted_rows", 0},
                      {"conflicts", 0},        {"conflict_items", nlohmann::json::array()}};
    return outcome;
  }
  // A process still working on the run would go on writing after the revert.
  // Held until this transaction ends, the lock also keeps a resume from starting.
  if (!try_lock_run_for_transaction(database, run->run_id))
    throw UsageError("run " + run->run_id +
                     " is being processed by a host process; revert it once that process has "
                     "ended (host pause " +
                     run->run_id + " stops it cleanly)");
  RecordedWrites writes(run->options);
  auto changes = database.exec(
      "SELECT seq, op, table_name, column_name, key_columns, "
      "qualified_table, table_oid::text FROM " +
          ledger.table("changes") + " WHERE run_id = $1 ORDER BY seq DESC",
      {run->run_id});
  for (const auto& change : changes) {
    crash_point("revert_change");
    std::string seq = change[0].c_str(), op = change[1].c_str(), table_name = change[2].c_str();
    auto key_columns = parse_text_array(change[4]);
    // Changes recorded since ledger version 2 name their table schema-qualified
    // and by OID; a bare name is resolved only for older runs.
    std::string qualified = change[5].is_null() ? table_name : change[5].c_str();
    std::string column_name = change[3].is_null() ? "" : change[3].c_str();
    const TableInfo* table = catalog.find_table(qualified);
    auto refuse = [&](const std::string& reason) {
      ++outcome.conflicts;
      if (conflicts.size() < k_conflict_list_limit)
        conflicts.push_back({{"table", table_name}, {"reason", reason}});
    };
    if (!table) {
      refuse("the table no longer exists");
      continue;
    }
    if (!change[6].is_null() && table->oid != change[6].c_str()) {
      refuse("the table was dropped and created again since the run");
      continue;
    }
    if (!writes.allows(change[5].is_null() ? table->qualified_name : qualified, column_name)) {
      refuse(std::string("the ledger names ") + (column_name.empty() ? "a table" : "a column") +
             " outside the run's writes; not touched");
      continue;
    }
    std::string match = key_match(*table, key_columns);
    Params params{run->run_id, seq};
    if (op == "update") {
      const Column& column = table->require_column(column_name);
      std::string target = "t." + quote_ident(column.name);
      // Items of the ledger row, then the ones whose cell still holds the run's value.
      std::string items =
          "WITH c AS (SELECT k.key, o.old, n.new FROM " + ledger.table("changes") +
          " l, jsonb_array_elements(l.keys) WITH ORDINALITY AS k(key, i) JOIN unnest(l.old_values) "
          "WITH ORDINALITY AS o(old, i) USING (i) JOIN unnest(l.new_values) WITH ORDINALITY AS "
          "n(new, i) USING (i) WHERE l.run_id = $1 AND l.seq = $2::bigint)";
      auto restored =
          database.exec(items + ", r AS (UPDATE " + table->qualified_name + " t SET " +
                            quote_ident(column.name) + " = c.old::" + column.cast_type +
                            " FROM c WHERE " + match + " AND " + still_holds(column, target) +
                            " RETURNING c.key) "
                            "SELECT c.key::text, c.new, (SELECT " +
                            target + "::text FROM " + table->qualified_name + " t WHERE " + match +
                            "), EXISTS (SELECT 1 FROM " + table->qualified_name + " t WHERE " +
                            match + ") FROM c WHERE c.key NOT IN (SELECT key FROM r)",
                        params);
      long long total =
          database
              .exec("SELECT jsonb_array_length(keys) FROM " + ledger.table("changes") +
                        " WHERE run_id = $1 AND seq = $2::bigint",
                    params)[0][0]
              .as<long long>();
      outcome.restored_cells += total - static_cast<long long>(restored.size());
      for (const auto& row : restored) {
        ++outcome.conflicts;
        if (conflicts.size() < k_conflict_list_limit)
          conflicts.push_back(
              {{"table", table_name},
               {"column", column.name},
               {"key", nlohmann::json::parse(row[0].c_str())},
               {"run_wrote", row[1].is_null() ? nlohmann::json() : nlohmann::json(row[1].c_str())},
               {"now", row[2].is_null() ? nlohmann::json() : nlohmann::json(row[2].c_str())},
               {"reason", std::string(row[3].c_str()) == "t" ? "changed since the run"
                                                             : "the row no longer exists"}});
      }
    } else {
      std::string items = "WITH c AS (SELECT k.key, v.row_values FROM " + ledger.table("changes") +
                          " l, jsonb_array_elements(l.keys) WITH ORDINALITY AS k(key, i) JOIN "
                          "jsonb_array_elements(l.row_values) WITH ORDINALITY AS v(row_values, i) "
                          "USING (i) WHERE l.run_id = $1 AND l.seq = $2::bigint)";
      auto kept = database.exec(
          items + ", d AS (DELETE FROM " + table->qualified_name + " t USING c WHERE " + match +
              " AND to_jsonb(t) = c.row_values RETURNING c.key) "
              "SELECT c.key::text FROM c WHERE c.key NOT IN (SELECT key FROM d) AND EXISTS "
              "(SELECT 1 FROM " +
              table->qualified_name + " t WHERE " + match + ")",
          params);
      long long deleted =
          database
              .exec(items + " SELECT count(*) FROM c WHERE NOT EXISTS (SELECT 1 FROM " +
                        table->qualified_name + " t WHERE " + match + ")",
                    params)[0][0]
              .as<long long>();
      outcome.deleted_rows += deleted;
      for (const auto& row : kept) {
        ++outcome.conflicts;
        if (conflicts.size() < k_conflict_list_limit)
          conflicts.push_back({{"table", table_name},
                               {"key", nlohmann::json::parse(row[0].c_str())},
                               {"reason", "inserted row changed since the run; kept"}});
      }
    }
  }
  outcome.report = {{"run_id", run->run_id},
                    {"recipe", run->recipe},
                    {"dry_run", dry_run},
                    {"restored_cells", outcome.restored_cells},
                    {"deleted_rows", outcome.deleted_rows},
                    {"conflicts", outcome.conflicts},
                    {"conflict_items", conflicts}};
  if (dry_run) {
    database.rollback();
  } else {
    ledger.mark_reverted(run->run_id, outcome.report);
    crash_point("revert_committing");
    // An unfinished run that is reverted can no longer be resumed: its changes
    // would land after the revert and be unrevertable.
    if (run->status == "running" || run->status == "paused")
      database.exec("UPDATE " + ledger.table("runs") +
                        " SET status = 'cancelled', finished_at = coalesce(finished_at, "
                        "clock_timestamp()) WHERE run_id = $1",
                    {run->run_id});
    database.commit();
  }
  return outcome;
}

std::string describe_revert(const RevertOutcome& outcome) {
  const auto& report = outcome.report;
  bool dry = report["dry_run"].get<bool>();
  if (report.contains("already_reverted_at"))
    return "Run " + report["run_id"].get<std::string>() + " was already reverted at " +
           report["already_reverted_at"].get<std::string>() + "; nothing to do.\n";
  std::string text =
      std::string(dry ? "Would revert" : "Reverted") + " run " +
      report["run_id"].get<std::string>() + " (" + report["recipe"].get<std::string>() +
      "): " + std::to_string(outcome.restored_cells) + " cell(s) " +
      (dry ? "to restore" : "restored") + ", " + std::to_string(outcome.deleted_rows) +
      " inserted row(s) " + (dry ? "to delete" : "deleted") + ", " +
      std::to_string(outcome.conflicts) + " conflict(s).\n";
  for (const auto& conflict : report["conflict_items"]) {
    text += "  conflict: " + conflict["table"].get<std::string>();
    if (conflict.contains("column")) text += "." + conflict["column"].get<std::string>();
    if (conflict.contains("key")) text += " key " + conflict["key"].dump();
    if (conflict.contains("run_wrote"))
      text += ": the run wrote " + conflict["run_wrote"].dump() + ", now " + conflict["now"].dump();
    text += " (" + conflict["reason"].get<std::string>() + "; left alone)\n";
  }
  return text;
}

}  // namespace host
