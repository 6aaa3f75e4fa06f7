#include "host/report_breakdown.hpp"

namespace host {

namespace {

struct Counts {
  long long scanned = 0, patched = 0, protected_fields = 0, inserted = 0, review = 0, errors = 0;
};

}  // namespace

nlohmann::json report_breakdown(const BreakdownInputs& inputs) {
  std::map<std::string, Counts> tables;
  std::map<std::pair<std::string, std::string>, Counts> columns;
  if (!inputs.source_table.empty()) {
    tables[inputs.source_table].scanned = inputs.scanned;
    tables[inputs.source_table].errors = inputs.errors;
  }
  for (const auto& change : inputs.changes) {
    std::string table = change["table"], column = change["column"];
    long long count = change["count"];
    tables[table].patched += count;
    columns[{table, column}].patched += count;
  }
  for (const auto& [where, count] : inputs.protected_by_column) {
    if (count == 0) continue;
    tables[where.first].protected_fields += count;
    columns[where].protected_fields += count;
  }
  for (const auto& insert : inputs.inserts)
    tables[insert["table"].get<std::string>()].inserted += insert["count"].get<long long>();
  for (const auto& item : inputs.review_counts) {
    std::string table = item["table"];
    long long count = item["count"];
    tables[table].review += count;
    if (item["column"].is_string() && !item["column"].get<std::string>().empty())
      columns[{table, item["column"].get<std::string>()}].review += count;
  }

  auto table_rows = nlohmann::json::array();
  for (const auto& [table, c] : tables)
    table_rows.push_back({{"table", table},
                          {"scanned", c.scanned},
                          {"patched", c.patched},
                          {"protected", c.protected_fields},
                          {"inserted", c.inserted},
                          {"review", c.review},
                          {"errors", c.errors}});
  auto column_rows = nlohmann::json::array();
  for (const auto& [where, c] : columns)
    column_rows.push_back({{"table", where.first},
                           {"column", where.second},
                           {"patched", c.patched},
                           {"protected", c.protected_fields},
                           {"review", c.review}});
  return {{"tables", table_rows}, {"columns", column_rows}};
}

}  // namespace host
