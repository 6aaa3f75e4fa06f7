// End to end: the batch's UPDATE meets a row the application changes while the
// UPDATE waits for it. The row is updated as it is then (PostgreSQL rechecks the
// statement's conditions on its newest version); what the ledger says the run
// changed must be what it changed, so that `host revert` gives back the
// application's value, not the empty cell the run saw.
#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "tests/e2e/e2e_helpers.hpp"

using namespace host::testing;
using namespace host::testing::e2e;

TEST_CASE("concurrent: a cell filled while the batch's UPDATE waits is neither written nor logged",
          "[live][e2e]") {
  auto db = fresh_database();
  sql(db, R"sql(
CREATE TABLE t (id int PRIMARY KEY, a text, b text);
INSERT INTO t SELECT g, NULL, NULL FROM generate_series(1, 5000) g;
ANALYZE t;
)sql");
  auto recipe = recipe_file("concurrent_patch", R"lua(
return {
  name = "both", table = "t", commit = "batch", batch_size = 1000,
  writes = { t = { "a", "b" } },
  each = function(row)
    patch_if_empty(row, "a", "run a")
    patch_if_empty(row, "b", "run b")
  end,
}
)lua");
  // The application has changed row 5 and not committed yet.
  host::Database application(db);
  application.exec("BEGIN");
  application.exec("UPDATE t SET b = 'application' WHERE id = 5");

  HostRun run;
  std::thread runner([&] { run = run_recipe(db, recipe, {"--lock-timeout", "20000"}); });
  // The run's UPDATE waits for row 5; then the application commits.
  bool waited = false;
  for (int i = 0; i < 300 && !waited; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    waited = value(db,
                   "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                   "AND query LIKE '%UPDATE%' AND pid <> pg_backend_pid()") != "0";
  }
  application.exec("COMMIT");
  runner.join();
  INFO(run.output);
  REQUIRE(waited);
  REQUIRE(run.exit_code == 0);
  CHECK(value(db, "SELECT a || ' ' || b FROM t WHERE id = 5") == "run a application");
  CHECK(value(db, "SELECT count(*) FROM t WHERE a = 'run a' AND (b = 'run b' OR id = 5)") ==
        "5000");
  CHECK(run.stat("patched") == 9999);
  CHECK(value(db,
              "SELECT string_agg(column_name || ':' || jsonb_array_length(keys), ',' ORDER BY "
              "column_name) FROM (SELECT column_name, jsonb_agg(k) AS keys FROM "
              "host_ledger.changes, jsonb_array_elements(keys) k WHERE run_id = '" +
                  run.run_id + "' GROUP BY 1) s") == "a:5000,b:4999");

  auto reverted = run_host({"revert", run.run_id, "--db", db});
  INFO(reverted.output);
  REQUIRE(reverted.exit_code == 0);
  CHECK(value(db, "SELECT coalesce(a, '-') || ' ' || coalesce(b, '-') FROM t WHERE id = 5") ==
        "- application");
  CHECK(value(db, "SELECT count(*) FROM t WHERE a IS NOT NULL OR (b IS NOT NULL AND id <> 5)") ==
        "0");
}
