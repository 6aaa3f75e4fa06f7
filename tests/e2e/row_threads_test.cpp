// End to end: each row's `each` runs in a coroutine, and a row whose `each`
// returned hands its coroutine to the next row. Rows that wait for a read, rows
// that fail and rows that reuse a coroutine must each still get their own answer
// and write their own values.
#include <catch2/catch.hpp>

#include "tests/e2e/e2e_helpers.hpp"

using namespace host::testing;
using namespace host::testing::e2e;

TEST_CASE("row threads: reused, waiting and failed rows each keep their own values",
          "[e2e][primitives]") {
  auto db = fresh_database();
  sql(db, R"sql(
CREATE TABLE other (id int PRIMARY KEY, label text NOT NULL);
INSERT INTO other SELECT g, 'label ' || g FROM generate_series(1, 300) g;
CREATE TABLE t (id int PRIMARY KEY, other_id int NOT NULL, v text);
INSERT INTO t SELECT g, 301 - g, NULL FROM generate_series(1, 250) g;
)sql");
  auto recipe = recipe_file("row_threads", R"lua(
return {
  name = "row-threads", table = "t", commit = "batch", batch_size = 100, on_error = "skip",
  writes = { t = { "v" } },
  each = function(row)
    local mine = "plain " .. row.id
    if row.id % 3 == 0 then
      mine = read("other", { id = row.other_id }).label .. " for " .. row.id
    end
    if row.id % 5 == 0 then error("boom " .. row.id) end
    patch_if_empty(row, "v", mine)
  end,
}
)lua");
  auto run = run_recipe(db, recipe);
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  CHECK(run.stat("errors") == 50);
  CHECK(run.stat("patched") == 200);
  CHECK(value(db,
              "SELECT count(*) FROM t WHERE v IS DISTINCT FROM CASE WHEN id % 5 = 0 THEN NULL "
              "WHEN id % 3 = 0 THEN 'label ' || (301 - id) || ' for ' || id "
              "ELSE 'plain ' || id END") == "0");
}
