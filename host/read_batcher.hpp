#pragma once
// Answers the read()/read_all()/map_id() calls of a whole batch set-at-a-time:
// requests of the same shape become one query over an unnest()ed parameter list.
#include <map>
#include <memory>
#include <pqxx/result>
#include <string>
#include <utility>
#include <vector>

#include "host/filter.hpp"

namespace host {

class Database;
class Ledger;
class QueryGuard;
struct TableInfo;

// read_all's opts.limit when not given: more matching rows are an error.
constexpr long long k_read_all_default_limit = 10000;

struct ReadRequest {
  enum class Kind { first, all };
  Kind kind = Kind::first;
  const TableInfo* table = nullptr;
  Filter filter;
  std::vector<std::string> columns;                    // empty: all columns
  std::vector<std::pair<std::string, bool>> order_by;  // (column, descending)
  long long limit = k_read_all_default_limit;          // read_all: more is an error
  // Checks a SQL-string filter before it runs; set whenever filter.sql is.
  QueryGuard* guard = nullptr;
};

// The rows answering one request: indices into a shared result whose first
// `column_offset` columns are bookkeeping, not row data.
struct ReadAnswer {
  std::shared_ptr<pqxx::result> result;
  std::vector<int> rows;
  int column_offset = 0;
  std::string error;  // non-empty: the request failed (message for the recipe)
};

// Answers all requests; each answer matches the request at the same position.
// Requests with a SQL-string filter run alone (once per distinct text); the others
// are answered with one query per shape.
std::vector<ReadAnswer> answer_reads(Database& database,
                                     const std::vector<const ReadRequest*>& requests);

// Looks up, or creates, the UUIDs of legacy ids of one entity (RECIPE_API.md section 4):
// existing mappings win, new ones are UUIDv5 (or the canonical form of a UUID) and
// stored. Returns legacy -> uuid; `created` counts new mappings. A legacy id whose
// UUID another legacy id already holds is left out of the result and, when
// `conflicts` is given, described there (else it is a RecipeError).
std::map<std::string, std::string> resolve_ids(
    Database& database, Ledger& ledger, const std::string& run_id, const std::string& entity,
    const std::vector<std::string>& legacy_ids, long long& created,
    std::map<std::string, std::string>* conflicts = nullptr);

}  // namespace host
