#include "host/table_scan.hpp"

#include "host/catalog.hpp"
#include "host/database.hpp"
#include "host/sql_text.hpp"

namespace host {

TableScan::TableScan(Database& database, const TableInfo& table, std::vector<std::string> key,
                     std::vector<std::string> columns, Filter where, long long batch_size,
                     Params after)
    : m_database(database),
      m_table(table),
      m_key(std::move(key)),
      m_columns(std::move(columns)),
      m_where(std::move(where)),
      m_batch_size(batch_size),
      m_after(std::move(after)) {}

std::string key_comparison(const TableInfo& table, const std::vector<std::string>& key,
                           const char* op, const Params& values, Params& params) {
  std::string left, right;
  for (std::size_t i = 0; i < key.size(); ++i) {
    const Column& column = table.require_column(key[i]);
    params.push_back(values[i]);
    left += (i ? ", t." : "t.") + quote_ident(column.name);
    right += (i ? ", $" : "$") + std::to_string(params.size()) + "::" + column.cast_type;
  }
  return "(" + left + ") " + op + " (" + right + ")";
}

Params row_key(const pqxx::row& row, const std::vector<std::string>& key) {
  Params values;
  values.reserve(key.size());
  for (const auto& k : key) {
    const auto& field = field_named(row, k);
    values.push_back(field.is_null() ? Param{} : Param{field.c_str()});
  }
  return values;
}

pqxx::result TableScan::next() {
  Params params;
  std::string predicate = render_filter(m_where, m_table, "t", params);
  if (!m_after.empty())
    predicate = key_comparison(m_table, m_key, ">", m_after, params) + " AND " + predicate;
  if (!m_upper.empty())
    predicate = key_comparison(m_table, m_key, "<=", m_upper, params) + " AND " + predicate;
  std::string sql = "SELECT t.tableoid, t.ctid, " + column_list(m_columns, "t") + " FROM " +
                    m_table.qualified_name +
                    " t WHERE " + predicate + " ORDER BY " + column_list(m_key, "t") + " LIMIT " +
                    std::to_string(m_batch_size);
  auto rows = m_where.sql ? exec_recipe_sql(m_database, m_guard, sql, params, "where")
                          : m_database.exec_prepared(sql, params);
  if (!rows.empty()) m_after = row_key(rows[static_cast<int>(rows.size()) - 1], m_key);
  return rows;
}

}  // namespace host
