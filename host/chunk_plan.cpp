#include "host/chunk_plan.hpp"

#include <nlohmann/json.hpp>

#include "host/catalog.hpp"
#include "host/chunk_leases.hpp"
#include "host/ledger.hpp"
#include "host/query_guard.hpp"
#include "host/sql_text.hpp"
#include "host/table_scan.hpp"

namespace host {

namespace {

// Boundaries found per statement: enough to plan a million rows in a couple of
// statements, few enough that each stays far below any statement timeout.
constexpr long long k_chunks_per_statement = 100;

std::string descending(const std::vector<std::string>& key) {
  std::string order;
  for (const auto& k : key) order += (order.empty() ? "t." : ", t.") + quote_ident(k) + " DESC";
  return order;
}

}  // namespace

long long plan_chunks(Database& database, Ledger& ledger, const std::string& run_id,
                      const ChunkPlanRequest& request) {
  const TableInfo& table = *request.table;
  const auto& key = request.key;
  std::string keys = column_list(key, "t");

  Params upper;
  if (request.limit) {
    if (*request.limit <= 0) return 0;
    Params params;
    std::string predicate = render_filter(*request.where, table, "t", params);
    if (!request.after.empty())
      predicate = key_comparison(table, key, ">", request.after, params) + " AND " + predicate;
    std::string sql = "SELECT " + keys + " FROM " + table.qualified_name + " t WHERE " +
                      predicate + " ORDER BY " + keys + " OFFSET " +
                      std::to_string(*request.limit - 1) + " LIMIT 1";
    auto found = request.where->sql ? exec_recipe_sql(database, *request.guard, sql, params, "where")
                                    : database.exec(sql, params);
    if (!found.empty()) upper = row_key(found[0], key);
  }
  if (upper.empty()) {
    Params params;
    std::string predicate =
        request.after.empty() ? "true" : key_comparison(table, key, ">", request.after, params);
    auto last = database.exec("SELECT " + keys + " FROM " + table.qualified_name + " t WHERE " +
                                  predicate + " ORDER BY " + descending(key) + " LIMIT 1",
                              params);
    if (last.empty()) return 0;
    upper = row_key(last[0], key);
  }

  auto chunks = nlohmann::json::array();
  Params lower = request.after;
  long long planned = 0;
  const long long window = request.chunk_rows * k_chunks_per_statement;
  for (;;) {
    Params params;
    std::string predicate = key_comparison(table, key, "<=", upper, params);
    if (!lower.empty()) predicate = key_comparison(table, key, ">", lower, params) + " AND " + predicate;
    // lead() marks the window's last row in the same pass; a count over the whole
    // window would read it twice.
    std::string order = "ORDER BY " + column_list(key, "w");
    std::string sql = "SELECT " + column_list(key, "s") + ", s.n, s.last FROM (SELECT " +
                      column_list(key, "w") + ", row_number() OVER (" + order +
                      ") AS n, lead(false, 1, true) OVER (" + order + ") AS last FROM (SELECT " +
                      keys + " FROM " + table.qualified_name + " t WHERE " + predicate +
                      " ORDER BY " + keys + " LIMIT " + std::to_string(window) +
                      ") w) s WHERE s.n % " + std::to_string(request.chunk_rows) +
                      " = 0 OR s.last ORDER BY s.n";
    auto ends = database.exec(sql, params);
    if (ends.empty()) break;
    long long previous = 0, total = 0;
    for (const auto& end : ends) {
      long long n = end[static_cast<int>(key.size())].as<long long>();
      if (end[static_cast<int>(key.size()) + 1].as<bool>()) total = n;
      Params bound = row_key(end, key);
      chunks.push_back({{"lower", lower.empty() ? nlohmann::json() : key_array(lower)},
                        {"upper", key_array(bound)},
                        {"rows", n - previous}});
      planned += n - previous;
      previous = n;
      lower = bound;
    }
    if (total < window) break;
  }
  if (chunks.empty()) return 0;
  database.exec("INSERT INTO " + ledger.table("chunks") +
                    " (run_id, chunk, lower_key, upper_key, rows_estimate) "
                    "SELECT $1::uuid, c.n, c.v->'lower', c.v->'upper', (c.v->>'rows')::bigint "
                    "FROM jsonb_array_elements($2::jsonb) WITH ORDINALITY AS c(v, n)",
                {run_id, chunks.dump()});
  return planned;
}

}  // namespace host
