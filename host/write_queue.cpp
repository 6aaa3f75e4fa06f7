#include "host/write_queue.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <unordered_map>

#include "host/catalog.hpp"
#include "host/database.hpp"
#include "host/errors.hpp"
#include "host/ledger.hpp"
#include "host/sql_text.hpp"
#include "host/tuple_key.hpp"

namespace host {

namespace {

const char* const k_flush_savepoint = "host_flush";

// Thrown while probing item by item: the first write the database refused.
struct ProbeFailed {
  const QueuedWrite* item;
  std::string message;
};

// `value_sql` (text) compared with `target` as the column's type, or as canonical
// text where the type has no `=` (json, xml, point).
std::string same_value(const Column& column, const std::string& target,
                       const std::string& value_sql) {
  if (column.has_equality) return target + " = " + value_sql + "::" + column.cast_type;
  return target + "::text = " + value_sql;
}

std::string distinct_value(const Column& column, const std::string& target,
                           const std::string& value_sql) {
  if (column.has_equality)
    return target + " IS DISTINCT FROM " + value_sql + "::" + column.cast_type;
  return target + "::text IS DISTINCT FROM " + value_sql;
}

std::string param_ref(size_t index, const std::string& cast) {
  return "$" + std::to_string(index) + "::" + cast;
}

std::string short_value(const Param& value) {
  if (!value) return "NULL";
  std::string text = *value;
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  return "'" + text + "'";
}

// " AND t.k BETWEEN lowest AND highest of v.k0": bounding an update by its batch's
// key range keeps the planner from scanning the whole table. Not for a key with a
// collation of its own (the bounds, ordered in the type's collation, could exclude
// keys of the batch), nor for composite keys. ORDER BY .. LIMIT 1 rather than
// min()/max(): uuid and other key types have a btree order but no min/max.
std::string key_range_bound(const TableInfo& table, const std::vector<std::string>& key_columns,
                            const std::string& alias = "t") {
  if (key_columns.size() != 1) return "";
  const Column& key_column = table.require_column(key_columns[0]);
  if (key_column.own_collation) return "";
  std::string lowest = "(SELECT v.k0::" + key_column.cast_type + " FROM v ORDER BY 1 LIMIT 1)";
  std::string highest =
      "(SELECT v.k0::" + key_column.cast_type + " FROM v ORDER BY 1 DESC NULLS LAST LIMIT 1)";
  return " AND " + alias + "." + quote_ident(key_column.name) + " BETWEEN " + lowest + " AND " +
         highest;
}

// The SQL that ties the rows of `t` to the batch's key arrays `v` and to the
// locked rows `cur`, and that selects and returns their keys.
struct KeySql {
  std::string join_v, join_cur, select_keys, returning_keys;
  // `alias` names the row joined to `v` (t, or the snapshot's copy of it).
  KeySql(const TableInfo& table, const std::vector<std::string>& key_columns,
         const std::string& alias = "t") {
    for (std::size_t k = 0; k < key_columns.size(); ++k) {
      const Column& key_column = table.require_column(key_columns[k]);
      std::string name = quote_ident(key_column.name), slot = "k" + std::to_string(k);
      std::string sep = k ? " AND " : "";
      join_v += sep + alias + "." + name + " = v." + slot + "::" + key_column.cast_type;
      join_cur += sep + "t." + name + " = cur." + slot;
      select_keys += "t." + name + " AS " + slot + ", ";
      returning_keys += std::string(k ? ", " : "") + "t." + name + "::text";
    }
  }
};

struct PointeeHash {
  std::size_t operator()(const Params* key) const {
    std::size_t hash = key->size();
    for (const auto& part : *key)
      hash = hash * 31 + (part ? std::hash<std::string>()(*part) : 0x9e3779b9);
    return hash;
  }
};

struct PointeeEqual {
  bool operator()(const Params* a, const Params* b) const { return *a == *b; }
};

// A batch's statement of fills of empty cells, as built by Sender::build_row_updates.
struct RowUpdates {
  std::string sql;
  Params params;
  std::vector<long long> duplicates;  // per column: writes naming a cell named before
};

class Sender {
 public:
  Sender(Database& database, Ledger& ledger, const std::string& run_id, int batch,
         long long& sequence)
      : m_database(database),
        m_ledger(ledger),
        m_run_id(run_id),
        m_batch(batch),
        m_sequence(sequence) {}

  // Inserts the rows that are absent; returns the match keys of the rows inserted.
  std::set<Params> send_inserts(const std::vector<const QueuedWrite*>& items, FlushResult& result) {
    const QueuedWrite& first = *items.front();
    const TableInfo& table = *first.table;
    const auto& columns = first.columns;
    const auto& match_columns = *first.key_columns;
    const auto& ledger_columns = table.primary_key.empty() ? match_columns : table.primary_key;

    Params params;
    std::string unnest_args, v_names, casts;
    for (size_t c = 0; c < columns.size(); ++c) {
      Params column_values;
      for (const auto* item : items) column_values.push_back(item->values[c]);
      params.push_back(array_literal(column_values));
      if (c) {
        unnest_args += ", ";
        v_names += ", ";
        casts += ", ";
      }
      unnest_args += param_ref(params.size(), "text[]");
      v_names += "c" + std::to_string(c);
      casts += "v.c" + std::to_string(c) + "::" + table.require_column(columns[c]).cast_type;
    }
    std::string exists_condition;
    for (const auto& key_column : match_columns) {
      size_t c = std::find(columns.begin(), columns.end(), key_column) - columns.begin();
      if (!exists_condition.empty()) exists_condition += " AND ";
      exists_condition += "e." + quote_ident(key_column) + " = v.c" + std::to_string(c) +
                          "::" + table.require_column(key_column).cast_type;
    }
    auto key_array = [&](const std::vector<std::string>& key_columns) {
      std::string text = "jsonb_build_array(";
      for (size_t i = 0; i < key_columns.size(); ++i)
        text += (i ? ", t." : "t.") + quote_ident(key_columns[i]) + "::text";
      return text + ")";
    };
    std::string sql = "WITH v AS (SELECT * FROM unnest(" + unnest_args + ") AS v(" + v_names +
                      ")), ins AS (INSERT INTO " + table.qualified_name + " AS t (" +
                      column_list(columns) + ") SELECT " + casts +
                      " FROM v WHERE NOT EXISTS (SELECT 1 FROM " + table.qualified_name +
                      " e WHERE " + exists_condition + ") ON CONFLICT DO NOTHING RETURNING " +
                      key_array(ledger_columns) + " AS ledger_key, " + key_array(match_columns) +
                      " AS match_key, to_jsonb(t) AS row_values)";
    sql += ledger_insert(params, "insert", table, "", ledger_columns, first,
                         "jsonb_agg(ledger_key), NULL::text[], NULL::text[], jsonb_agg(row_values)",
                         "ins");
    sql += " SELECT match_key::text FROM ins";
    auto rows = m_database.exec_prepared(sql, params);
    std::set<Params> inserted;
    for (const auto& row : rows) {
      auto key = nlohmann::json::parse(row[0].c_str());
      Params values;
      for (const auto& v : key)
        values.push_back(v.is_null() ? Param{} : Param{v.get<std::string>()});
      inserted.insert(std::move(values));
    }
    result.inserted += static_cast<long long>(rows.size());
    return inserted;
  }

  // Updates the cells whose guard still holds; returns how many changed.
  long long send_updates(const std::vector<const QueuedWrite*>& items) {
    const QueuedWrite& first = *items.front();
    const TableInfo& table = *first.table;
    const Column& column = table.require_column(first.column);
    const auto& key_columns = *first.key_columns;

    Params params;
    std::string unnest_args, v_names;
    for (size_t k = 0; k < key_columns.size(); ++k) {
      Params key_values;
      for (const auto* item : items) key_values.push_back(item->key[k]);
      params.push_back(array_literal(key_values));
      unnest_args += param_ref(params.size(), "text[]") + ", ";
      v_names += "k" + std::to_string(k) + ", ";
    }
    Params values, expected;
    for (const auto* item : items) {
      values.push_back(item->value);
      expected.push_back(item->expected);
    }
    params.push_back(array_literal(values));
    unnest_args += param_ref(params.size(), "text[]");
    v_names += "val";
    params.push_back(array_literal(expected));
    unnest_args += ", " + param_ref(params.size(), "text[]");
    v_names += ", exp";
    std::string target = "t." + quote_ident(column.name);
    // A write that would leave the cell as it is (blank over the same blank, or
    // patch_if to the value it already holds) is no change: no new row version,
    // no ledger entry, and `host verify` can pass.
    auto guard = [&](const std::string& source) {
      std::string empty = empty_condition(column, target, first.empty);
      std::string changes = distinct_value(column, target, source + ".val");
      return "(((" + source + ".exp IS NULL AND " + empty + ") OR " +
             same_value(column, target, source + ".exp") + ") AND " + changes + ")";
    };
    KeySql keys(table, key_columns);
    std::string bound = key_range_bound(table, key_columns);
    std::string sql = "WITH v AS (SELECT * FROM unnest(" + unnest_args + ") AS v(" + v_names +
                      ")), cur AS (SELECT " + keys.select_keys + target + "::text AS old, v.val" +
                      ", v.exp" + " FROM " + table.qualified_name + " t JOIN v ON " + keys.join_v +
                      bound + " WHERE " + guard("v") + " FOR NO KEY UPDATE OF t), upd AS (UPDATE " +
                      table.qualified_name + " t SET " + quote_ident(column.name) +
                      " = cur.val::" + column.cast_type + " FROM cur WHERE " + keys.join_cur +
                      " AND " + guard("cur") + " RETURNING ARRAY[" + keys.returning_keys +
                      "] AS row_key, cur.old, " + target + "::text AS new)";
    sql += ledger_insert(params, "update", table, column.name, key_columns, first,
                         "to_jsonb(array_agg(row_key)), array_agg(old), array_agg(new), NULL::jsonb",
                         "upd");
    sql += " SELECT count(*) FROM upd";
    return m_database.exec_prepared(sql, params)[0][0].as<long long>();
  }

  // Builds (build_row_updates) and sends the statement. `changed` receives,
  // per column of `columns`, how many cells changed, `duplicates` how many writes
  // named a cell an earlier write of the batch had named.
  void send_row_updates(const std::vector<const QueuedWrite*>& items,
                        const std::vector<std::string>& columns, std::vector<long long>& changed,
                        std::vector<long long>& duplicates, bool lock_first) {
    RowUpdates built = build_row_updates(items, columns, lock_first);
    duplicates = built.duplicates;
    auto row = m_database.exec_prepared(built.sql, built.params)[0];
    changed.assign(duplicates.size(), 0);
    for (std::size_t c = 0; c < changed.size(); ++c)
      changed[c] = row[static_cast<int>(c)].as<long long>();
  }

 private:
  // The rows are locked FOR NO KEY UPDATE, as the UPDATE itself would lock them:
  // FOR UPDATE would also block the application's inserts of rows that reference
  // them by a foreign key.
  //
  // patch_if_empty cells of one table, every column of a row in one UPDATE: each
  // row is locked once and gets one new version, however many of its cells are
  // filled. Per column the ledger gets one row per (confidence, reason). The statement
  // returns, per column of `columns`, how many cells changed.
  //
  // Unless `lock_first`, the rows are not locked beforehand: the UPDATE joins each
  // row to its copy in the statement's snapshot (found by the ctid the batch's scan
  // saw, or by key) by ctid, which gives the old values, and a row another session
  // changed since is left out, never written from stale values: its newer version,
  // which the UPDATE rechecks its conditions on, has another xmin. (Not another
  // ctid alone: a TID scan's recheck does not compare the ctid again.) The caller
  // tries the cells left out again with `lock_first`.
  RowUpdates build_row_updates(const std::vector<const QueuedWrite*>& items,
                               const std::vector<std::string>& columns, bool lock_first) {
    RowUpdates built;
    std::vector<long long>& duplicates = built.duplicates;
    duplicates.assign(columns.size(), 0);
    const QueuedWrite& first = *items.front();
    const TableInfo& table = *first.table;
    const auto& key_columns = *first.key_columns;
    // Rows in first-seen order; per row and column the write (one per cell: the
    // caller has kept the first).
    std::unordered_map<const Params*, std::size_t, PointeeHash, PointeeEqual> row_of;
    std::vector<const Params*> row_keys;
    std::vector<std::vector<const QueuedWrite*>> cells;
    std::vector<std::vector<int>> cell_meta;  // per row and column, the cell's ledger group
    std::map<std::string, std::size_t> slot_of;
    for (std::size_t c = 0; c < columns.size(); ++c) slot_of[columns[c]] = c;
    // Ledger groups: (confidence, reason), numbered.
    std::map<std::pair<int, std::string>, int> meta_of;
    std::vector<std::pair<Confidence, std::string>> metas;
    const QueuedWrite* previous = nullptr;
    std::size_t previous_row = 0;
    int previous_meta = 0;
    row_of.reserve(items.size());
    for (const auto* item : items) {
      // A recipe's writes to one row come one after another: no lookups for them.
      std::size_t row = 0;
      if (previous && previous->own_row && item->own_row && previous->row_index == item->row_index) {
        row = previous_row;
      } else {
        auto [it, added] = row_of.emplace(&item->key, row_keys.size());
        if (added) {
          row_keys.push_back(&item->key);
          cells.emplace_back(columns.size(), nullptr);
          cell_meta.emplace_back(columns.size(), 0);
        }
        row = it->second;
      }
      int meta = previous_meta;
      if (!previous || previous->confidence != item->confidence ||
          *previous->reason != *item->reason) {
        auto [it, added] = meta_of.emplace(
            std::make_pair(static_cast<int>(item->confidence), *item->reason),
            static_cast<int>(metas.size()));
        if (added) metas.emplace_back(item->confidence, *item->reason);
        meta = it->second;
      }
      previous = item;
      previous_row = row;
      previous_meta = meta;
      std::size_t slot = columns.size() == 1 ? 0 : slot_of.at(item->column);
      const QueuedWrite*& cell = cells[row][slot];
      if (cell) {  // the same cell twice in one batch: the first call wins
        ++duplicates[slot];
        continue;
      }
      cell = item;
      cell_meta[row][slot] = meta;
    }
    Params& params = built.params;
    auto add = [&](Param value) {
      params.push_back(std::move(value));
      return "$" + std::to_string(params.size());
    };
    std::string unnest_args, v_names;
    auto add_array = [&](const Params& values, const std::string& type, const std::string& name) {
      unnest_args += (unnest_args.empty() ? "" : ", ") + add(array_literal(values)) + "::" + type;
      v_names += (v_names.empty() ? "" : ", ") + name;
    };
    for (std::size_t k = 0; k < key_columns.size(); ++k) {
      Params values;
      for (const auto* key : row_keys) values.push_back((*key)[k]);
      add_array(values, "text[]", "k" + std::to_string(k));
    }
    // Per column, what its cells share: one emptiness rule (the guard need not
    // read it per row) and one (confidence, reason) (its ledger row needs no join
    // to the batch's list of them). The bench's recipe, and most, share both.
    std::vector<std::optional<EmptyRule>> shared_rule(columns.size());
    std::vector<std::optional<int>> shared_meta(columns.size());
    for (std::size_t c = 0; c < columns.size(); ++c) {
      bool first_cell = true, one_rule = true, one_meta = true;
      EmptyRule rule = EmptyRule::blank;
      int meta = 0;
      for (std::size_t r = 0; r < cells.size(); ++r) {
        const QueuedWrite* cell = cells[r][c];
        if (!cell) continue;
        int id = cell_meta[r][c];
        if (first_cell) {
          rule = cell->empty;
          meta = id;
          first_cell = false;
        }
        one_rule = one_rule && cell->empty == rule;
        one_meta = one_meta && id == meta;
      }
      if (one_rule) shared_rule[c] = rule;
      if (one_meta) shared_meta[c] = meta;
    }
    for (std::size_t c = 0; c < columns.size(); ++c) {
      Params values, meta, null_only;
      for (std::size_t r = 0; r < cells.size(); ++r) {
        const QueuedWrite* cell = cells[r][c];
        values.push_back(cell ? cell->value : Param{});
        if (!shared_meta[c]) meta.push_back(cell ? Param{std::to_string(cell_meta[r][c])} : Param{});
        if (!shared_rule[c])
          null_only.push_back(cell && cell->empty == EmptyRule::null_only ? "t" : "f");
      }
      std::string n = std::to_string(c);
      add_array(values, "text[]", "val" + n);
      if (!shared_meta[c]) add_array(meta, "int[]", "m" + n);
      if (!shared_rule[c]) add_array(null_only, "bool[]", "n" + n);
    }
    // Rows the batch scanned from the table itself are found by their place (ctid)
    // instead of through the key's index. The key must still match: the place may
    // hold another row by now.
    bool by_place = !lock_first && table.relkind == 'r';
    if (by_place) {
      Params places;
      for (const auto& row : cells) {
        const QueuedWrite* cell = *std::find_if(row.begin(), row.end(),
                                                [](const QueuedWrite* w) { return w != nullptr; });
        by_place = cell->row && !cell->row->place.empty() && cell->row->table_oid == table.oid &&
                   std::all_of(row.begin(), row.end(),
                               [](const QueuedWrite* w) { return !w || w->own_row; });
        if (!by_place) break;
        places.push_back(cell->row->place);
      }
      if (by_place) add_array(places, "tid[]", "place");
    }
    // Cell c's guard, over the row `alias`, reading the batch's values from `source`.
    auto guard_of = [&](std::size_t c, const std::string& alias, const std::string& source) {
      const Column& column = table.require_column(columns[c]);
      std::string n = std::to_string(c), target = alias + "." + quote_ident(column.name);
      // A queued patch never writes NULL: a value marks the row's cell as queued.
      std::string present = "(" + source + ".val" + n + " IS NOT NULL AND ";
      const std::optional<EmptyRule>& rule = shared_rule[c];
      if (rule && (*rule == EmptyRule::null_only || !column.is_text))
        // Only NULL is empty, and the value is not NULL.
        return present + target + " IS NULL)";
      std::string empty =
          rule ? empty_condition(column, target, *rule)
               : "(" + empty_condition(column, target, EmptyRule::null_only) + " OR (NOT " +
                     source + ".n" + n + " AND " +
                     empty_condition(column, target, EmptyRule::blank) + "))";
      return present + empty + " AND " + distinct_value(column, target, source + ".val" + n) + ")";
    };
    std::string& sql = built.sql;
    if (lock_first) {
      KeySql keys_sql(table, key_columns);
      std::string selected, guards, sets, returned;
      for (std::size_t c = 0; c < columns.size(); ++c) {
        const Column& column = table.require_column(columns[c]);
        std::string n = std::to_string(c), target = "t." + quote_ident(column.name);
        std::string guard = guard_of(c, "t", "v");
        guards += (c ? " OR " : "") + guard;
        selected += guard + " AS w" + n + ", " + target + "::text AS old" + n + ", v.val" + n +
                    (shared_meta[c] ? "" : ", v.m" + n) + ", ";
        sets += std::string(c ? ", " : "") + quote_ident(column.name) + " = CASE WHEN cur.w" + n +
                " THEN cur.val" + n + "::" + column.cast_type + " ELSE " + target + " END";
        returned += ", cur.w" + n + (shared_meta[c] ? "" : ", cur.m" + n) + ", cur.old" + n +
                    ", " + target + "::text AS new" + n;
      }
      sql = "WITH v AS (SELECT * FROM unnest(" + unnest_args + ") AS v(" + v_names +
            ")), cur AS (SELECT " + keys_sql.select_keys + selected + "true AS locked FROM " +
            table.qualified_name + " t JOIN v ON " + keys_sql.join_v +
            key_range_bound(table, key_columns) + " WHERE " + guards +
            " FOR NO KEY UPDATE OF t), upd AS (UPDATE " + table.qualified_name + " t SET " +
            sets + " FROM cur WHERE " + keys_sql.join_cur + " RETURNING ARRAY[" +
            keys_sql.returning_keys + "] AS row_key" + returned + ")";
    } else {
      KeySql snapshot_keys(table, key_columns, "o");
      std::string guards, sets, returned;
      for (std::size_t c = 0; c < columns.size(); ++c) {
        const Column& column = table.require_column(columns[c]);
        std::string n = std::to_string(c), name = quote_ident(column.name);
        std::string guard = guard_of(c, "t", "v");
        guards += (c ? " OR " : "") + guard;
        sets += std::string(c ? ", " : "") + name + " = CASE WHEN " + guard +
                " THEN v.val" + n + "::" + column.cast_type + " ELSE t." + name + " END";
        returned += ", " + guard_of(c, "o", "v") + " AS w" + n +
                    (shared_meta[c] ? "" : ", v.m" + n) + ", o." + name + "::text AS old" + n +
                    ", t." + name + "::text AS new" + n;
      }
      std::string snapshot =
          by_place ? "ONLY " + table.qualified_name + " o ON o.ctid = v.place AND " +
                         snapshot_keys.join_v
                   : table.qualified_name + " o ON " + snapshot_keys.join_v +
                         key_range_bound(table, key_columns, "o");
      sql = "WITH v AS (SELECT * FROM unnest(" + unnest_args + ") AS v(" + v_names +
            ")), upd AS (UPDATE " + table.qualified_name + " t SET " + sets + " FROM v JOIN " +
            snapshot +
            " WHERE t.tableoid = o.tableoid AND t.ctid = o.ctid AND t.xmin = o.xmin AND (" +
            guards +
            ") RETURNING ARRAY[" + snapshot_keys.returning_keys + "] AS row_key" +
            returned + ")";
    }
    // Columns with one ledger row per batch (one (confidence, reason) for all cells).
    std::size_t sharing = static_cast<std::size_t>(
        std::count_if(shared_meta.begin(), shared_meta.end(),
                      [](const std::optional<int>& m) { return m.has_value(); }));
    if (sharing < columns.size()) {
      Params meta_ids, confidences, reasons;
      for (std::size_t m = 0; m < metas.size(); ++m) {
        meta_ids.push_back(std::to_string(m));
        confidences.push_back(std::string(confidence_name(metas[m].first)));
        reasons.push_back(metas[m].second.empty() ? Param{} : Param{metas[m].second});
      }
      sql += ", meta AS (SELECT * FROM unnest(" + add(array_literal(meta_ids)) + "::int[], " +
             add(array_literal(confidences)) + "::text[], " + add(array_literal(reasons)) +
             "::text[]) AS meta(id, confidence, reason))";
    }
    std::string run = add(m_run_id), batch = add(std::to_string(m_batch)),
                table_name = add(table.display_name), qualified_table = add(table.qualified_name),
                table_oid = add(table.oid),
                keys = add(array_literal(Params(key_columns.begin(), key_columns.end())));
    // Where every changed row had all its cells written, as in most batches, the
    // ledger rows of the columns share one array of keys, built once instead of once
    // per column (a 1M-row run of the benchmark's recipe: 8.71 s against 8.05 s,
    // medians of 5 alternating runs). Only for a column with one ledger row per
    // batch: its old and new values are aggregated in the order the statement
    // returned the rows, as the shared keys are; grouped per (confidence, reason),
    // they may be aggregated in another order.
    if (sharing > 1)
      sql += ", batch_keys AS (SELECT to_jsonb(array_agg(row_key)) AS k, count(*) AS n FROM upd)";
    std::string counts;
    for (std::size_t c = 0; c < columns.size(); ++c) {
      std::string n = std::to_string(c);
      long long seq_base = m_sequence + 1;
      std::string column_keys =
          sharing > 1 && shared_meta[c]
              ? "CASE WHEN count(*) = (SELECT n FROM batch_keys) THEN (SELECT k FROM "
                "batch_keys) ELSE (SELECT to_jsonb(array_agg(x.row_key)) FROM upd x WHERE x.w" +
                    n + ") END"
              : "to_jsonb(array_agg(u.row_key))";
      m_sequence += static_cast<long long>(metas.size());
      sql += ", led" + n + " AS (INSERT INTO " + m_ledger.table("changes") +
             " (run_id, seq, batch, op, table_name, qualified_table, table_oid, column_name, "
             "key_columns, keys, old_values, new_values, row_values, confidence, reason) SELECT " +
             run + "::uuid, ";
      std::string columns_and_aggregates =
          batch + "::int, 'update', " + table_name + ", " + qualified_table + ", " + table_oid +
          "::oid, " + add(columns[c]) + ", " + keys + "::text[], " + column_keys +
          ", array_agg(u.old" + n + "), array_agg(u.new" + n + "), NULL::jsonb, ";
      if (const std::optional<int>& meta = shared_meta[c]) {
        const auto& [confidence, reason] = metas[static_cast<std::size_t>(*meta)];
        sql += add(std::to_string(seq_base + *meta)) + "::bigint, " + columns_and_aggregates +
               add(std::string(confidence_name(confidence))) + ", " +
               add(reason.empty() ? Param{} : Param{reason}) + " FROM upd u WHERE u.w" + n +
               " HAVING count(*) > 0)";
      } else {
        sql += add(std::to_string(seq_base)) + "::bigint + u.m" + n + ", " +
               columns_and_aggregates + "min(meta.confidence), min(meta.reason) FROM upd u " +
               "JOIN meta ON meta.id = u.m" + n + " WHERE u.w" + n + " GROUP BY u.m" + n + ")";
      }
      counts += std::string(c ? ", " : "") + "count(*) FILTER (WHERE w" + n + ")";
    }
    sql += " SELECT " + counts + " FROM upd";
    return built;
  }

  std::string ledger_insert(Params& params, const std::string& op, const TableInfo& table,
                            const std::string& column, const std::vector<std::string>& key_columns,
                            const QueuedWrite& first, const std::string& aggregates,
                            const std::string& source) {
    auto add = [&](Param value) {
      params.push_back(std::move(value));
      return "$" + std::to_string(params.size());
    };
    std::string run = add(m_run_id), seq = add(std::to_string(++m_sequence)),
                batch = add(std::to_string(m_batch)), table_name = add(table.display_name),
                qualified_table = add(table.qualified_name), table_oid = add(table.oid),
                column_name = add(column.empty() ? Param{} : Param{column}),
                keys = add(array_literal(Params(key_columns.begin(), key_columns.end()))),
                confidence = add(std::string(confidence_name(first.confidence))),
                reason = add(first.reason->empty() ? Param{} : Param{*first.reason});
    return ", led AS (INSERT INTO " + m_ledger.table("changes") +
           " (run_id, seq, batch, op, table_name, qualified_table, table_oid, column_name, "
           "key_columns, keys, old_values, new_values, row_values, confidence, reason) SELECT " +
           run + "::uuid, " + seq + "::bigint, " + batch + "::int, '" + op + "', " + table_name +
           ", " + qualified_table + ", " + table_oid + "::oid, " + column_name + ", " + keys +
           "::text[], " + aggregates + ", " + confidence + ", " + reason + " FROM " + source +
           " HAVING count(*) > 0)";
  }

  Database& m_database;
  Ledger& m_ledger;
  const std::string& m_run_id;
  int m_batch;
  long long& m_sequence;
};

bool is_insert(const QueuedWrite& w) {
  return w.kind == WriteKind::insert_if_absent || w.kind == WriteKind::fill_from;
}

std::string insert_group(const QueuedWrite& w) {
  std::string key = tuple_key(w.table->qualified_name, std::to_string(w.columns.size()));
  for (const auto& c : w.columns) append_key_part(key, c);
  append_key_part(key, std::to_string(w.key_columns->size()));
  for (const auto& c : *w.key_columns) append_key_part(key, c);
  append_key_part(key, confidence_name(w.confidence));
  append_key_part(key, *w.reason);
  return key;
}

std::string update_group(const QueuedWrite& w) {
  std::string key =
      tuple_key(w.table->qualified_name, w.column, w.kind == WriteKind::patch_if ? "if" : "empty",
                w.empty == EmptyRule::blank ? "b" : "n", std::to_string(w.key_columns->size()));
  for (const auto& c : *w.key_columns) append_key_part(key, c);
  append_key_part(key, confidence_name(w.confidence));
  append_key_part(key, *w.reason);
  return key;
}

// Writes by (table, key columns), in first-seen order; a batch has few such groups.
std::vector<std::vector<const QueuedWrite*>> group_by_table(
    const std::vector<const QueuedWrite*>& items) {
  std::vector<std::vector<const QueuedWrite*>> groups;
  for (const auto* item : items) {
    auto same = [&](const std::vector<const QueuedWrite*>& group) {
      const QueuedWrite& first = *group.front();
      return first.table == item->table && (first.key_columns == item->key_columns ||
                                            *first.key_columns == *item->key_columns);
    };
    auto it = std::find_if(groups.begin(), groups.end(), same);
    if (it == groups.end())
      groups.push_back({item});
    else
      it->push_back(item);
  }
  return groups;
}

// Groups in first-seen order.
template <typename KeyFn>
std::vector<std::vector<const QueuedWrite*>> group_by(const std::vector<const QueuedWrite*>& items,
                                                      KeyFn key_of) {
  std::vector<std::vector<const QueuedWrite*>> groups;
  std::map<std::string, size_t> index;
  for (const auto* item : items) {
    auto [it, added] = index.emplace(key_of(*item), groups.size());
    if (added) groups.emplace_back();
    groups[it->second].push_back(item);
  }
  return groups;
}

// Runs `send` for the whole group, or item by item in savepoints when probing.
template <typename SendFn>
void send_group(Database& database, const std::vector<const QueuedWrite*>& group, bool probe,
                SendFn send) {
  if (!probe) {
    send(group);
    return;
  }
  for (const auto* item : group) {
    database.savepoint("host_probe");
    try {
      send(std::vector<const QueuedWrite*>{item});
      database.release("host_probe");
    } catch (const DatabaseError& error) {
      database.rollback_to("host_probe");
      database.release("host_probe");
      throw ProbeFailed{item, error.what()};
    }
  }
}

// The columns a group of fills writes, in first-seen order, and how many writes
// each has.
struct FillColumns {
  explicit FillColumns(const std::vector<const QueuedWrite*>& items) {
    for (const auto* item : items)
      if (!queued[item->column]++) columns.push_back(item->column);
  }
  std::vector<std::string> columns;
  std::map<std::string, long long> queued;
};

// Fills of one table's empty cells: one statement for them all, then the cells it
// left out, changed meanwhile, with the rows locked first.
void send_fills(Sender& sender, const std::vector<const QueuedWrite*>& items,
                const FillColumns& fill, FlushResult& result) {
  const auto& columns = fill.columns;
  std::vector<long long> changed, duplicates;
  sender.send_row_updates(items, columns, changed, duplicates, false);
  long long cells = 0, written = 0;
  for (std::size_t c = 0; c < columns.size(); ++c) {
    cells += fill.queued.at(columns[c]) - duplicates[c];
    written += changed[c];
  }
  if (written < cells) {  // left out, changed meanwhile: with the rows locked first
    std::vector<long long> again;
    sender.send_row_updates(items, columns, again, duplicates, true);
    for (std::size_t c = 0; c < columns.size(); ++c) changed[c] += again[c];
  }
  const std::string& table_name = items.front()->table->display_name;
  for (std::size_t c = 0; c < columns.size(); ++c) {
    long long refused = fill.queued.at(columns[c]) - changed[c];
    result.patched += changed[c];
    result.protected_fields += refused;
    result.protected_by_column[{table_name, columns[c]}] += refused;
  }
}

FlushResult apply(Database& database, Ledger& ledger, const std::string& run_id, int batch,
                  long long& sequence, const std::vector<QueuedWrite>& writes, bool probe) {
  Sender sender(database, ledger, run_id, batch, sequence);
  FlushResult result;
  std::vector<const QueuedWrite*> inserts, updates;
  for (const auto& w : writes) (is_insert(w) ? inserts : updates).push_back(&w);

  // Rows first, so that patches queued for rows of this batch find them.
  std::vector<QueuedWrite> fills;  // fill_from on rows that already existed
  for (const auto& group : group_by(inserts, insert_group)) {
    std::set<Params> seen;
    std::vector<const QueuedWrite*> unique, duplicates;
    for (const auto* item : group) {
      Params key;
      for (const auto& k : *item->key_columns) {
        size_t c = std::find(item->columns.begin(), item->columns.end(), k) - item->columns.begin();
        key.push_back(item->values[c]);
      }
      (seen.insert(key).second ? unique : duplicates).push_back(item);
    }
    std::set<Params> inserted;
    send_group(database, unique, probe, [&](const std::vector<const QueuedWrite*>& items) {
      auto keys = sender.send_inserts(items, result);
      inserted.insert(keys.begin(), keys.end());
    });
    for (const auto* item : group) {
      if (item->kind != WriteKind::fill_from) continue;
      Params key;
      for (const auto& k : *item->key_columns) {
        size_t c = std::find(item->columns.begin(), item->columns.end(), k) - item->columns.begin();
        key.push_back(item->values[c]);
      }
      bool was_inserted = inserted.count(key) &&
                          std::find(duplicates.begin(), duplicates.end(), item) == duplicates.end();
      if (was_inserted) continue;
      for (size_t c = 0; c < item->columns.size(); ++c) {
        const auto& name = item->columns[c];
        if (!item->values[c] || std::find(item->key_columns->begin(), item->key_columns->end(),
                                          name) != item->key_columns->end())
          continue;
        QueuedWrite fill = *item;
        fill.kind = WriteKind::patch_if_empty;
        fill.key = key;
        fill.column = name;
        fill.value = item->values[c];
        fills.push_back(std::move(fill));
      }
    }
  }
  for (const auto& fill : fills) updates.push_back(&fill);

  std::vector<const QueuedWrite*> fills_of_empty, compare_and_set;
  for (const auto* item : updates)
    (item->kind == WriteKind::patch_if ? compare_and_set : fills_of_empty).push_back(item);
  for (const auto& group : group_by_table(fills_of_empty)) {
    send_group(database, group, probe, [&](const std::vector<const QueuedWrite*>& items) {
      send_fills(sender, items, FillColumns(items), result);
    });
  }

  for (const auto& group : group_by(compare_and_set, update_group)) {
    std::set<Params> seen;
    std::vector<const QueuedWrite*> unique;
    for (const auto* item : group) {
      if (seen.insert(item->key).second)
        unique.push_back(item);
      else
        ++result.protected_fields;  // the same cell twice in one batch: the first call wins
    }
    const QueuedWrite& first = *group.front();
    long long& column_protected =
        result.protected_by_column[{first.table->display_name, first.column}];
    column_protected += static_cast<long long>(group.size() - unique.size());
    send_group(database, unique, probe, [&](const std::vector<const QueuedWrite*>& items) {
      long long changed = sender.send_updates(items);
      long long refused = static_cast<long long>(items.size()) - changed;
      result.patched += changed;
      result.protected_fields += refused;
      column_protected += refused;
    });
  }
  return result;
}

std::string describe_failure(const QueuedWrite& item, const std::string& message) {
  std::string where = item.call_site().empty() ? "" : item.call_site() + " ";
  if (is_insert(item)) {
    std::string row;
    for (size_t c = 0; c < item.columns.size(); ++c)
      row += (c ? ", " : "") + item.columns[c] + "=" + short_value(item.values[c]);
    return where + "cannot insert into " + item.table->display_name + " (" + row + ") for " +
           item.row->description + ": " + message;
  }
  const Column& column = item.table->require_column(item.column);
  return where + "cannot write " + short_value(item.value) + " to " + item.table->display_name +
         "." + item.column + " (" + column.type + ") for " + item.row->description + " [key " +
         describe_key(*item.key_columns, item.key) + "]: " + message;
}

}  // namespace

std::string QueuedWrite::call_site() const {
  if (!call_source || call_line <= 0) return "";
  std::string source =
      call_source[0] == '@' || call_source[0] == '=' ? call_source + 1 : call_source;
  return source + ":" + std::to_string(call_line) + ":";
}

void WriteQueue::clear() {
  m_writes.clear();
  m_sent.clear();
  m_reasons.clear();
  m_only_own_row_patches = true;
}

void WriteQueue::retire_sent() {
  m_sent.swap(m_writes);
  m_writes.clear();
  m_only_own_row_patches = true;
}

void WriteQueue::drop_row(std::size_t row_index) {
  m_writes.erase(std::remove_if(m_writes.begin(), m_writes.end(),
                                [&](const QueuedWrite& w) { return w.row_index == row_index; }),
                 m_writes.end());
}

FlushResult WriteQueue::flush(Database& database, Ledger& ledger, const std::string& run_id,
                              int batch, long long& sequence, std::vector<FailedRow>* failed,
                              FlushIsolation isolation) {
  if (isolation == FlushIsolation::none && !m_writes.empty()) {
    try {
      auto result = apply(database, ledger, run_id, batch, sequence, m_writes, false);
      retire_sent();
      return result;
    } catch (const DatabaseError& error) {
      if (!error.is_bad_value()) throw;
      // The transaction, and with it the run, is lost. A fresh transaction,
      // rolled back as well, finds the write to name.
      database.rollback();
      database.begin();
      const QueuedWrite* culprit = nullptr;
      std::string message = error.what();
      try {
        apply(database, ledger, run_id, batch, sequence, m_writes, true);
      } catch (const ProbeFailed& probe) {
        culprit = probe.item;
        message = probe.message;
      } catch (const DatabaseError&) {
        // Earlier batches' rows are gone in the fresh transaction; keep the first message.
      }
      database.rollback();
      std::string text =
          culprit ? describe_failure(*culprit, message) : "the batch's writes failed: " + message;
      if (failed)
        text +=
            " (on_error = \"skip\" can skip a row only in the first batches of an atomic "
            "run; use commit = \"batch\")";
      throw RecipeError(text);
    }
  }
  for (;;) {
    if (m_writes.empty()) return {};
    database.savepoint(k_flush_savepoint);
    try {
      auto result = apply(database, ledger, run_id, batch, sequence, m_writes, false);
      database.release(k_flush_savepoint);
      retire_sent();
      return result;
    } catch (const DatabaseError& error) {
      database.rollback_to(k_flush_savepoint);
      if (!error.is_bad_value()) throw;
      const QueuedWrite* culprit = nullptr;
      std::string message = error.what();
      try {
        apply(database, ledger, run_id, batch, sequence, m_writes, true);
      } catch (const ProbeFailed& probe) {
        culprit = probe.item;
        message = probe.message;
      }
      database.rollback_to(k_flush_savepoint);
      database.release(k_flush_savepoint);
      if (!culprit) throw RecipeError("the batch's writes failed: " + message);
      std::string text = describe_failure(*culprit, message);
      if (!failed) throw RecipeError(text);
      failed->push_back({culprit->row->key(), text});
      drop_row(culprit->row_index);
    }
  }
}

}  // namespace host
