#pragma once
// The lease keeper: how a worker claims a chunk of a batch run, holds it while it
// works, records each committed batch in it, and gives it up. A lease is a row
// of the ledger's chunks table claimed with FOR UPDATE SKIP LOCKED. The first
// batch of an attempt renews it first thing in its own transaction, which also
// locks the row until the batch commits, so no other worker can take the chunk
// mid-batch, and a worker whose lease was taken over never commits a batch of it.
// Batches of a chain (host/batch_worker.cpp) renew nothing: each records its
// progress once the batch before has committed, which extends the lease, and
// commits only if the lease is still its worker's.
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "host/run_types.hpp"
#include "host/stop_signal.hpp"

namespace host {

class Database;
class Ledger;

using ProtectedCounts = std::map<std::pair<std::string, std::string>, long long>;

struct Chunk {
  int number = 0;
  Params lower;   // exclusive; empty = from the start
  Params upper;   // inclusive
  Params after;   // last key of the last committed batch; empty = none yet
  long long batches = 0;
  RunStats stats;                 // of its committed batches
  ProtectedCounts protected_by_column;
};

// What one committed batch adds to its worker's row.
struct WorkerBatch {
  long long rows = 0;
  long long retries = 0;            // tries rolled back since the worker's last commit
  double throttled_seconds = 0;     // of the whole process so far
  bool throttled = false;
  std::optional<int> next_chunk;    // claimed in the batch's transaction: held next
};

// What recording a batch found in the ledger.
struct Recorded {
  bool held = false;                // false: the lease is another worker's; nothing recorded
  StopKind stop = StopKind::none;   // host pause / host cancel asked for it
};

struct Renewal {
  bool held = false;                // false: the lease went to another worker
  StopKind stop = StopKind::none;   // host pause / host cancel asked for it
  long long batch_number = 0;       // unique in the ledger; spaces the batch's ledger rows
};

class ChunkLeases {
 public:
  ChunkLeases(Database& database, Ledger& ledger, std::string run_id, std::string worker_id,
              long long lease_seconds);

  const std::string& worker_id() const { return m_worker; }
  // Records this worker of this process (idempotent), in its own transaction.
  void register_worker(const std::string& host_name, long long pid);
  // The first chunk that is not done and not leased (or whose lease ran out), in
  // its own transaction, or in the one open (a batch's, which then commits the
  // claim with it); nullopt when there is none. Never `other_than`.
  std::optional<Chunk> claim(std::optional<int> other_than = std::nullopt);
  // First statement of a batch's transaction. A chunk whose row records more
  // batches than `chunk` knows of is brought up to its row: a COMMIT whose result
  // was lost with the connection had landed, and the batch after it comes next.
  Renewal renew(Chunk& chunk);
  // Last statement of a batch's transaction: the chunk's progress and counters,
  // and the worker's; the lease runs `lease_seconds` from now. `done` when the
  // batch reached the chunk's end. Not held when the lease is another worker's: a
  // batch that did not renew it first (one of a chain, host/batch_worker.cpp)
  // must not commit then.
  Recorded record_batch(Chunk& chunk, const Params& after, bool done, const WorkerBatch& batch);
  // Shows `host status` that this worker waits on the throttle (own transaction);
  // the next recorded batch clears it.
  void mark_throttled();
  // Lets another worker take the chunk at once (this one stops), own transaction.
  void release(const Chunk& chunk);
  // Whether any chunk of the run is not done; and the stop asked for the run.
  bool all_done();
  StopKind stop_request();

 private:
  Database& m_database;
  Ledger& m_ledger;
  std::string m_run_id, m_worker;
  long long m_lease_seconds;
};

// The whole run's counters: the sum of its chunks' (host status, the report).
struct ChunkTotals {
  RunStats stats;
  ProtectedCounts protected_by_column;
  long long rows_estimate = 0;
  long long chunks = 0, chunks_done = 0;
};
ChunkTotals chunk_totals(Database& database, Ledger& ledger, const std::string& run_id);

// Timing of section 9 summed over every worker of every process.
struct WorkerTotals {
  long long workers = 0;  // that committed at least one batch
  long long batches = 0, retries = 0;
  double throttled_seconds = 0;
  std::optional<long long> batch_rows_min, batch_rows_max;
};
WorkerTotals worker_totals(Database& database, Ledger& ledger, const std::string& run_id);

Params key_params(const nlohmann::json& array);
nlohmann::json key_array(const Params& key);
nlohmann::json protected_json(const ProtectedCounts& counts);
ProtectedCounts protected_from_json(const nlohmann::json& entries);

}  // namespace host
