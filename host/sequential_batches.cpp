#include "host/sequential_batches.hpp"

#include <spdlog/spdlog.h>

#include <lua.hpp>
#include <thread>

#include "bindings/lua_value.hpp"
#include "host/audit_file.hpp"
#include "host/chunk_leases.hpp"
#include "host/crash_point.hpp"
#include "host/database.hpp"
#include "host/errors.hpp"
#include "host/input_file.hpp"
#include "host/ledger.hpp"
#include "host/recipe_session.hpp"
#include "host/retry_policy.hpp"
#include "host/stop_signal.hpp"
#include "host/table_scan.hpp"
#include "host/throttle.hpp"

namespace host {

namespace {

// Well below PostgreSQL's 64 cached subtransaction ids per backend, leaving room
// for the savepoints of id maps and anything else in the run's transaction.
constexpr int k_atomic_flush_savepoints = 32;

}  // namespace

void work_sequentially(const SequentialRun& shape, nlohmann::json checkpoint) {
  RecipeSession& session = *shape.session;
  RunContext& run = session.context();
  Database& database = session.database();
  Ledger& ledger = session.ledger();
  const RunOptions& options = *shape.options;
  InputFile* input = shape.input;
  Throttle* throttle = shape.throttle;
  const bool commit_per_batch = shape.commit_per_batch;
  const long long batch_size = shape.batch_size;
  long long& sequence = *shape.sequence;
  int flush_savepoints = 0;  // released in this transaction (see FlushIsolation)
  std::unique_ptr<TableScan> scan;
  if (session.source()) {
    scan = std::make_unique<TableScan>(database, *session.source(), session.key(),
                                       session.columns(), session.recipe().where, batch_size,
                                       key_params(checkpoint.value("after", nlohmann::json())));
  } else if (checkpoint.contains("records")) {
    input->skip(checkpoint["records"].get<long long>());
  }
  long long batch_number = checkpoint.value("batches", 0LL);
  // One transaction for everything, unless each batch commits (an input file in
  // batch mode: a table in batch mode is worked in chunks).
  if (!commit_per_batch) database.begin();
  Backoff backoff;
  for (;;) {
    if (commit_per_batch) {
      // host pause / host cancel reach a committed run through its row.
      auto request = database.exec("SELECT stop_request FROM " + ledger.table("runs") +
                                       " WHERE run_id = $1",
                                   {run.run_id});
      if (!request.empty() && !request[0][0].is_null())
        StopSignal::request(stop_kind_from(request[0][0].c_str()));
    }
    if (StopSignal::requested() != StopKind::none) {
      if (!commit_per_batch) database.rollback();
      return;
    }
    if (throttle && !throttle->wait_before_batch(
                          [] { return StopSignal::requested() != StopKind::none; }))
      continue;
    long long remaining = options.limit ? *options.limit - run.stats.scanned : batch_size;
    if (remaining <= 0) break;
    std::size_t wanted = static_cast<std::size_t>(std::min(remaining, batch_size));
    pqxx::result rows;
    std::vector<InputRecord> records;
    std::size_t count = 0;
    if (scan) {
      rows = session.scan_next(*scan);
      count = std::min<std::size_t>(rows.size(), wanted);
    } else {
      records = input->next(wanted);
      count = records.size();
    }
    if (count == 0) break;
    ++batch_number;
    // The input's records are kept, so that a batch the database rolled back
    // (lock timeout, deadlock, lost connection) can be tried again as it was.
    for (int tries = 0;;) {
      RecipeSession::Counters before = session.counters();
      nlohmann::json checkpoint_before = checkpoint;
      try {
        if (commit_per_batch) database.begin();
        if (scan) {
          session.process_scanned(rows, count);
          checkpoint["after"] = key_array(row_key(rows[static_cast<int>(count - 1)], session.key()));
        } else {
          session.process_rows(count, [&](lua_State* thread, std::size_t i, RowTask& task) {
            push_json(thread, records[i].fields);
            task.identity = std::make_shared<const RowIdentity>(RowIdentity{
                {{"input", *session.recipe().input}, {"line", records[i].line}},
                "record " + input->path() + ":" + std::to_string(records[i].line), "", "", nullptr,
                nullptr, {}});
          });
          checkpoint["records"] = checkpoint.value("records", 0LL) + static_cast<long long>(count);
        }
        crash_point("batch_processed");
        bool isolate = commit_per_batch || flush_savepoints < k_atomic_flush_savepoints;
        if (isolate && !run.writes.empty()) ++flush_savepoints;
        session.flush_batch(static_cast<int>(batch_number), sequence,
                            isolate ? FlushIsolation::savepoint : FlushIsolation::none);
        checkpoint["batches"] = batch_number;
        if (commit_per_batch) {
          checkpoint["modules"] = session.modules_json();  // a module required in `each` loads late
          checkpoint["stats"] = run.stats.to_json();
          checkpoint["protected_by_column"] = protected_json(run.protected_by_column);
          ledger.update_progress(run.run_id, checkpoint, run.stats.to_json());
          crash_point("batch_checkpointed");
          database.commit();
          crash_point("batch_committed");
          session.audit_file()->publish();
        }
        break;
      } catch (...) {
        std::exception_ptr error = std::current_exception();
        Failure failure = classify_failure(error);
        // Only a batch of its own can be tried again: an atomic run's transaction is lost.
        if (!commit_per_batch || failure == Failure::fatal) throw;
        session.roll_back_batch(before);
        checkpoint = checkpoint_before;
        ++shape.timing->retries;
        std::string range = records.empty() ? "rows"
                                            : "records " + input->path() + ":" +
                                                  std::to_string(records.front().line) + " to " +
                                                  std::to_string(records.back().line);
        if (++tries > options.operating.retries) {
          try {
            std::rethrow_exception(error);
          } catch (const DatabaseError& e) {
            throw DatabaseError("batch of " + range + " failed " + std::to_string(tries) +
                                    " times (SQLSTATE " + e.sqlstate() + "): " + e.what() +
                                    "; the run can be resumed: host resume " + run.run_id,
                                e.sqlstate());
          }
        }
        spdlog::warn("batch of {} failed, try {} of {}", range, tries + 1,
                     options.operating.retries + 1);
        std::this_thread::sleep_for(backoff.delay(tries));
        if (failure == Failure::connection_lost) {
          try {
            database.reconnect();
          } catch (const DatabaseUnreachable& e) {
            spdlog::warn("could not re-open the connection: {}", e.what());
          }
        }
      }
    }
    shape.timing->add_batch(static_cast<long long>(count));
    if (throttle) throttle->account(static_cast<long long>(count));
    if (shape.progress) shape.progress();
    if (scan && count < wanted) break;
  }
  if (commit_per_batch) return;
  if (StopSignal::requested() != StopKind::none) database.rollback();
}

}  // namespace host
