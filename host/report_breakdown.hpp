#pragma once
// The report's per-table and per-column counts, merged from what the ledger
// holds (changes, inserts, review items) and what only the run knows (fields
// left alone because they held a value, rows scanned, rows that failed).
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

namespace host {

struct BreakdownInputs {
  nlohmann::json changes;        // Ledger::change_counts
  nlohmann::json inserts;        // Ledger::insert_counts
  nlohmann::json review_counts;  // Ledger::review_counts
  std::map<std::pair<std::string, std::string>, long long> protected_by_column;
  std::string source_table;  // empty when the rows come from an input file
  long long scanned = 0;
  long long errors = 0;
};

// {"tables": [{table, scanned, patched, protected, inserted, review, errors}],
//  "columns": [{table, column, patched, protected, review}]}, sorted by name.
nlohmann::json report_breakdown(const BreakdownInputs& inputs);

}  // namespace host
