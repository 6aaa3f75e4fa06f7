#pragma once
// A worker of a batch run: on a connection and Lua state of its own, it claims a
// chunk, then works through it batch by batch (renew the lease, scan, run `each`,
// write with the ledger, record the chunk's progress, commit), trying a batch
// again when the database asks for it (RECIPE_API.md section 10): contention is
// retried after a backoff, a statement timeout splits the batch in halves, a lost
// connection is re-opened. Then it claims the next chunk, until none is left.
#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "host/chunk_leases.hpp"
#include "host/recipe_session.hpp"
#include "host/retry_policy.hpp"
#include "host/runner.hpp"
#include "host/writer_thread.hpp"

namespace host {

class Database;
class Ledger;
class Throttle;

// A batch written on the worker's second connection beside the batch before it,
// which the session's writer writes. It records its progress in the chunk's row
// only once the one before has committed, so that batches commit in order; the
// one before lends the session's connection on to it, so that the recipe's calls
// meanwhile wait until both have committed (Database::lend). Batches form a
// chain: the batch after it is written on the session's connection at once,
// without renewing the lease (which would lock the chunk's row this one records
// in), and records its progress once this one has committed.
struct PairedBatch {
  struct FirstEnd {
    bool second_posted = false;  // it records progress next
    bool lent_on = false;        // it has the session's connection now
  };
  // The writer of the batch before, done with the connection.
  FirstEnd first_ended();
  // The same after a failure: nothing is lent on.
  void first_failed();
  // The worker's thread, before posting the second: false once the first has ended.
  bool post_second();
  // The second's writer, done: gives the session's connection back if lent on.
  void second_ended(Database& lent, bool failed);
  // Waits for the second's writer (if posted); what it threw goes to `failure`.
  void wait_written(std::exception_ptr& failure);

  std::shared_future<void> first_committed;  // throws if the batch before did not commit
  // The batch before's chunk, final once it has committed, and its counters once
  // `each` had run over it; what its writes added, once it has committed.
  std::shared_ptr<const Chunk> first;
  RecipeSession::Counters first_after_each, first_added;
  bool posted = false;  // the worker's thread's
  // The second's, read once it has ended (wait_written(), or `written`).
  RecipeSession::BatchOutput output;
  RecipeSession::Counters after_each;  // the session's counters once `each` ran over it
  RecipeSession::Counters added;
  Chunk updated;
  bool committed = false;  // false, with nothing thrown: the lease went to another worker
  std::shared_future<void> written;

 private:
  std::mutex m_mutex;
  bool m_first_ended = false, m_second_posted = false, m_second_ended = false;
  bool m_lent_on = false;
};

// What the workers of one process share.
struct WorkerShared {
  const RunOptions* options = nullptr;
  std::string run_id;
  std::string conninfo;
  std::string recipe_source;
  std::string recipe_hash;
  std::optional<long long> fixed_batch_size;  // else it adapts to target_batch_ms
  Throttle* throttle = nullptr;
  // Set when a worker failed: the others stop after the batch in flight.
  std::atomic<bool> failed{false};
  std::atomic<long long> retries{0};  // of this process, for a failure's report
};

class BatchWorker {
 public:
  BatchWorker(WorkerShared& shared, int number);
  ~BatchWorker();
  BatchWorker(const BatchWorker&) = delete;
  BatchWorker& operator=(const BatchWorker&) = delete;

  // Works until no chunk of the run is left, or the run is asked to stop, or it
  // fails (the exception leaves; the committed batches stay).
  void run();
  const std::string& id() const { return m_id; }

 private:
  enum class Outcome { committed, lease_lost, stop_requested };
  struct Attempt {
    Outcome outcome = Outcome::committed;
    long long rows = 0;
    bool chunk_done = false;
  };

  bool should_stop() const;
  void work_on(Chunk& chunk);
  Attempt attempt(Chunk& chunk, long long rows, const RecipeSession::Counters& before);
  // Batches of `chunk` one after the other, each written on a thread of its own
  // while `each` already runs over the next; `before` follows what commits.
  Attempt attempt_overlapped(Chunk& chunk, RecipeSession::Counters& before);

  struct ScannedBatch {
    pqxx::result rows;
    std::size_t count = 0;
    long long wanted = 0;
    Params last;  // the key of its last row (the chunk's checkpoint after it)
    Params range_from, range_to;
    bool range_from_inclusive = false;
  };
  // Through `database` when given (the session's second connection), else the
  // session's own.
  ScannedBatch scan_batch(const Chunk& chunk, const Params& after, long long wanted,
                          Database* database = nullptr);
  void show_range(const ScannedBatch& batch);
  // Whether `second`, read and run while the batch before it is written, may be
  // written at once beside it (PairedBatch): not the chunk's last, its writes all
  // patches of its own rows, no module loaded late, the second connection open.
  bool pairable(const ScannedBatch& second, const Chunk& chunk, std::size_t modules_before);
  // Takes the session's output (of `second`) and writes it on the second
  // connection; `first` and `first_after_each` are the batch before's chunk and
  // counters, final once it has committed; `lent` is the session's connection.
  void write_beside(PairedBatch& pair, const ScannedBatch& second,
                    std::shared_ptr<const Chunk> first,
                    const RecipeSession::Counters& first_after_each, Database& lent);
  // The second connection for pairs, opened when first needed; false if it
  // cannot be (the batch is then written alone).
  bool pair_connection_ready();
  void forget_pair_connection();
  // Whether the next batch may be read before the one before it is written: true
  // when writing a batch's own rows changes nothing else (no triggers, rules or
  // cascading foreign keys on the source table).
  bool source_writes_stay_in_row();
  // Whether a batch read ahead may be read on the second connection, while the
  // batch before is written on the first: when no row security policy (which may
  // read what that batch writes) decides which of the source's rows are seen.
  bool source_has_no_row_security();
  // Whether two batches of the source's rows, written at once by two transactions,
  // never wait for each other: no unique or exclusion index takes in a column the
  // recipe may write (the batch written beside the one before could write a value
  // first and make that one wait for it, while it waits for that one to commit),
  // and no constraint waits for the commit (DEFERRABLE).
  bool source_batches_never_wait_on_each_other();
  void record_modules(const nlohmann::json& modules);
  // The modules loaded since the run's row last recorded them, if any.
  FlushIsolation flush_isolation() const;
  std::optional<nlohmann::json> modules_to_record() const;
  // The end of a batch's transaction: the chunk's progress (and modules loaded
  // late) recorded, the commit (`committed` is set at once), the audit events
  // published. With `then_begin` the next transaction is opened in the commit's
  // round trip. A batch whose lease is another worker's is rolled back instead.
  Recorded checkpoint_and_commit(Chunk& updated, const Params& last, bool done,
                             const WorkerBatch& progress,
                             const std::optional<nlohmann::json>& modules, bool& committed,
                             bool then_begin = false);
  void recover(Failure failure, int tries);
  long long next_batch_size(long long size, long long rows, std::chrono::milliseconds took) const;
  std::string range_text() const;
  void sleep_unless_stopped(std::chrono::milliseconds duration) const;

  WorkerShared& m_shared;
  std::string m_host;  // this machine's name, as `host status` shows it
  std::string m_id;
  std::unique_ptr<RecipeSession> m_session;
  std::unique_ptr<ChunkLeases> m_leases;
  Backoff m_backoff;
  long long m_batch_size;
  long long m_retries_unrecorded = 0;
  bool m_overlap = false;
  bool m_scan_aside = false;  // source_has_no_row_security()
  std::unique_ptr<WriterThread> m_writer;  // when m_overlap
  // Batches written in pairs (attempt_overlapped): the second connection's
  // ledger and lease keeper, and its writer (declared last: it stops first).
  bool m_pairs = false;
  bool m_chains = false;  // pairs that go on into the next without waiting (PairedBatch)
  std::unique_ptr<Database> m_pair_database;
  std::unique_ptr<Ledger> m_pair_ledger;
  std::unique_ptr<ChunkLeases> m_pair_leases;
  std::unique_ptr<WriterThread> m_pair_writer;
  std::size_t m_modules_recorded = 0;  // modules whose hashes the run's row holds
  // The key range of the batch last tried, for the message when tries run out.
  Params m_range_from, m_range_to;
  bool m_range_from_inclusive = false;
};

}  // namespace host
