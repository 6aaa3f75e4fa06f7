// End to end: never overwrite, enforced in SQL. A value written by someone else
// between the recipe's read and its write survives, in both commit modes.
#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "tests/e2e/e2e_helpers.hpp"

using namespace host::testing;
using namespace host::testing::e2e;

namespace {

struct WriterOutcome {
  bool saw_recipe_sleeping = false;
  std::string error;
};

// Waits until the recipe is inside its sleep (so its scan has read row 3 as
// empty), then sets row 3 in autocommit, as a person would.
WriterOutcome write_while_recipe_sleeps(
    const std::string& conninfo,
    const std::string& statement = "UPDATE t SET status = 'Human' WHERE id = 3") {
  WriterOutcome outcome;
  try {
    host::Database database(conninfo);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      auto sleeping = database.exec(
          "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND "
          "pid <> pg_backend_pid() AND state = 'active' AND query LIKE '%sleep_a_while%'");
      if (std::string(sleeping[0][0].c_str()) != "0") {
        outcome.saw_recipe_sleeping = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (!outcome.saw_recipe_sleeping) std::this_thread::sleep_for(std::chrono::milliseconds(500));
    database.exec(statement);
  } catch (const std::exception& e) {
    outcome.error = e.what();
  }
  return outcome;
}

void check_concurrent_value_survives(const std::string& commit_mode) {
  auto db = fresh_database();
  sql(db,
      "CREATE TABLE t (id int PRIMARY KEY, status text); "
      "INSERT INTO t SELECT g, NULL FROM generate_series(1, 5) g; "
      // query() calls only stable functions: pg_sleep is volatile, so it hides here.
      "CREATE FUNCTION sleep_a_while() RETURNS void STABLE LANGUAGE sql AS "
      "'SELECT pg_sleep(1.5)'");
  auto recipe = recipe_file("concurrent_" + commit_mode, R"lua(
return {
  name = "concurrent-writer",
  table = "t",
  commit = ")lua" + commit_mode + R"lua(",
  writes = { t = { "status" } },
  each = function(row)
    if row.id == 1 then query("select sleep_a_while()") end
    patch_if_empty(row, "status", "Auto")
    audit("seen", { id = row.id, status_when_read = row.status or "nil" })
  end,
}
)lua");

  WriterOutcome writer;
  std::thread thread([&] { writer = write_while_recipe_sleeps(db); });
  auto run = run_recipe(db, recipe);
  thread.join();

  INFO("commit = " << commit_mode << "\n" << run.output);
  REQUIRE(writer.error.empty());
  CHECK(writer.saw_recipe_sleeping);
  REQUIRE(run.exit_code == 0);
  // The recipe read row 3 while it was still empty...
  bool read_empty = false;
  for (const auto& event : run.report["audit"])
    if (event["data"]["id"] == 3) read_empty = event["data"]["status_when_read"] == "nil";
  CHECK(read_empty);
  // ...and still did not overwrite the person's value.
  CHECK(rows(db, "SELECT id, status FROM t ORDER BY id") ==
        std::vector<std::string>{"1|Auto", "2|Auto", "3|Human", "4|Auto", "5|Auto"});
  CHECK(run.stat("scanned") == 5);
  CHECK(run.stat("patched") == 4);
  CHECK(run.stat("protected") == 1);
  // The ledger does not claim a change it did not make.
  CHECK(value(db,
              "SELECT count(*) FROM host_ledger.changes l, jsonb_array_elements(l.keys) k "
              "WHERE k->>0 = '3'") == "0");
}

}  // namespace

TEST_CASE("a concurrent writer's value survives an atomic run", "[e2e][concurrency]") {
  check_concurrent_value_survives("atomic");
}

TEST_CASE("a concurrent writer's value survives a batch run", "[e2e][concurrency]") {
  check_concurrent_value_survives("batch");
}

// The batch's UPDATE finds a scanned row by the place (ctid) the scan saw it at.
// A row another session updated since has moved: it is found again by its key,
// and the cell that is still empty is filled and logged; revert empties it and
// keeps the other session's value.
TEST_CASE("a row another session moved after the scan is still filled, and reverted exactly",
          "[e2e][concurrency]") {
  for (const char* mode : {"atomic", "batch"}) {
    DYNAMIC_SECTION(mode) {
      auto db = fresh_database();
      sql(db,
          "CREATE TABLE t (id int PRIMARY KEY, status text, note text); "
          "INSERT INTO t SELECT g, NULL, NULL FROM generate_series(1, 5) g; "
          "CREATE FUNCTION sleep_a_while() RETURNS void STABLE LANGUAGE sql AS "
          "'SELECT pg_sleep(1.5)'");
      auto recipe = recipe_file(std::string("moved_") + mode, std::string(R"lua(
return {
  name = "moved-row", table = "t", commit = ")lua") + mode + R"lua(",
  writes = { t = { "status" } },
  each = function(row)
    if row.id == 1 then query("select sleep_a_while()") end
    patch_if_empty(row, "status", "Auto")
  end,
}
)lua");
      WriterOutcome writer;
      std::thread thread([&] {
        writer = write_while_recipe_sleeps(db, "UPDATE t SET note = 'person' WHERE id = 3");
      });
      auto run = run_recipe(db, recipe);
      thread.join();
      INFO(run.output);
      REQUIRE(writer.error.empty());
      CHECK(writer.saw_recipe_sleeping);
      REQUIRE(run.exit_code == 0);
      CHECK(rows(db, "SELECT id, status, coalesce(note, '-') FROM t ORDER BY id") ==
            std::vector<std::string>{"1|Auto|-", "2|Auto|-", "3|Auto|person", "4|Auto|-",
                                     "5|Auto|-"});
      CHECK(run.stat("patched") == 5);
      CHECK(value(db,
                  "SELECT string_agg(k->>0, ',' ORDER BY (k->>0)::int) FROM host_ledger.changes "
                  "l, jsonb_array_elements(l.keys) k") == "1,2,3,4,5");
      auto reverted = run_host({"revert", run.run_id, "--db", db});
      INFO(reverted.output);
      REQUIRE(reverted.exit_code == 0);
      CHECK(rows(db, "SELECT id, coalesce(status, '-'), coalesce(note, '-') FROM t ORDER BY id") ==
            std::vector<std::string>{"1|-|-", "2|-|-", "3|-|person", "4|-|-", "5|-|-"});
    }
  }
}
