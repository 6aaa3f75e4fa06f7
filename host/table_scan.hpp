#pragma once
// Keyset pagination over a table: WHERE key > last ORDER BY key LIMIT n, never
// OFFSET, composite keys compared as rows. Memory stays one batch whatever the size.
#include <pqxx/result>
#include <string>
#include <vector>

#include "host/filter.hpp"
#include "host/query_guard.hpp"

namespace host {

class Database;
struct TableInfo;

// "(t.a, t.b) > ($1::int, $2::text)": a row comparison of the key against values
// appended to `params`, in the key's own order and collation.
std::string key_comparison(const TableInfo& table, const std::vector<std::string>& key,
                           const char* op, const Params& values, Params& params);

// The key of a scanned row, by column name: the text of each key column (or NULL).
Params row_key(const pqxx::row& row, const std::vector<std::string>& key);

class TableScan {
 public:
  // `columns` must include the key columns. `after` resumes past that key.
  TableScan(Database& database, const TableInfo& table, std::vector<std::string> key,
            std::vector<std::string> columns, Filter where, long long batch_size,
            Params after = {});

  // Ends the scan at this key (inclusive): a chunk's upper bound.
  void set_upper(Params upper) { m_upper = std::move(upper); }
  void set_batch_size(long long rows) { m_batch_size = rows; }
  void set_after(Params after) { m_after = std::move(after); }

  // The next batch (empty when the scan is done): the row's table oid and ctid,
  // then `columns`. A SQL-string `where` the guard refuses is a RecipeError.
  pqxx::result next();
  static constexpr int k_place_columns = 2;
  // The key of the last row returned (empty before the first batch).
  const Params& last_key() const { return m_after; }
  const std::vector<std::string>& key() const { return m_key; }

 private:
  Database& m_database;
  const TableInfo& m_table;
  std::vector<std::string> m_key;
  std::vector<std::string> m_columns;
  Filter m_where;
  long long m_batch_size;
  Params m_after;
  Params m_upper;
  QueryGuard m_guard;  // checks a SQL-string `where` (once per statement text)
};

}  // namespace host
