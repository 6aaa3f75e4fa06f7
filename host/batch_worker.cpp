#include "host/batch_worker.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <future>
#include <new>
#include <thread>

#include "host/audit_file.hpp"
#include "host/catalog.hpp"
#include "host/crash_point.hpp"
#include "host/database.hpp"
#include "host/errors.hpp"
#include "host/ledger.hpp"
#include "host/recipe_session.hpp"
#include "host/sql_text.hpp"
#include "host/table_scan.hpp"
#include "host/throttle.hpp"
#include "host/wait_on_unwind.hpp"

namespace host {

namespace {

// Bounds of the adaptive batch size: small enough that one batch never holds
// many row locks for long, large enough that round trips stay negligible.
constexpr long long k_min_batch_rows = 10;
constexpr long long k_max_batch_rows = 50000;
// Each batch gets this many ledger sequence numbers of its own (batch number
// times this), so that workers never collide and a batch's rows stay in order.
constexpr long long k_sequences_per_batch = 1LL << 32;

std::string key_text(const Params& values) {
  std::string text;
  for (std::size_t i = 0; i < values.size(); ++i)
    text += (i ? ", " : "") + (values[i] ? *values[i] : std::string("NULL"));
  return values.size() == 1 ? text : "(" + text + ")";
}

// `chunk` with a batch's share of the worker's counters (from `before` to `after`)
// added: what goes to the chunk's row.
Chunk with_share(Chunk chunk, const RecipeSession::Counters& before,
                 const RecipeSession::Counters& after) {
  chunk.stats += after.stats.since(before.stats);
  for (const auto& [where, n] : after.protected_by_column) {
    auto old = before.protected_by_column.find(where);
    long long added = n - (old == before.protected_by_column.end() ? 0 : old->second);
    if (added) chunk.protected_by_column[where] += added;
  }
  return chunk;
}

// What a batch's writes added (`added`) counted in its chunk.
void count_written(Chunk& chunk, const RecipeSession::Counters& added) {
  chunk.stats += added.stats;
  for (const auto& [where, n] : added.protected_by_column)
    if (n) chunk.protected_by_column[where] += n;
}

// The COMMIT of a batch whose progress is recorded, `committed` set once it is
// confirmed, with the points a crash or a lost result is injected at
// (host/crash_point.hpp).
void commit_recorded_batch(Database& database, bool& committed, bool then_begin = false) {
  crash_point("batch_checkpointed");
  if (then_begin)
    database.commit_and_begin();
  else
    database.commit();
  if (fail_point("batch_commit_unconfirmed"))
    throw DatabaseUnreachable("lost the connection to the database (HOST_FAIL_AT)");
  committed = true;
  crash_point("batch_committed");
}

// Thrown by a batch's writer when the chunk's lease went to another worker before
// the batch could record its progress: nothing of the batch is committed.
struct LeaseTaken : std::runtime_error {
  LeaseTaken() : std::runtime_error("the chunk's lease went to another worker") {}
};

bool is_lease_taken(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const LeaseTaken&) {
    return true;
  } catch (...) {
    return false;
  }
}

std::string host_name() {
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) != 0) return "localhost";
  return name;
}

}  // namespace

BatchWorker::BatchWorker(WorkerShared& shared, int number)
    : m_shared(shared),
      m_host(host_name()),
      m_id(m_host + ":" + std::to_string(getpid()) + ":" + std::to_string(number)),
      m_batch_size(shared.fixed_batch_size.value_or(1000)) {}

BatchWorker::~BatchWorker() = default;

bool BatchWorker::should_stop() const {
  return m_shared.failed.load() || StopSignal::requested() != StopKind::none;
}

void BatchWorker::sleep_unless_stopped(std::chrono::milliseconds duration) const {
  auto until = std::chrono::steady_clock::now() + duration;
  while (!should_stop() && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(
        std::chrono::milliseconds(50),
        std::chrono::duration_cast<std::chrono::milliseconds>(until -
                                                              std::chrono::steady_clock::now()) +
            std::chrono::milliseconds(1)));
}

void BatchWorker::run() {
  const RunOptions& options = *m_shared.options;
  m_session = std::make_unique<RecipeSession>(options, m_shared.conninfo, m_shared.recipe_source);
  m_session->load();
  auto problems = m_session->validate();
  if (!problems.empty())
    throw RecipeError(m_session->recipe().path + ": " + m_session->restore_source_paths(problems.front()));
  m_session->context().run_id = m_shared.run_id;
  m_session->open_audit_file(m_shared.run_id);
  m_modules_recorded = m_session->modules().size();
  m_leases = std::make_unique<ChunkLeases>(m_session->database(), m_session->ledger(),
                                           m_shared.run_id, m_id, options.operating.lease_seconds);
  m_leases->register_worker(m_host, getpid());
  // A throttle decides before each batch whether it may start: batches then
  // wait their turn, one after the other.
  m_overlap = !m_shared.throttle && source_writes_stay_in_row();
  m_scan_aside = m_overlap && source_has_no_row_security();
  if (m_overlap) m_writer = std::make_unique<WriterThread>();
  // Pairs need the next batch read aside; the audit file's spool takes one
  // batch's events at a time.
  m_pairs = m_scan_aside && !(m_session->audit_file() && m_session->audit_file()->active()) &&
            source_batches_never_wait_on_each_other();
  if (m_pairs) m_pair_writer = std::make_unique<WriterThread>();
  // A batch of a chain records its progress in the chunk's row, which the batch
  // behind it changed after its first statement: under REPEATABLE READ or
  // SERIALIZABLE (the session's, which the recipe's reads keep) that would fail.
  m_chains = m_pairs && m_session->database()
                            .exec("SELECT current_setting('transaction_isolation') = "
                                  "'read committed'")[0][0]
                            .as<bool>();
  int lost = 0;  // connections lost in a row between chunks
  while (!should_stop()) {
    std::optional<Chunk> chunk;
    try {
      chunk = m_leases->claim();
      if (!chunk) {
        if (m_leases->all_done()) return;
        // Chunks are held by other workers: wait, in case one of them dies.
        StopSignal::request(m_leases->stop_request());
        sleep_unless_stopped(std::chrono::milliseconds(1000));
        continue;
      }
      lost = 0;
    } catch (const DatabaseUnreachable& e) {
      if (++lost > options.operating.retries) throw;
      spdlog::warn("worker {}: {}; re-opening the connection", m_id, e.what());
      sleep_unless_stopped(m_backoff.delay(lost));
      try {
        m_session->database().reconnect();
      } catch (const DatabaseUnreachable&) {
        // Tried again on the next round, until the tries run out.
      }
      continue;
    }
    work_on(*chunk);
  }
  try {
    StopSignal::request(m_leases->stop_request());
  } catch (const DatabaseUnreachable&) {
    // Stopping anyway; the request, if any, is seen by the run's starter.
  }
}

void BatchWorker::work_on(Chunk& chunk) {
  const RunOptions& options = *m_shared.options;
  int tries = 0;                // of the batch being worked on, halves included
  long long split_rows = 0;     // rows of a split batch still to do
  long long split_size = 0;     // rows per try while a split is under way
  auto release = [&] {
    try {
      m_leases->release(chunk);
    } catch (const std::exception& e) {
      spdlog::debug("could not release chunk {}: {}", chunk.number, e.what());
    }
  };
  for (;;) {
    if (should_stop()) return release();
    bool marked = false;  // as throttled, for host status, while this wait lasts
    auto stop_or_mark = [&] {
      if (!marked && m_shared.throttle->throttled_now()) {
        marked = true;
        try {
          m_leases->mark_throttled();
        } catch (const std::exception& e) {
          spdlog::debug("could not show worker {} as throttled: {}", m_id, e.what());
        }
      }
      return should_stop();
    };
    if (m_shared.throttle && !m_shared.throttle->wait_before_batch(stop_or_mark))
      return release();
    long long size = split_rows > 0 ? split_size : m_batch_size;
    RecipeSession::Counters before = m_session->counters();
    auto started = std::chrono::steady_clock::now();
    // A batch being split is tried alone.
    bool overlapped = m_overlap && split_rows == 0;
    // An overlapped attempt commits batch after batch until one fails: that one
    // has been tried once then, whatever the batches before it took.
    std::pair<int, long long> committed_at_start{chunk.number, chunk.batches};
    try {
      Attempt result = overlapped ? attempt_overlapped(chunk, before) : attempt(chunk, size, before);
      if (result.outcome == Outcome::lease_lost) return;
      if (result.outcome == Outcome::stop_requested) return release();
      m_retries_unrecorded = 0;
      if (overlapped) {  // counted and sized batch by batch
        tries = 0;
        if (result.chunk_done) return;
        continue;
      }
      if (split_rows > 0) {
        split_rows -= result.rows;
        if (split_rows <= 0) split_rows = 0, tries = 0;
      } else {
        tries = 0;
        if (!m_shared.fixed_batch_size)
          m_batch_size = next_batch_size(
              size, result.rows,
              std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::steady_clock::now() - started));
      }
      if (m_shared.throttle) m_shared.throttle->account(result.rows);
      if (result.chunk_done) return;
    } catch (...) {
      std::exception_ptr error = std::current_exception();
      Failure failure = classify_failure(error);
      m_session->roll_back_batch(before);
      if (failure == Failure::fatal) {
        release();  // the run's other workers may carry it on
        std::rethrow_exception(error);
      }
      if (overlapped && committed_at_start != std::make_pair(chunk.number, chunk.batches))
        tries = 0;
      ++tries;
      ++m_retries_unrecorded;
      ++m_shared.retries;
      std::string what, state;
      try {
        std::rethrow_exception(error);
      } catch (const DatabaseError& e) {
        what = e.what();
        state = e.sqlstate();
      } catch (const std::exception& e) {
        what = e.what();
        state = "08006";
      }
      if (tries > options.operating.retries) {
        release();
        throw DatabaseError("batch at " + range_text() + " failed " + std::to_string(tries) +
                                (tries == 1 ? " time" : " times") + " (SQLSTATE " + state +
                                "): " + what + "; the run can be resumed: host resume " +
                                m_shared.run_id,
                            state);
      }
      spdlog::warn("batch at {} failed (SQLSTATE {}), try {} of {}: {}", range_text(), state,
                   tries + 1, options.operating.retries + 1, what);
      if (failure == Failure::statement_timeout) {
        long long base = split_rows > 0 ? split_size : size;
        if (split_rows == 0) split_rows = size;
        split_size = std::max<long long>(1, base / 2);
      } else {
        sleep_unless_stopped(m_backoff.delay(tries));
        if (failure == Failure::connection_lost) {
          try {
            m_session->database().reconnect();
          } catch (const DatabaseUnreachable& e) {
            spdlog::warn("could not re-open the connection: {}", e.what());
          }
        }
      }
    }
  }
}

BatchWorker::Attempt BatchWorker::attempt(Chunk& chunk, long long rows_wanted,
                                          const RecipeSession::Counters& before) {
  RecipeSession& session = *m_session;
  Database& database = session.database();
  const RunOptions& options = *m_shared.options;
  database.begin();
  Renewal renewal = m_leases->renew(chunk);
  m_range_from = chunk.after.empty() ? chunk.lower : chunk.after;
  m_range_from_inclusive = false;
  m_range_to = chunk.upper;
  if (!renewal.held) {
    database.rollback();
    return {Outcome::lease_lost};
  }
  if (renewal.stop != StopKind::none) {
    database.rollback();
    StopSignal::request(renewal.stop);
    return {Outcome::stop_requested};
  }
  long long sequence = renewal.batch_number * k_sequences_per_batch;
  int batch = static_cast<int>(renewal.batch_number % INT_MAX);

  ScannedBatch scanned = scan_batch(chunk, chunk.after, rows_wanted);
  show_range(scanned);
  std::size_t count = scanned.count;
  const Params& last = scanned.last;
  if (count > 0) session.process_scanned(scanned.rows, count);
  crash_point("batch_processed");
  session.flush_batch(batch, sequence, flush_isolation());
  Chunk updated = with_share(chunk, before, session.counters());
  bool done = static_cast<long long>(count) < rows_wanted || last == chunk.upper;
  WorkerBatch progress;
  progress.rows = static_cast<long long>(count);
  progress.retries = m_retries_unrecorded;
  if (m_shared.throttle) {
    progress.throttled_seconds = m_shared.throttle->throttled_seconds();
    progress.throttled = m_shared.throttle->throttled_now();
  }
  std::size_t modules_now = session.modules().size();
  bool committed = false;
  checkpoint_and_commit(updated, last, done, progress, modules_to_record(), committed);
  m_modules_recorded = modules_now;
  chunk = updated;
  if (!options.quiet)
    spdlog::debug("worker {} chunk {}: batch of {} rows committed", m_id, chunk.number, count);
  Attempt result;
  result.rows = static_cast<long long>(count);
  result.chunk_done = done;
  return result;
}

// A savepoint around a batch's writes lets a row the database refuses be skipped
// (on_error = "skip"). Otherwise the refusal ends the run, found in a transaction
// of its own, and the savepoint would only cost two round trips a batch.
FlushIsolation BatchWorker::flush_isolation() const {
  return m_session->recipe().skip_failed_rows ? FlushIsolation::savepoint : FlushIsolation::none;
}

std::optional<nlohmann::json> BatchWorker::modules_to_record() const {
  if (m_session->modules().size() <= m_modules_recorded) return std::nullopt;
  return m_session->modules_json();
}

Recorded BatchWorker::checkpoint_and_commit(Chunk& updated, const Params& last, bool done,
                                            const WorkerBatch& progress,
                                            const std::optional<nlohmann::json>& modules,
                                            bool& committed, bool then_begin) {
  Recorded recorded = m_leases->record_batch(updated, last, done, progress);
  if (!recorded.held) {
    m_session->database().rollback();
    return recorded;
  }
  if (modules) record_modules(*modules);
  commit_recorded_batch(m_session->database(), committed, then_begin);
  if (m_session->audit_file()) m_session->audit_file()->publish();
  return recorded;
}

// A module `require`d in `each` loads late; resume must check it too.
void BatchWorker::record_modules(const nlohmann::json& modules) {
  m_session->database().exec(
      "UPDATE " + m_session->ledger().table("runs") +
          " SET checkpoint = jsonb_set(coalesce(checkpoint, '{}'), '{modules}', "
          "coalesce(checkpoint->'modules', '{}') || $2::jsonb) WHERE run_id = $1",
      {m_shared.run_id, modules.dump()});
}

BatchWorker::ScannedBatch BatchWorker::scan_batch(const Chunk& chunk, const Params& after,
                                                  long long wanted, Database* database) {
  RecipeSession& session = *m_session;
  ScannedBatch batch;
  batch.wanted = wanted;
  batch.range_from = after.empty() ? chunk.lower : after;
  batch.range_to = chunk.upper;
  TableScan scan(database ? *database : session.database(), *session.source(), session.key(),
                 session.columns(), session.recipe().where, wanted, batch.range_from);
  scan.set_upper(chunk.upper);
  batch.rows = session.scan_next(scan);
  batch.count = batch.rows.size();
  batch.last = after;
  if (batch.count > 0) {
    batch.range_from = row_key(batch.rows[0], session.key());
    batch.range_from_inclusive = true;
    batch.range_to = batch.last =
        row_key(batch.rows[static_cast<int>(batch.count - 1)], session.key());
  }
  return batch;
}

void BatchWorker::show_range(const ScannedBatch& batch) {
  m_range_from = batch.range_from;
  m_range_to = batch.range_to;
  m_range_from_inclusive = batch.range_from_inclusive;
}

bool BatchWorker::source_writes_stay_in_row() {
  Database& database = m_session->database();
  // The source and, for a partitioned table, its partitions.
  auto rows = database.exec(
      "WITH tree AS (SELECT $1::oid AS relid UNION SELECT relid FROM pg_partition_tree($1::oid)) "
      "SELECT NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid IN (SELECT relid FROM tree) "
      "AND NOT tgisinternal) "
      "AND NOT EXISTS (SELECT 1 FROM pg_rewrite WHERE ev_class IN (SELECT relid FROM tree) "
      "AND rulename <> '_RETURN') "
      "AND NOT EXISTS (SELECT 1 FROM pg_constraint WHERE contype = 'f' AND confrelid IN "
      "(SELECT relid FROM tree) AND confupdtype NOT IN ('a', 'r'))",
      {m_session->source()->oid});
  return !rows.empty() && std::string(rows[0][0].c_str()) == "t";
}

bool BatchWorker::source_batches_never_wait_on_each_other() {
  const TableInfo& source = *m_session->source();
  const auto& allowed = m_session->context().allowed_writes;
  Params columns;
  auto found = allowed.find(source.qualified_name);
  if (found != allowed.end()) columns.assign(found->second.begin(), found->second.end());
  auto rows = m_session->database().exec(
      "WITH tree AS (SELECT $1::oid AS relid UNION SELECT relid FROM pg_partition_tree($1::oid)) "
      "SELECT NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid IN (SELECT relid FROM tree) "
      "AND (i.indisunique OR i.indisexclusion) AND (i.indexprs IS NOT NULL OR i.indpred IS NOT "
      "NULL OR '*' = ANY ($2::text[]) OR EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = "
      "i.indrelid AND a.attnum = ANY (i.indkey) AND a.attname = ANY ($2::text[])))) "
      "AND NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid IN (SELECT relid FROM tree) "
      "AND condeferrable)",
      {source.oid, array_literal(columns)});
  return !rows.empty() && std::string(rows[0][0].c_str()) == "t";
}

bool BatchWorker::source_has_no_row_security() {
  auto rows = m_session->database().exec(
      "SELECT NOT relrowsecurity FROM pg_class WHERE oid = $1::oid", {m_session->source()->oid});
  return !rows.empty() && std::string(rows[0][0].c_str()) == "t";
}

// The batch after the one in hand is read before the one in hand is written
// when its writes were all patches of its own rows: those change no row the next
// batch reads. A thread writes and commits the batch in hand, with its chunk's
// progress, and opens the next batch's transaction, while `each` runs over the
// next batch. This thread reads the next batch meanwhile on the session's second
// connection; when row security decides what the scan sees, or past the chunk's
// end (the next chunk is claimed in the batch's transaction), the writer reads it
// first, in the batch's transaction. Every call the recipe makes meanwhile waits
// until that commit (Database::lend), so that it reads what a batch after batch
// would read. A failure of either batch rolls back whatever of them is not
// committed and leaves to work_on() to try again.
//
// The next batch is written at once too, beside the one in hand, when `each` is
// done with it before the writer is done with the one in hand (its `each` read
// nothing that batch writes, then): on a connection of its own, by a writer of
// its own, while this thread runs `each` over the batch after it. See PairedBatch.
// The batch after that is written on the session's connection as soon as the one
// in hand has committed there, without waiting for the one beside: batches form a
// chain two deep, each recording its progress once the one before has committed.
// One writer backend at a time left a core idle a third of the run; pairs that
// each waited for the pair before still left it idle 27% of a 1M-row run.
BatchWorker::Attempt BatchWorker::attempt_overlapped(Chunk& chunk,
                                                     RecipeSession::Counters& before) {
  RecipeSession& session = *m_session;
  Database& database = session.database();
  const RunOptions& options = *m_shared.options;

  database.begin();
  Renewal renewal = m_leases->renew(chunk);
  ScannedBatch current;
  bool processed = false;  // whether `each` has run over `current`
  // The batch written beside the one before `current`, perhaps still in flight:
  // `current` then renewed no lease, and records its progress after it.
  std::unique_ptr<PairedBatch> behind;
  ScannedBatch behind_batch;
  WaitOnUnwind behind_ends([&] {
    if (behind && behind->written.valid()) behind->written.wait();
  });
  // The writes of the batch written last, freed by this thread while the writer
  // writes the next one.
  RecipeSession::BatchOutput written_last;
  auto started = std::chrono::steady_clock::now();
  RecipeSession::Counters behind_added;  // what `behind` added, once settled
  // Waits for `behind` and counts it in if it committed; false if it did not
  // (`failure` says why, or nothing: the lease went to another worker).
  auto settle_behind = [&](std::exception_ptr& failure) {
    if (!behind) return true;
    std::unique_ptr<PairedBatch> link = std::move(behind);
    link->wait_written(failure);
    if (failure) {
      forget_pair_connection();
      show_range(behind_batch);
      return false;
    }
    if (!link->committed) return false;
    session.add_written(link->added);
    before = link->after_each;
    before += link->first_added;
    before += link->added;
    chunk = link->updated;
    behind_added = link->added;
    if (!options.quiet)
      spdlog::debug("worker {} chunk {}: batch of {} rows committed beside the one before",
                    m_id, chunk.number, behind_batch.count);
    return true;
  };
  for (;;) {
    // `renewal` opened the transaction `current` is written in, or `behind` was
    // written beside the batch before and `renewal` is what that batch recorded.
    if (!renewal.held) {
      session.roll_back_batch(before);
      return {Outcome::lease_lost};
    }
    if (renewal.stop != StopKind::none || should_stop()) {
      std::exception_ptr failure;
      bool settled = settle_behind(failure);
      database.wait_given_back();
      session.roll_back_batch(before);
      if (failure) std::rethrow_exception(failure);
      if (!settled) return {Outcome::lease_lost};
      StopSignal::request(renewal.stop);
      return {Outcome::stop_requested};
    }
    if (!processed) {
      current = scan_batch(chunk, chunk.after, m_batch_size);
      show_range(current);
      started = std::chrono::steady_clock::now();
      if (current.count > 0) session.process_scanned(current.rows, current.count);
    }
    crash_point("batch_processed");
    bool done =
        static_cast<long long>(current.count) < current.wanted || current.last == chunk.upper;
    RecipeSession::BatchOutput output = session.take_output();
    // A SQL `where` may read other rows of the table, which the batch in hand changes.
    bool read_ahead = !should_stop() && output.writes.only_own_row_patches() &&
                      !session.recipe().where.sql;
    // Within the chunk, the next batch is read on the second connection while this
    // one is written; past its end, the next chunk is claimed in this transaction.
    bool read_aside = read_ahead && !done && m_scan_aside;
    std::optional<ScannedBatch> next;
    // The chunk the next batch is of, claimed in this batch's transaction when this
    // batch ends its chunk.
    std::optional<Chunk> next_chunk;

    // What `behind` adds to the chunk is counted in by the writer, once it has
    // committed.
    RecipeSession::Counters after_each = session.counters();
    auto updated = std::make_shared<Chunk>(with_share(chunk, before, after_each));
    WorkerBatch progress;
    progress.rows = static_cast<long long>(current.count);
    progress.retries = m_retries_unrecorded;
    std::optional<nlohmann::json> modules = modules_to_record();
    std::size_t modules_now = session.modules().size();
    // A batch that renewed no lease takes its number on the writer.
    long long sequence = renewal.batch_number * k_sequences_per_batch;
    int batch = static_cast<int>(renewal.batch_number % INT_MAX);
    std::optional<std::shared_future<void>> behind_written;
    if (behind) behind_written = behind->written;

    RecipeSession::Counters added;
    bool committed = false;
    Renewal next_renewal;
    Recorded recorded;
    // The batch after `current`, when it is written beside it (see PairedBatch).
    auto pair = std::make_unique<PairedBatch>();
    std::promise<void> current_committed;
    pair->first_committed = current_committed.get_future().share();
    bool current_commit_told = false;
    // The writer reads the next batch too, first thing, while this thread waits for
    // it: a thread that sleeps while the other one works never waits for a CPU the
    // other one holds (a woken thread is often queued on its waker's CPU).
    std::promise<void> scanned;
    std::future<void> next_scanned = scanned.get_future();
    database.lend();
    std::future<void> written = m_writer->post([&]() {
      try {
        database.borrow();
        if (behind_written) {
          long long number = session.ledger().next_batch_number();
          sequence = number * k_sequences_per_batch;
          batch = static_cast<int>(number % INT_MAX);
        }
        // `current` commits after the batch behind it, which records its progress
        // in the chunk's and the worker's rows first.
        bool behind_counted = false;
        auto wait_behind = [&] {
          if (!behind_written || behind_counted) return;
          behind_written->get();  // what failed it fails this batch
          if (!behind->committed) throw LeaseTaken();
          count_written(*updated, behind->added);
          updated->batches = behind->updated.batches;
          behind_counted = true;
        };
        if (read_ahead && !read_aside) {
          if (!done) {
            next = scan_batch(chunk, current.last, m_batch_size);
          } else {
            wait_behind();  // the claim updates the worker's row, which it records in
            if ((next_chunk = m_leases->claim(chunk.number))) {
              progress.next_chunk = next_chunk->number;
              next = scan_batch(*next_chunk, next_chunk->after, m_batch_size);
            }
          }
          scanned.set_value();
        }
        added = session.write_output(output, batch, sequence, flush_isolation());
        wait_behind();
        count_written(*updated, added);
        // `next` is this thread's to read only when not aside.
        bool goes_on = read_aside || next;
        recorded = checkpoint_and_commit(*updated, current.last, done, progress, modules,
                                         committed, goes_on);
        if (!recorded.held) throw LeaseTaken();
        current_commit_told = true;
        current_committed.set_value();
        // A batch written beside this one records its progress in the chunk's row
        // next, and the batch after it renews no lease; the connection is lent on
        // to it.
        PairedBatch::FirstEnd end = pair->first_ended();
        if (goes_on && !end.second_posted)
          next_renewal = m_leases->renew(next_chunk ? *next_chunk : *updated);
        if (!end.lent_on) database.give_back(false);
      } catch (...) {
        pair->first_failed();
        if (!current_commit_told) current_committed.set_exception(std::current_exception());
        database.give_back(true);
        // A failure before the read ahead was done: the worker's thread waits for it.
        if (read_ahead && !read_aside) {
          try {
            scanned.set_exception(std::current_exception());
          } catch (const std::future_error&) {
            // The read ahead was done; the failure came after it.
          }
        }
        throw;
      }
    });

    // The writers at work on this iteration's locals, when an exception leaves
    // before they are waited for.
    WaitOnUnwind writers_end([&] {
      if (written.valid()) written.wait();
      if (pair && pair->posted && pair->written.valid()) pair->written.wait();
    });
    written_last = {};
    if (fail_point("batch_posted")) throw std::bad_alloc();
    std::exception_ptr failure;  // of `next`, unless `current` was not committed
    bool next_ready = false;  // false too when no chunk was left to claim
    if (read_aside) {
      try {
        next = scan_batch(chunk, current.last, m_batch_size, &session.reader());
        next_ready = true;
      } catch (...) {
        session.forget_reader();
        failure = std::current_exception();
      }
    } else if (read_ahead) {
      try {
        next_scanned.get();
        next_ready = next.has_value();
      } catch (...) {
        // The writer stops at it: written.get() says why.
      }
    }
    if (next_ready && next->count > 0) {
      try {
        session.process_scanned(next->rows, next->count);
      } catch (...) {
        failure = std::current_exception();
      }
    }
    // The batch after, read meanwhile when `next` is written beside `current`.
    std::optional<ScannedBatch> after_next;
    if (!failure && read_aside && next_ready && next->count > 0 &&
        pairable(*next, chunk, modules_now) && pair->post_second()) {
      try {
        write_beside(*pair, *next, updated, after_each, database);
      } catch (...) {
        pair->second_ended(database, true);
        failure = std::current_exception();
      }
    }
    if (pair->posted) {
      try {
        after_next = scan_batch(chunk, next->last, m_batch_size, &session.reader());
        if (after_next->count > 0) session.process_scanned(after_next->rows, after_next->count);
      } catch (...) {
        session.forget_reader();
        failure = std::current_exception();
      }
    }
    std::exception_ptr second_failure;
    try {
      written.get();
    } catch (...) {
      std::exception_ptr error = std::current_exception();
      if (pair->posted) pair->wait_written(second_failure);
      std::exception_ptr behind_failure;
      settle_behind(behind_failure);
      database.wait_given_back();
      if (!committed) {
        if (behind_failure) std::rethrow_exception(behind_failure);
        if (is_lease_taken(error)) {
          session.roll_back_batch(before);
          return {Outcome::lease_lost};
        }
        show_range(current);
        std::rethrow_exception(error);
      }
      failure = error;  // opening the next batch's transaction
    }
    // `current` is committed, and `behind` before it. The chain goes on with the
    // batch after `next` unless the one beside has to be waited for: that batch
    // is written while `next` may still be, so its writes must all be patches of
    // its own rows (a row of `next` it wrote first would make `next` wait for it,
    // while it waits for `next` to commit).
    bool chain_goes_on = m_chains && pair->posted && !failure && after_next &&
                         session.context().writes.only_own_row_patches();
    if (!chain_goes_on) {
      if (pair->posted) pair->wait_written(second_failure);
      database.wait_given_back();
    }
    bool chained = behind_written.has_value();
    if (chained) {
      std::exception_ptr never;  // `current` waited for `behind`
      settle_behind(never);
    }
    session.add_written(added);
    before = after_each;
    if (chained) before += behind_added;
    before += added;
    chunk = *updated;
    // What the session's counters lack of the batches before `next` when it was
    // written beside (its counters were taken before they were added in).
    pair->first_added = added;
    if (chained) pair->first_added += behind_added;
    m_modules_recorded = modules_now;
    m_retries_unrecorded = 0;
    if (!options.quiet)
      spdlog::debug("worker {} chunk {}: batch of {} rows committed", m_id, chunk.number,
                    current.count);
    if (!m_shared.fixed_batch_size)
      m_batch_size = next_batch_size(current.wanted, static_cast<long long>(current.count),
                                     std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::steady_clock::now() - started));
    started = std::chrono::steady_clock::now();
    if (next_chunk) chunk = std::move(*next_chunk);  // held: work_on() carries it on
    if (chain_goes_on) {
      behind = std::move(pair);
      behind_batch = std::move(*next);
      renewal = Renewal{};
      renewal.held = true;
      renewal.stop = recorded.stop;
      written_last = std::move(output);
      current = std::move(*after_next);
      processed = true;
      continue;
    }
    if (pair->posted) {
      if (second_failure) {
        forget_pair_connection();
        show_range(*next);
        std::rethrow_exception(second_failure);
      }
      if (!pair->committed) {
        session.roll_back_batch(before);
        return {Outcome::lease_lost};
      }
      // `next` is committed too.
      session.add_written(pair->added);
      before = pair->after_each;
      before += pair->first_added;
      before += pair->added;
      chunk = pair->updated;
      if (!options.quiet)
        spdlog::debug("worker {} chunk {}: batch of {} rows committed beside the one before",
                      m_id, chunk.number, next->count);
      if (failure) {
        if (after_next) show_range(*after_next);
        std::rethrow_exception(failure);
      }
      // The renewal the first batch's writer left for now.
      next_renewal = m_leases->renew(chunk);
      next = std::move(after_next);
    }
    if (failure) {
      if (next) show_range(*next);
      std::rethrow_exception(failure);
    }
    if (done && !next) {
      Attempt result;
      result.chunk_done = true;
      return result;
    }
    if (!next) return {};  // the next batch starts afresh
    written_last = std::move(output);
    renewal = next_renewal;
    current = std::move(*next);
    processed = true;
  }
}

PairedBatch::FirstEnd PairedBatch::first_ended() {
  std::lock_guard<std::mutex> lock(m_mutex);
  m_first_ended = true;
  m_lent_on = m_second_posted && !m_second_ended;
  return {m_second_posted, m_lent_on};
}

void PairedBatch::first_failed() {
  std::lock_guard<std::mutex> lock(m_mutex);
  m_first_ended = true;
}

bool PairedBatch::post_second() {
  std::lock_guard<std::mutex> lock(m_mutex);
  if (m_first_ended) return false;
  m_second_posted = true;
  return true;
}

void PairedBatch::second_ended(Database& lent, bool failed) {
  bool give_back;
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_second_ended = true;
    give_back = m_lent_on;
    m_lent_on = false;
  }
  if (give_back) lent.give_back(failed);
}

void PairedBatch::wait_written(std::exception_ptr& failure) {
  if (!written.valid()) return;
  try {
    written.get();
  } catch (...) {
    failure = std::current_exception();
  }
}

bool BatchWorker::pairable(const ScannedBatch& second, const Chunk& chunk,
                           std::size_t modules_before) {
  RecipeSession& session = *m_session;
  bool ends_chunk =
      static_cast<long long>(second.count) < second.wanted || second.last == chunk.upper;
  return m_pairs && !ends_chunk && !should_stop() &&
         session.context().writes.only_own_row_patches() &&
         session.modules().size() == modules_before && pair_connection_ready();
}

// The second batch of a pair: written in a transaction of its own on the second
// connection, recorded and committed once the first has committed. It renews no
// lease; its record of progress checks that the lease is still this worker's.
void BatchWorker::write_beside(PairedBatch& pair, const ScannedBatch& second,
                               std::shared_ptr<const Chunk> first,
                               const RecipeSession::Counters& first_after_each, Database& lent) {
  pair.output = m_session->take_output();
  pair.after_each = m_session->counters();
  pair.first = std::move(first);
  pair.first_after_each = first_after_each;
  WorkerBatch progress;
  progress.rows = static_cast<long long>(second.count);
  auto job = [this, &pair, &lent, progress, last = second.last]() {
    Database& database = *m_pair_database;
    try {
      database.begin();
      long long number = m_pair_ledger->next_batch_number();
      long long sequence = number * k_sequences_per_batch;
      pair.added = m_session->write_output(pair.output, static_cast<int>(number % INT_MAX),
                                           sequence, flush_isolation(), database,
                                           *m_pair_ledger);
      pair.first_committed.get();
      pair.updated = with_share(*pair.first, pair.first_after_each, pair.after_each);
      count_written(pair.updated, pair.added);
      if (m_pair_leases->record_batch(pair.updated, last, false, progress).held)
        commit_recorded_batch(database, pair.committed);
      else
        database.rollback();
    } catch (...) {
      try {
        if (database.in_transaction()) database.rollback();
      } catch (const std::exception&) {
        // A lost connection has rolled back on the server.
      }
      pair.second_ended(lent, true);
      throw;
    }
    pair.second_ended(lent, false);
  };
  pair.written = m_pair_writer->post(std::move(job)).share();
  pair.posted = true;
}

bool BatchWorker::pair_connection_ready() {
  if (m_pair_database) return true;
  try {
    m_pair_database = m_session->database().another();
    // Its batch records progress in rows the batch before changed after its
    // snapshot was taken: under REPEATABLE READ every pair would fail.
    m_pair_database->configure(
        "SELECT set_config('default_transaction_isolation', 'read committed', false)", {});
    m_pair_ledger = std::make_unique<Ledger>(*m_pair_database, m_session->ledger().schema());
    m_pair_leases =
        std::make_unique<ChunkLeases>(*m_pair_database, *m_pair_ledger, m_shared.run_id, m_id,
                                      m_shared.options->operating.lease_seconds);
    return true;
  } catch (const std::exception& e) {
    // Not tried again for every batch: near max_connections each try would fail.
    spdlog::warn("worker {}: batches are written one at a time: no third connection: {}", m_id,
                 e.what());
    forget_pair_connection();
    m_pairs = false;
    return false;
  }
}

void BatchWorker::forget_pair_connection() {
  m_pair_leases.reset();
  m_pair_ledger.reset();
  m_pair_database.reset();
}

long long BatchWorker::next_batch_size(long long size, long long rows,
                                       std::chrono::milliseconds took) const {
  // Only a full batch says how long `size` rows take.
  if (rows < size) return size;
  double target = static_cast<double>(m_shared.options->operating.target_batch_ms);
  double ratio = target / std::max<double>(1.0, static_cast<double>(took.count()));
  ratio = std::clamp(ratio, 0.5, 2.0);
  return std::clamp(static_cast<long long>(static_cast<double>(size) * ratio), k_min_batch_rows,
                    k_max_batch_rows);
}

std::string BatchWorker::range_text() const {
  const auto& key = m_session->key();
  std::string columns;
  for (const auto& k : key) columns += (columns.empty() ? "" : ", ") + k;
  std::string from = m_range_from.empty() ? "the start" : key_text(m_range_from);
  return "key (" + columns + ") " + (m_range_from_inclusive || m_range_from.empty() ? "from " : "after ") +
         from + " to " + key_text(m_range_to);
}

}  // namespace host
