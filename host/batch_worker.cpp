#include "host/batch_worker.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
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
    try {
      Attempt result = attempt(chunk, size, before);
      if (result.outcome == Outcome::lease_lost) return;
      if (result.outcome == Outcome::stop_requested) return release();
      m_retries_unrecorded = 0;
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
  RunContext& context = session.context();
  const RunOptions& options = *m_shared.options;
  m_range_from = chunk.after.empty() ? chunk.lower : chunk.after;
  m_range_from_inclusive = false;
  m_range_to = chunk.upper;

  database.begin();
  Renewal renewal = m_leases->renew(chunk);
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

  TableScan scan(database, *session.source(), session.key(), session.columns(),
                 session.recipe().where, rows_wanted, m_range_from);
  scan.set_upper(chunk.upper);
  pqxx::result rows = session.scan_next(scan);
  std::size_t count = rows.size();
  Params last = chunk.after;
  if (count > 0) {
    m_range_from = row_key(rows[0], session.key());
    m_range_from_inclusive = true;
    m_range_to = last = row_key(rows[static_cast<int>(count - 1)], session.key());
    session.process_scanned(rows, count);
  }
  crash_point("batch_processed");
  session.flush_batch(batch, sequence, FlushIsolation::savepoint);
  // The batch's share of the worker's counters goes to the chunk's row.
  Chunk updated = chunk;
  updated.stats += context.stats.since(before.stats);
  for (const auto& [where, n] : context.protected_by_column) {
    auto old = before.protected_by_column.find(where);
    long long added = n - (old == before.protected_by_column.end() ? 0 : old->second);
    if (added) updated.protected_by_column[where] += added;
  }
  bool done = static_cast<long long>(count) < rows_wanted || last == chunk.upper;
  WorkerBatch progress;
  progress.rows = static_cast<long long>(count);
  progress.retries = m_retries_unrecorded;
  if (m_shared.throttle) {
    progress.throttled_seconds = m_shared.throttle->throttled_seconds();
    progress.throttled = m_shared.throttle->throttled_now();
  }
  m_leases->record_batch(updated, last, done, progress);
  if (session.modules().size() > m_modules_recorded) {
    // A module `require`d in `each` loads late; resume must check it too.
    database.exec("UPDATE " + session.ledger().table("runs") +
                      " SET checkpoint = jsonb_set(coalesce(checkpoint, '{}'), '{modules}', "
                      "coalesce(checkpoint->'modules', '{}') || $2::jsonb) WHERE run_id = $1",
                  {m_shared.run_id, session.modules_json().dump()});
  }
  crash_point("batch_checkpointed");
  database.commit();
  m_modules_recorded = session.modules().size();
  crash_point("batch_committed");
  if (session.audit_file()) session.audit_file()->publish();
  chunk = updated;
  if (!options.quiet)
    spdlog::debug("worker {} chunk {}: batch of {} rows committed", m_id, chunk.number, count);
  Attempt result;
  result.rows = static_cast<long long>(count);
  result.chunk_done = done;
  return result;
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
