// End to end: `host status`, `host pause` and `host cancel` (RECIPE_API.md section
// 10) on runs, chunks and workers written into the ledger by SQL, so that every
// state a run can be in is set up exactly, and on a real batch run.
#include <catch2/catch.hpp>

#include "host/ledger.hpp"
#include "host/run_lock.hpp"
#include "tests/e2e/e2e_helpers.hpp"

using namespace host::testing;
using namespace host::testing::e2e;
using nlohmann::json;

namespace {

void create_ledger(const std::string& db) {
  host::Database database(db);
  host::Ledger ledger(database, "host_ledger");
  database.begin();
  ledger.ensure_schema();
  database.commit();
}

// A run row started `seconds_ago`; its id.
std::string insert_run(const std::string& db, const std::string& status, int seconds_ago,
                       const std::string& stats = "NULL") {
  return value(db,
               "INSERT INTO host_ledger.runs (run_id, recipe, recipe_path, recipe_hash, mode, "
               "commit_mode, status, stats, started_at) VALUES (gen_random_uuid(), 'fixture', "
               "'/nowhere/fixture.lua', 'hash', 'commit', 'batch', '" +
                   status + "', " + stats + ", clock_timestamp() - interval '" +
                   std::to_string(seconds_ago) + " seconds') RETURNING run_id");
}

void insert_chunk(const std::string& db, const std::string& run_id, int chunk,
                  long long rows_estimate, bool done, const std::string& stats,
                  const std::string& lease_owner = "", const std::string& lease_until = "NULL") {
  sql(db,
      "INSERT INTO host_ledger.chunks (run_id, chunk, upper_key, rows_estimate, done, stats, "
      "lease_owner, lease_until) VALUES ('" +
          run_id + "', " + std::to_string(chunk) + ", '[\"" + std::to_string(chunk * 1000) +
          "\"]', " + std::to_string(rows_estimate) + ", " + (done ? "true" : "false") + ", '" +
          stats + "', " + (lease_owner.empty() ? "NULL" : "'" + lease_owner + "'") + ", " +
          lease_until + ")");
}

void insert_worker(const std::string& db, const std::string& run_id, const std::string& worker,
                   int pid, bool throttled, const std::string& last_seen) {
  sql(db,
      "INSERT INTO host_ledger.workers (run_id, worker, host, pid, last_seen, throttled) "
      "VALUES ('" +
          run_id + "', '" + worker + "', 'box', " + std::to_string(pid) + ", '" + last_seen +
          "', " + (throttled ? "true" : "false") + ")");
}

std::string run_column(const std::string& db, const std::string& run_id,
                       const std::string& column) {
  return value(db, "SELECT " + column + " FROM host_ledger.runs WHERE run_id = '" + run_id + "'");
}

// A running run half done: chunk 1 done, chunk 2 leased by worker a (throttled),
// chunk 3 leased once by worker b, whose lease ran out.
std::string half_done_run(const std::string& db) {
  create_ledger(db);
  auto id = insert_run(db, "running", 100);
  insert_chunk(db, id, 1, 1000, true,
               R"({"scanned": 1000, "patched": 10, "protected": 2, "review": 1, "errors": 0})");
  insert_chunk(db, id, 2, 1000, false, R"({"scanned": 500, "patched": 5, "errors": 1})", "box:1:1",
               "clock_timestamp() + interval '60 seconds'");
  insert_chunk(db, id, 3, 1000, false, "{}", "box:2:1", "clock_timestamp() - interval '5 seconds'");
  insert_worker(db, id, "box:1:1", 1111, true, "2026-12-01 15:04:05+00");
  insert_worker(db, id, "box:2:1", 2222, false, "2026-12-01 17:00:00+02");
  return id;
}

}  // namespace

TEST_CASE("host status: stats and progress summed from the chunks, workers and their leases",
          "[e2e][run_control]") {
  auto db = fresh_database();
  auto id = half_done_run(db);
  auto status = status_json(db, id);
  CHECK(status["run_id"] == id);
  CHECK(status["status"] == "running");
  CHECK(status["stop_request"].is_null());
  CHECK(status["stats"]["scanned"] == 1500);
  CHECK(status["stats"]["patched"] == 15);
  CHECK(status["stats"]["protected"] == 2);
  CHECK(status["stats"]["review"] == 1);
  CHECK(status["stats"]["errors"] == 1);
  CHECK(status["stats"]["inserted"] == 0);  // every section 9 key, even when no chunk has it
  const auto& progress = status["progress"];
  CHECK(progress["rows_done"] == 1500);
  CHECK(progress["rows_total_estimate"] == 3000);
  // 1,500 rows in about 100 s (the seconds of starting the host process on top).
  CHECK(progress["rows_per_second"].get<double>() == Approx(15).epsilon(0.1));
  REQUIRE(progress["eta_seconds"].is_number());
  CHECK(progress["eta_seconds"].get<double>() == Approx(100).epsilon(0.1));
  CHECK(progress["throttled"] == true);
  REQUIRE(status["workers"].size() == 2);
  CHECK(status["workers"][0] == json({{"id", "box:1:1"},
                                      {"host", "box"},
                                      {"pid", 1111},
                                      {"chunk", 2},
                                      {"last_seen", "2026-12-01T15:04:05Z"},
                                      {"throttled", true},
                                      {"rows_done", 0},
                                      {"batches", 0}}));
  CHECK(status["workers"][1]["id"] == "box:2:1");
  CHECK(status["workers"][1]["chunk"].is_null());  // its lease ran out
  CHECK(status["workers"][1]["last_seen"] == "2026-12-01T15:00:00Z");

  auto text = run_host({"status", id, "--db", db});
  INFO(text.output);
  CHECK(text.exit_code == 0);
  CHECK(mentions(text.output, "run " + id + " (fixture, batch): running"));
  CHECK(mentions(text.output, "1,500 of ~3,000 rows (50.0%), "));
  CHECK(mentions(text.output, "; patched 15, protected 2, review 1, errors 1, throttled"));
  CHECK(mentions(text.output, "box:1:1  pid 1111 on box, chunk 2, last seen 2026-12-01T15:04:05Z"));
  CHECK(mentions(text.output, "box:2:1  pid 2222 on box, no chunk"));
}

TEST_CASE("host status: a finished run reads runs.stats, an unknown one is a usage error",
          "[e2e][run_control]") {
  auto db = fresh_database();
  auto missing = run_host({"status", "8d3c1f1e-0000-4000-8000-000000000000", "--db", db});
  CHECK(missing.exit_code == 2);  // not even a ledger yet
  CHECK(mentions(missing.output, "no run"));

  create_ledger(db);
  auto id = insert_run(db, "succeeded", 50,
                       R"('{"scanned": 2000, "patched": 7, "protected": 0, "inserted": 0,
                         "review": 0, "errors": 0, "audit_events": 0, "ids_mapped": 0}')");
  sql(db, "UPDATE host_ledger.runs SET finished_at = started_at + interval '40 seconds'");
  // A chunk's stats from a batch whose count the run's end corrected: runs.stats wins.
  insert_chunk(db, id, 1, 1200, true, R"({"scanned": 1990})");
  insert_chunk(db, id, 2, 0, true, "{}");
  insert_worker(db, id, "box:1:1", 1111, true, "2026-12-01 15:04:05+00");
  auto status = status_json(db, id);
  CHECK(status["status"] == "succeeded");
  CHECK(status["stats"]["scanned"] == 2000);
  CHECK(status["stats"]["patched"] == 7);
  CHECK(status["progress"]["rows_done"] == 2000);
  // The estimate was low; what was done is the better figure.
  CHECK(status["progress"]["rows_total_estimate"] == 2000);
  CHECK(status["progress"]["rows_per_second"].get<double>() == Approx(50));  // over 40 s
  CHECK(status["progress"]["eta_seconds"] == 0);
  CHECK(status["progress"]["throttled"] == false);  // a stale flag of a finished run
  CHECK(status["workers"][0]["chunk"].is_null());
  CHECK_FALSE(status["finished_at"].is_null());

  auto unknown = run_host({"status", "8d3c1f1e-0000-4000-8000-000000000000", "--db", db});
  CHECK(unknown.exit_code == 2);
  CHECK(message_lines(unknown.output).size() == 1);
  CHECK(run_host({"status", "not-a-uuid", "--json", "--db", db}).exit_code == 2);
}

TEST_CASE("host pause and cancel with no process alive set the status at once",
          "[e2e][run_control]") {
  auto db = fresh_database();
  auto id = half_done_run(db);
  // Upper case: the run id is matched like everywhere else, case aside.
  std::string upper = id;
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  auto paused = run_host({"pause", upper, "--db", db});
  INFO(paused.output);
  CHECK(paused.exit_code == 0);
  CHECK(mentions(paused.output, "run " + id + " paused"));
  CHECK(mentions(paused.output, "host resume " + id));
  CHECK(run_column(db, id, "status") == "paused");
  CHECK(run_column(db, id, "stop_request") == "NULL");
  CHECK(value(db,
              "SELECT count(*) FROM host_ledger.chunks WHERE lease_owner IS NOT NULL "
              "OR lease_until IS NOT NULL") == "0");

  auto status = status_json(db, id);
  CHECK(status["status"] == "paused");
  CHECK(status["progress"]["rows_done"] == 1500);  // still from the chunks
  CHECK(status["progress"]["eta_seconds"].is_null());
  CHECK(status["progress"]["throttled"] == false);
  CHECK(status["workers"][0]["chunk"].is_null());

  auto again = run_host({"pause", id, "--db", db});
  CHECK(again.exit_code == 0);
  CHECK(mentions(again.output, "already paused"));

  auto cancelled = run_host({"cancel", id, "--db", db});
  INFO(cancelled.output);
  CHECK(cancelled.exit_code == 0);
  CHECK(mentions(cancelled.output, "run " + id + " cancelled"));
  CHECK(mentions(cancelled.output, "host revert " + id));
  CHECK(run_column(db, id, "status") == "cancelled");
  CHECK(run_column(db, id, "finished_at IS NOT NULL") == "t");
  CHECK(run_column(db, id, "stats->>'scanned'") == "1500");
  CHECK(run_column(db, id, "stats->>'patched'") == "15");
  status = status_json(db, id);
  CHECK(status["status"] == "cancelled");
  CHECK(status["progress"]["rows_done"] == 1500);
  CHECK(status["progress"]["eta_seconds"].is_null());

  for (const char* command : {"pause", "cancel"}) {
    INFO(command);
    auto refused = run_host({command, id, "--db", db});
    CHECK(refused.exit_code == 2);
    CHECK(mentions(refused.output, "already ended (cancelled)"));
  }
}

TEST_CASE("host pause and cancel of a run a process works on record the request",
          "[e2e][run_control]") {
  auto db = fresh_database();
  auto id = half_done_run(db);
  SECTION("a worker holds the run's worker lock") {
    host::Database worker(db);
    worker.exec("SELECT pg_advisory_lock_shared(hashtext('host run worker'), hashtext(lower($1)))",
                {id});
    auto paused = run_host({"pause", id, "--db", db});
    INFO(paused.output);
    CHECK(paused.exit_code == 0);
    CHECK(mentions(paused.output, "pause of run " + id + " recorded"));
    CHECK(run_column(db, id, "status") == "running");
    CHECK(run_column(db, id, "stop_request") == "pause");
    CHECK(value(db, "SELECT count(*) FROM host_ledger.chunks WHERE lease_owner IS NOT NULL") ==
          "2");
    CHECK(status_json(db, id)["stop_request"] == "pause");

    auto cancelled = run_host({"cancel", id, "--db", db});
    CHECK(cancelled.exit_code == 0);
    CHECK(mentions(cancelled.output, "cancel of run " + id + " recorded"));
    CHECK(run_column(db, id, "status") == "running");
    CHECK(run_column(db, id, "stop_request") == "cancel");

    // A pause never turns a cancel back into a pause.
    auto pause_after = run_host({"pause", id, "--db", db});
    CHECK(pause_after.exit_code == 0);
    CHECK(run_column(db, id, "stop_request") == "cancel");
  }
  SECTION("the owner holds the run lock of a paused run") {
    sql(db, "UPDATE host_ledger.runs SET status = 'paused'");
    auto owner = host::RunLock::try_acquire(db, id);
    REQUIRE(owner);
    auto cancelled = run_host({"cancel", id, "--db", db});
    INFO(cancelled.output);
    CHECK(cancelled.exit_code == 0);
    CHECK(run_column(db, id, "status") == "paused");
    CHECK(run_column(db, id, "stop_request") == "cancel");
    owner.reset();
    REQUIRE(advisory_locks_held(db) == "0");
    // Once nobody is left, a cancel ends it.
    CHECK(run_host({"cancel", id, "--db", db}).exit_code == 0);
    CHECK(run_column(db, id, "status") == "cancelled");
  }
}

TEST_CASE("host pause and cancel refuse unknown and ended runs", "[e2e][run_control]") {
  auto db = fresh_database();
  for (const char* command : {"pause", "cancel"}) {
    INFO(command);
    auto no_ledger = run_host({command, "8d3c1f1e-0000-4000-8000-000000000000", "--db", db});
    CHECK(no_ledger.exit_code == 2);
    CHECK(mentions(no_ledger.output, "no run"));
  }
  create_ledger(db);
  for (const char* ended : {"succeeded", "failed", "verify_failed", "cancelled"}) {
    auto id = insert_run(db, ended, 10);
    for (const char* command : {"pause", "cancel"}) {
      INFO(ended << " " << command);
      auto refused = run_host({command, id, "--db", db});
      CHECK(refused.exit_code == 2);
      CHECK(message_lines(refused.output).size() == 1);
      CHECK(run_column(db, id, "status") == ended);
      CHECK(run_column(db, id, "stop_request") == "NULL");
    }
  }
  auto unknown = run_host({"cancel", "8d3c1f1e-0000-4000-8000-000000000000", "--db", db});
  CHECK(unknown.exit_code == 2);
  CHECK(mentions(unknown.output, "no run 8d3c1f1e-0000-4000-8000-000000000000"));
}

TEST_CASE("host status of a real batch run: rows_done equals stats.scanned at the end",
          "[e2e][run_control]") {
  auto db = fresh_database();
  sql(db,
      "CREATE TABLE t (id int PRIMARY KEY, status text); "
      "INSERT INTO t SELECT g, NULL FROM generate_series(1, 250) g");
  auto recipe = recipe_file("status_real", R"lua(
return {
  name = "status-real",
  table = "t",
  writes = { t = { "status" } },
  each = function(row) patch_if_empty(row, "status", "Active") end,
}
)lua");
  auto run = run_recipe(db, recipe, {"--commit", "batch", "--batch-size", "100"});
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  auto status = status_json(db, run.run_id);
  CHECK(status["status"] == "succeeded");
  CHECK(status["stats"]["scanned"] == 250);
  CHECK(status["stats"]["patched"] == 250);
  CHECK(status["progress"]["rows_done"] == 250);
  CHECK(status["progress"]["rows_total_estimate"].get<long long>() >= 250);
  CHECK(status["progress"]["eta_seconds"] == 0);
  // Ended: nothing to stop.
  CHECK(run_host({"pause", run.run_id, "--db", db}).exit_code == 2);
  CHECK(run_host({"cancel", run.run_id, "--db", db}).exit_code == 2);
}
