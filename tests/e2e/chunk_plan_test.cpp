// End to end: the chunks a batch run plans. Each is twenty batches of rows, the
// last one what is left, their estimates add up to the rows there are, and a key
// space longer than one planning statement's window is planned without a gap or
// an overlap, for one key column and for two, whether the boundaries are found by
// steps through the key's index, by windows of numbered rows, or by both.
#include <catch2/catch.hpp>

#include "tests/e2e/e2e_helpers.hpp"

using namespace host::testing;
using namespace host::testing::e2e;

namespace {

const char* const k_recipe = R"lua(
return {
  name = "plan", table = "t", commit = "batch", batch_size = 3,
  writes = { t = { "v" } },
  each = function(row) patch_if_empty(row, "v", "x") end,
}
)lua";

}  // namespace

TEST_CASE("chunk plan: twenty batches a chunk, the rest in the last, beyond one window",
          "[e2e][workers]") {
  auto db = fresh_database();
  // 100 chunks of 60 rows make a planning window: 12,345 rows need three.
  SECTION("one key column") {
    sql(db, R"sql(
CREATE TABLE t (id int PRIMARY KEY, v text);
INSERT INTO t SELECT g * 3, NULL FROM generate_series(1, 12345) g;
)sql");
  }
  SECTION("two key columns") {
    sql(db, R"sql(
CREATE TABLE t (a int, b text, v text, PRIMARY KEY (a, b));
INSERT INTO t SELECT g % 7, 'k' || g, NULL FROM generate_series(1, 12345) g;
)sql");
  }
  std::vector<std::vector<std::string>> environments = {{}};
#ifdef HOST_FAULT_INJECTION
  // The third step counts as slow: windows plan the rest.
  environments.push_back({"HOST_FAIL_AT=slow_chunk_plan_step:3"});
#endif
  for (const auto& environment : environments) {
    INFO((environment.empty() ? "steps" : environment.front()));
    sql(db, "UPDATE t SET v = NULL");
    auto run = run_recipe(db, recipe_file("plan", k_recipe), {}, environment);
    INFO(run.output);
    REQUIRE(run.exit_code == 0);
    CHECK(run.stat("patched") == 12345);
    std::string chunks = "host_ledger.chunks WHERE run_id = '" + run.run_id + "'";
    CHECK(value(db, "SELECT count(*) FROM " + chunks) == "206");
    CHECK(value(db, "SELECT sum(rows_estimate) FROM " + chunks) == "12345");
    CHECK(value(db, "SELECT count(*) FROM " + chunks + " AND rows_estimate = 60") == "205");
    CHECK(value(db, "SELECT rows_estimate FROM " + chunks + " ORDER BY chunk DESC LIMIT 1") ==
          "45");
    // Each chunk starts where the one before ends.
    CHECK(value(db, "SELECT count(*) FROM (SELECT lower_key, lag(upper_key) OVER (ORDER BY chunk) "
                    "AS before, chunk FROM " + chunks + ") s WHERE chunk > 1 AND "
                    "lower_key IS DISTINCT FROM before") == "0");
    CHECK(value(db, "SELECT count(*) FROM " + chunks + " AND done AND batches = 20") == "205");
    CHECK(value(db, "SELECT batches FROM " + chunks + " ORDER BY chunk DESC LIMIT 1") == "15");
  }
}
