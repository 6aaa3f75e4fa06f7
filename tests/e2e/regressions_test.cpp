// End to end: bugs found by running the shipped recipe library, each pinned by
// the smallest recipe that showed it.
#include <catch2/catch.hpp>

#include "tests/e2e/e2e_helpers.hpp"

using namespace host::testing;
using namespace host::testing::e2e;
using nlohmann::json;

TEST_CASE("writes to a table keyed by uuid (no min/max aggregate for uuid)", "[e2e][regression]") {
  auto db = fresh_database();
  sql(db, R"sql(
CREATE TABLE pages (id uuid PRIMARY KEY, title text, status text);
INSERT INTO pages VALUES ('5a1e0c3d-7b2f-4e6a-9c8d-1b2a3f4e5d61', 'Kept', NULL),
                         ('5a1e0c3d-7b2f-4e6a-9c8d-1b2a3f4e5d62', NULL, 'Done');
)sql");
  auto recipe = recipe_file("uuid_key", R"lua(
return {
  name = "uuid-key",
  table = "pages",
  writes = { pages = { "id", "title", "status" } },
  each = function(row)
    patch_if_empty(row, "status", "Open")
    fill_from("pages", { id = row.id, title = "Untitled" })
  end,
}
)lua");
  auto run = run_recipe(db, recipe);
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  CHECK(rows(db, "SELECT title, status FROM pages ORDER BY id") ==
        std::vector<std::string>{"Kept|Open", "Untitled|Done"});
  CHECK(run.stat("patched") == 2);
  CHECK(run.stat("protected") == 2);
}

TEST_CASE("a review item keeps the Lua type of its value", "[e2e][regression]") {
  auto db = fresh_database();
  sql(db, "CREATE TABLE phases (id int PRIMARY KEY, project_id int, label text); "
          "INSERT INTO phases VALUES (1, NULL, NULL);");
  auto recipe = recipe_file("review_type", R"lua(
return {
  name = "review-type",
  table = "phases",
  writes = { phases = { "project_id", "label" } },
  each = function(row)
    patch_if_empty(row, "project_id", 7, { confidence = "medium", reason = "guess" })
    patch_if_empty(row, "label", "seven", { confidence = "low" })
  end,
}
)lua");
  auto run = run_recipe(db, recipe);
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  REQUIRE(run.report["review"].size() == 2);
  CHECK(run.report["review"][0]["value"] == 7);
  CHECK(run.report["review"][1]["value"] == "seven");
}

TEST_CASE("an error raised while the recipe file loads is reported, not lost", "[e2e][regression]") {
  auto db = fresh_database();
  auto recipe = recipe_file("top_level_error", R"lua(
local settings = nil
local since = settings.since
return { name = "never", table = "x", each = function() end }
)lua");
  auto run = run_recipe(db, recipe);
  INFO(run.output);
  CHECK(run.exit_code == 1);
  CHECK(run.output.find("top_level_error.lua:3:") != std::string::npos);
  CHECK(run.output.find("json.exception") == std::string::npos);
}

TEST_CASE("audit() inside verify is listed with the run's other events", "[e2e][regression]") {
  auto db = fresh_database();
  sql(db, "CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items VALUES (1), (2);");
  auto recipe = recipe_file("verify_audit", R"lua(
return {
  name = "verify-audit",
  table = "items",
  writes = {},
  each = function(row) audit("seen", { id = row.id }) end,
  verify = function() audit("total", { items = count("items") }) end,
}
)lua");
  auto run = run_recipe(db, recipe);
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  CHECK(run.stat("audit_events") == 3);
  REQUIRE(run.report["audit"].size() == 3);
  CHECK(run.report["audit"][2]["event"] == "total");
  CHECK(run.report["audit"][2]["data"]["items"] == 2);
}
