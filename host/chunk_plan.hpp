#pragma once
// The chunk planner: splits a batch run's key space into chunks of a few batches
// each and stores them in the ledger, once, when the run starts. The upper bound
// is fixed then, so that a run ends however fast the application inserts rows
// (those are for the next run).
#include <optional>
#include <string>
#include <vector>

#include "host/database.hpp"
#include "host/filter.hpp"

namespace host {

class Ledger;
class QueryGuard;
struct TableInfo;

struct ChunkPlanRequest {
  const TableInfo* table = nullptr;
  std::vector<std::string> key;
  long long chunk_rows = 5000;
  Params after;                     // resume of a run begun before chunks: start past it
  std::optional<long long> limit;   // --limit: the plan ends at the limit-th matching row
  const Filter* where = nullptr;    // only for the limit's bound
  QueryGuard* guard = nullptr;
};

// Plans and records the chunks of run `run_id` in the open transaction; returns
// the number of source rows they cover (the progress estimate; exact when planned).
long long plan_chunks(Database& database, Ledger& ledger, const std::string& run_id,
                      const ChunkPlanRequest& request);

}  // namespace host
