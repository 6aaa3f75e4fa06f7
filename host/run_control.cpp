#include "host/run_control.hpp"

#include <cmath>
#include <iostream>
#include <sstream>

#include "host/conninfo.hpp"
#include "host/database.hpp"
#include "host/ledger.hpp"
#include "host/progress.hpp"
#include "host/run_lock.hpp"
#include "host/run_types.hpp"

namespace host {

namespace {

// Timestamps as section 10 writes them, whatever the session's TimeZone or DateStyle.
std::string iso_utc(const std::string& column) {
  return "to_char(" + column + " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')";
}

std::string text(const pqxx::field& field) { return field.is_null() ? "" : field.c_str(); }

bool ended(const std::string& status) {
  return status == "succeeded" || status == "failed" || status == "verify_failed" ||
         status == "cancelled";
}

// Rounded for people reading the JSON; nobody needs a rate to the femto-row.
double rounded(double value) { return std::round(value * 100) / 100; }

// A ledger made before migration 3 has no chunks or workers: a run from an older
// host reads as a run without chunks rather than as an error.
bool has_table(Database& database, Ledger& ledger, const std::string& name) {
  auto found = database.exec("SELECT to_regclass($1) IS NOT NULL", {ledger.table(name)});
  return std::string(found[0][0].c_str()) == "t";
}

// Rolls back the transaction of a command that did not commit it (an exception
// on the way): the caller's Database stays usable.
class TransactionScope {
 public:
  explicit TransactionScope(Database& database) : m_database(database) { m_database.begin(); }
  ~TransactionScope() {
    if (!m_database.in_transaction()) return;
    try {
      m_database.rollback();
    } catch (...) {
      // The connection is gone, and the transaction with it.
    }
  }
  TransactionScope(const TransactionScope&) = delete;
  TransactionScope& operator=(const TransactionScope&) = delete;

 private:
  Database& m_database;
};

// The section 9 counters summed over the run's chunks: every key of every chunk,
// the eight of section 9 at least (0 when no batch has committed yet).
nlohmann::json chunk_stats(Database& database, Ledger& ledger, const std::string& run_id) {
  nlohmann::json stats = RunStats{}.to_json();
  auto rows =
      database.exec("SELECT e.key, sum(e.value::numeric)::text FROM " + ledger.table("chunks") +
                        " c, jsonb_each(c.stats) e WHERE c.run_id = $1::uuid "
                        "AND jsonb_typeof(e.value) = 'number' GROUP BY e.key ORDER BY 1",
                    {run_id});
  for (const auto& row : rows) {
    std::string total = row[1].c_str();
    if (total.find_first_of(".eE") == std::string::npos)
      stats[row[0].c_str()] = std::stoll(total);
    else
      stats[row[0].c_str()] = std::stod(total);
  }
  return stats;
}

long long stat(const nlohmann::json& stats, const char* name) {
  if (!stats.is_object() || !stats.contains(name) || !stats[name].is_number()) return 0;
  return stats[name].get<long long>();
}

// The run's other advisory lock (sec10 plan): every process working on the run
// holds it shared, so taking it exclusively proves none does.
bool try_lock_run_workers_for_transaction(Database& database, const std::string& run_id) {
  auto taken = database.exec(
      "SELECT pg_try_advisory_xact_lock(hashtext('host run worker'), hashtext(lower($1)))",
      {run_id});
  return std::string(taken[0][0].c_str()) == "t";
}

}  // namespace

nlohmann::json run_status(Database& database, Ledger& ledger, const std::string& run_id) {
  if (!ledger.exists()) throw UsageError("no run " + run_id + " in the ledger");
  TransactionScope transaction(database);
  // One snapshot for the run, its chunks and its workers, so that the sums agree
  // with each other while workers commit.
  database.exec("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY");
  // stop_request through to_jsonb: a ledger from before migration 3 has no such column.
  auto found = database.exec(
      "SELECT r.run_id::text, r.recipe, r.commit_mode, r.mode, r.status, "
      "to_jsonb(r) ->> 'stop_request', r.stats::text, " +
          iso_utc("r.started_at") + ", " + iso_utc("r.finished_at") +
          ", extract(epoch FROM (CASE WHEN r.status = 'running' OR r.finished_at IS NULL "
          "THEN clock_timestamp() ELSE r.finished_at END) - r.started_at)::float8 FROM " +
          ledger.table("runs") + " r WHERE r.run_id::text = lower($1)",
      {run_id});
  if (found.empty()) throw UsageError("no run " + run_id + " in the ledger");
  const auto& run = found[0];
  const std::string id = text(run[0]), status = text(run[4]);
  nlohmann::json run_stats =
      run[6].is_null() ? nlohmann::json() : nlohmann::json::parse(run[6].c_str());
  const double elapsed = run[9].is_null() ? 0 : run[9].as<double>();

  bool chunked = false;
  long long estimate = 0;
  nlohmann::json summed = RunStats{}.to_json();
  const bool with_chunks = has_table(database, ledger, "chunks");
  if (with_chunks) {
    auto totals = database.exec("SELECT count(*), coalesce(sum(rows_estimate), 0)::bigint FROM " +
                                    ledger.table("chunks") + " WHERE run_id = $1::uuid",
                                {id});
    chunked = totals[0][0].as<long long>() > 0;
    estimate = totals[0][1].as<long long>();
    if (chunked) summed = chunk_stats(database, ledger, id);
  }
  // While the run goes on, its chunks hold what committed batches did; once it has
  // ended, runs.stats holds the totals the report gave.
  nlohmann::json stats;
  if (chunked && !ended(status))
    stats = summed;
  else if (run_stats.is_object())
    stats = run_stats;
  else
    stats = summed;
  const long long rows_done = stat(stats, "scanned");
  // An estimate below what is done is known to be wrong (planned before ANALYZE,
  // or rows added since); what is done is a better lower bound, and is above 0
  // whenever the source was not empty.
  if (estimate < rows_done) estimate = rows_done;

  auto workers = nlohmann::json::array();
  bool throttled = false;
  if (has_table(database, ledger, "workers")) {
    std::string held = with_chunks
                           ? "(SELECT min(c.chunk) FROM " + ledger.table("chunks") +
                                 " c WHERE c.run_id = w.run_id AND c.lease_owner = w.worker "
                                 "AND c.lease_until > now() AND NOT c.done)"
                           : std::string("NULL::integer");
    auto rows =
        database.exec("SELECT w.worker, w.host, w.pid, " + held + ", " + iso_utc("w.last_seen") +
                          ", w.throttled, w.rows_done, w.batches FROM " + ledger.table("workers") +
                          " w WHERE w.run_id = $1::uuid ORDER BY w.worker",
                      {id});
    for (const auto& row : rows) {
      throttled = throttled || std::string(row[5].c_str()) == "t";
      workers.push_back(
          {{"id", text(row[0])},
           {"host", text(row[1])},
           {"pid", row[2].as<long long>()},
           {"chunk", row[3].is_null() ? nlohmann::json() : nlohmann::json(row[3].as<long long>())},
           {"last_seen", text(row[4])},
           {"throttled", std::string(row[5].c_str()) == "t"},
           {"rows_done", row[6].as<long long>()},
           {"batches", row[7].as<long long>()}});
    }
  }
  database.rollback();

  ProgressSnapshot snapshot;
  snapshot.rows_done = rows_done;
  snapshot.rows_total_estimate = estimate;
  snapshot.elapsed_seconds = elapsed;
  snapshot.stopped = status != "running";
  // A flag left by a worker that has since stopped says nothing about now.
  snapshot.throttled = throttled && status == "running";
  nlohmann::json eta;
  if (status == "succeeded" || status == "verify_failed")
    eta = 0.0;  // nothing is left to do
  else if (auto seconds = snapshot.eta_seconds())
    eta = rounded(*seconds);

  return {{"run_id", id},
          {"recipe", text(run[1])},
          {"commit", text(run[2])},
          {"mode", text(run[3])},
          {"status", status},
          {"stop_request", run[5].is_null() ? nlohmann::json() : nlohmann::json(text(run[5]))},
          {"started_at", text(run[7])},
          {"finished_at", run[8].is_null() ? nlohmann::json() : nlohmann::json(text(run[8]))},
          {"stats", stats},
          {"progress",
           {{"rows_done", rows_done},
            {"rows_total_estimate", estimate},
            {"rows_per_second", rounded(snapshot.rows_per_second())},
            {"eta_seconds", eta},
            {"throttled", snapshot.throttled},
            {"elapsed_seconds", rounded(elapsed)}}},
          {"workers", workers}};
}

std::string describe_status(const nlohmann::json& status) {
  const auto& progress = status["progress"];
  const auto& stats = status["stats"];
  ProgressSnapshot snapshot;
  snapshot.rows_done = progress.value("rows_done", 0LL);
  snapshot.rows_total_estimate = progress.value("rows_total_estimate", 0LL);
  snapshot.elapsed_seconds = progress.value("elapsed_seconds", 0.0);
  snapshot.patched = stat(stats, "patched");
  snapshot.protected_fields = stat(stats, "protected");
  snapshot.review = stat(stats, "review");
  snapshot.errors = stat(stats, "errors");
  snapshot.throttled = progress.value("throttled", false);
  snapshot.stopped = status.value("status", "") != "running";

  std::ostringstream out;
  out << "run " << status.value("run_id", "") << " (" << status.value("recipe", "") << ", "
      << status.value("commit", "") << "): " << status.value("status", "");
  if (status["stop_request"].is_string() && !ended(status.value("status", "")))
    out << ", " << status["stop_request"].get<std::string>() << " requested";
  out << "\n  " << progress_line(snapshot) << "\n  started " << status.value("started_at", "");
  if (status["finished_at"].is_string())
    out << ", finished " << status["finished_at"].get<std::string>();
  out << "\n";
  const auto& workers = status["workers"];
  out << "  workers: " << workers.size() << "\n";
  for (const auto& worker : workers) {
    out << "    " << worker.value("id", "") << "  pid " << worker.value("pid", 0LL) << " on "
        << worker.value("host", "") << ", ";
    if (worker["chunk"].is_number())
      out << "chunk " << worker["chunk"].get<long long>();
    else
      out << "no chunk";
    out << ", last seen " << worker.value("last_seen", "") << "\n";
  }
  return out.str();
}

StopOutcome request_stop(Database& database, Ledger& ledger, const std::string& run_id,
                         StopRequest request) {
  const char* const verb = request == StopRequest::pause ? "pause" : "cancel";
  if (!ledger.exists()) throw UsageError("no run " + run_id + " in the ledger");
  TransactionScope transaction(database);
  // stop_request is a column of migration 3.
  ledger.ensure_schema();
  // Locked first: a second pause or cancel, or a process changing the status,
  // waits here instead of acting on a stale read.
  auto found =
      database.exec("SELECT r.run_id::text, r.status, to_jsonb(r) ->> 'stop_request' FROM " +
                        ledger.table("runs") + " r WHERE r.run_id::text = lower($1) FOR UPDATE",
                    {run_id});
  if (found.empty()) throw UsageError("no run " + run_id + " in the ledger");
  StopOutcome outcome;
  outcome.run_id = text(found[0][0]);
  outcome.previous_status = text(found[0][1]);
  const std::string asked = text(found[0][2]);
  const std::string& id = outcome.run_id;
  if (outcome.previous_status != "running" && outcome.previous_status != "paused")
    throw UsageError("run " + id + " has already ended (" + outcome.previous_status +
                     "): nothing to " + verb);
  outcome.status = outcome.previous_status;

  if (request == StopRequest::pause && (outcome.previous_status == "paused" || asked == "cancel")) {
    // Never turns a cancel into a pause, nor asks a paused run to pause again.
    outcome.message = outcome.previous_status == "paused"
                          ? "run " + id + " is already paused; continue it with host resume " + id
                          : "run " + id + " already has a cancel request; nothing more to record";
    return outcome;
  }

  // Both locks taken: no process works on the run, and none can start to (resume
  // or join) before this transaction ends, so the status is ours to set.
  const bool nobody_alive = try_lock_run_for_transaction(database, id) &&
                            try_lock_run_workers_for_transaction(database, id);
  if (!nobody_alive) {
    database.exec(
        "UPDATE " + ledger.table("runs") + " SET stop_request = $2 WHERE run_id = $1::uuid",
        {id, std::string(verb)});
    database.commit();
    outcome.message = std::string(verb) + " of run " + id +
                      " recorded: its processes stop after their current batch" +
                      (request == StopRequest::pause
                           ? "; continue it with host resume " + id
                           : "; what they committed stays (host revert " + id + " undoes it)");
    return outcome;
  }

  // Leases of processes that are gone would only make the next one wait them out.
  if (has_table(database, ledger, "chunks"))
    database.exec("UPDATE " + ledger.table("chunks") +
                      " SET lease_owner = NULL, lease_until = NULL WHERE run_id = $1::uuid "
                      "AND (lease_owner IS NOT NULL OR lease_until IS NOT NULL)",
                  {id});
  if (has_table(database, ledger, "workers"))
    database.exec("UPDATE " + ledger.table("workers") +
                      " SET chunk = NULL WHERE run_id = $1::uuid AND chunk IS NOT NULL",
                  {id});
  if (request == StopRequest::pause) {
    // Left NULL: the run is simply paused, as if its last process had stopped on a signal.
    database.exec("UPDATE " + ledger.table("runs") +
                      " SET status = 'paused', stop_request = NULL WHERE run_id = $1::uuid",
                  {id});
    outcome.status = "paused";
    outcome.message =
        "run " + id + " paused (no process was working on it); continue it with host resume " + id;
  } else {
    // The run has ended: runs.stats gets the totals of its chunks, as a process
    // closing the run would write, and a report saved at a pause says cancelled.
    std::string totals = "'{}'::jsonb";
    if (has_table(database, ledger, "chunks"))
      totals =
          "coalesce((SELECT jsonb_object_agg(s.key, s.total) FROM (SELECT e.key, "
          "sum(e.value::numeric) AS total FROM " +
          ledger.table("chunks") +
          " c, jsonb_each(c.stats) e WHERE c.run_id = $1::uuid AND jsonb_typeof(e.value) = "
          "'number' GROUP BY e.key) s), '{}'::jsonb)";
    database.exec("UPDATE " + ledger.table("runs") +
                      " SET status = 'cancelled', stop_request = 'cancel', "
                      "finished_at = clock_timestamp(), stats = coalesce(stats, '{}'::jsonb) || " +
                      totals +
                      ", report = CASE WHEN jsonb_typeof(report) = 'object' THEN "
                      "jsonb_set(report, '{status}', '\"cancelled\"') ELSE report END "
                      "WHERE run_id = $1::uuid",
                  {id});
    outcome.status = "cancelled";
    outcome.message = "run " + id +
                      " cancelled (no process was working on it); what it committed stays "
                      "(host revert " +
                      id + " undoes it)";
  }
  outcome.set_directly = true;
  database.commit();
  return outcome;
}

ExitCode command_status(const std::string& run_id, const std::optional<std::string>& db,
                        const std::string& ledger_schema, bool json) {
  Database database(resolve_conninfo(db));
  Ledger ledger(database, ledger_schema);
  auto status = run_status(database, ledger, run_id);
  if (json)
    std::cout << status.dump(2) << "\n";
  else
    std::cout << describe_status(status);
  return ExitCode::ok;
}

ExitCode command_stop(const std::string& run_id, StopRequest request,
                      const std::optional<std::string>& db, const std::string& ledger_schema) {
  Database database(resolve_conninfo(db));
  Ledger ledger(database, ledger_schema);
  std::cout << request_stop(database, ledger, run_id, request).message << "\n";
  return ExitCode::ok;
}

}  // namespace host
