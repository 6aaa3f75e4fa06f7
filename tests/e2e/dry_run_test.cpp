// End to end: --dry-run changes nothing (ledger included), reports exactly what
// the real run then does; `host verify` tells whether anything is left to do.
#include <catch2/catch.hpp>

#include "tests/e2e/e2e_helpers.hpp"

using namespace host::testing;
using namespace host::testing::e2e;
using nlohmann::json;

namespace {

const char* const k_fixture = R"sql(
CREATE TABLE projects (id int PRIMARY KEY, status text, legacy text, uuid uuid, owner text);
INSERT INTO projects VALUES
  (1, NULL, 'P-1', NULL, NULL), (2, '  ', 'P-2', NULL, 'Ann'), (3, 'Done', 'P-3', NULL, NULL),
  (4, NULL, NULL, NULL, 'Bob'), (5, 'Open', 'P-5', NULL, 'Cy');
CREATE TABLE owners (name text PRIMARY KEY, note text);
INSERT INTO owners VALUES ('Ann', 'existing');
)sql";

// Patches, id mappings, inserts, audit events and a review item: every kind of effect.
const char* const k_recipe = R"lua(
return {
  name = "dry-run-subject",
  table = "projects",
  writes = { projects = { "status", "uuid" }, owners = { "name", "note" } },
  each = function(row)
    patch_if_empty(row, "status", "Active", { reason = "default status" })
    patch_if_empty(row, "uuid", map_id("projects", row.legacy))
    if row.owner then insert_if_absent("owners", { name = row.owner, note = "from projects" }) end
    audit("visited", { id = row.id })
    if row.id == 5 then review(row, "status", "Closed?", "looks finished") end
  end,
  verify = function()
    expect_count("projects", { status = EMPTY }, 0)
  end,
}
)lua";

}  // namespace

TEST_CASE("a dry run leaves every table and the ledger exactly as they were", "[e2e][dryrun]") {
  auto db = fresh_database();
  sql(db, k_fixture);
  auto recipe = recipe_file("dry_subject", k_recipe);

  SECTION("on a database without a ledger") {
    auto before = dump_database(db);
    auto dry = run_recipe(db, recipe, {"--dry-run"});
    INFO(dry.output);
    REQUIRE(dry.exit_code == 0);
    CHECK(dry.report["mode"] == "dry-run");
    CHECK(dry.stat("patched") > 0);
    CHECK(dump_database(db) == before);
  }
  SECTION("on a database whose ledger already holds runs") {
    auto other = recipe_file("dry_other", R"lua(
return {
  name = "other-recipe",
  table = "projects",
  writes = { projects = { "status" } },
  each = function(row)
    if row.id == 4 then patch_if_empty(row, "status", "Paused") map_id("projects", "seed") end
  end,
}
)lua");
    REQUIRE(run_recipe(db, other).exit_code == 0);
    auto before = dump_database(db);
    REQUIRE(before.find("== host_ledger.runs") != std::string::npos);
    auto dry = run_recipe(db, recipe, {"--dry-run"});
    INFO(dry.output);
    REQUIRE(dry.exit_code == 0);
    CHECK(dump_database(db) == before);
  }
  SECTION("in batch commit mode, across several batches") {
    auto before = dump_database(db);
    auto dry = run_recipe(db, recipe, {"--dry-run", "--commit", "batch", "--batch-size", "2"});
    INFO(dry.output);
    REQUIRE(dry.exit_code == 0);
    CHECK(dry.stat("scanned") == 5);
    CHECK(dump_database(db) == before);
  }
}

TEST_CASE("a dry run reports exactly what the real run right after it does", "[e2e][dryrun]") {
  auto db = fresh_database();
  sql(db, k_fixture);
  auto recipe = recipe_file("dry_compare", k_recipe);

  auto dry = run_recipe(db, recipe, {"--dry-run"});
  INFO(dry.output);
  REQUIRE(dry.exit_code == 0);
  auto real = run_recipe(db, recipe);
  INFO(real.output);
  REQUIRE(real.exit_code == 0);

  CHECK(dry.report["mode"] == "dry-run");
  CHECK(real.report["mode"] == "commit");
  CHECK(dry.report["status"] == "succeeded");
  CHECK(real.report["status"] == "succeeded");
  CHECK(dry.report["stats"] == real.report["stats"]);
  CHECK(changes_by_column(dry.report) == changes_by_column(real.report));
  CHECK(dry.report["review"] == real.report["review"]);
  CHECK(dry.report["audit"].size() == real.report["audit"].size());
  if (dry.report.contains("inserts")) CHECK(dry.report["inserts"] == real.report["inserts"]);

  // The numbers themselves, so that "equal" is not "equally empty".
  CHECK(real.stat("scanned") == 5);
  CHECK(real.stat("patched") == 7);    // status of 1, 2, 4; uuid of 1, 2, 3, 5
  CHECK(real.stat("protected") == 2);  // status of 3 and 5
  CHECK(real.stat("inserted") == 2);   // owners Bob and Cy
  CHECK(real.stat("ids_mapped") == 4);
  CHECK(real.stat("audit_events") == 5);
  CHECK(real.stat("review") == 1);
  CHECK(changes_by_column(real.report) == json({{"projects.status", 3}, {"projects.uuid", 4}}));
  CHECK(rows(db, "SELECT id, status FROM projects ORDER BY id") ==
        std::vector<std::string>{"1|Active", "2|Active", "3|Done", "4|Active", "5|Open"});
  CHECK(rows(db, "SELECT name, note FROM owners ORDER BY name") ==
        std::vector<std::string>{"Ann|existing", "Bob|from projects", "Cy|from projects"});

  SECTION("a second real run changes nothing") {
    auto state = dump_user_tables(db);
    auto again = run_recipe(db, recipe);
    INFO(again.output);
    REQUIRE(again.exit_code == 0);
    CHECK(again.stat("patched") == 0);
    CHECK(again.stat("inserted") == 0);
    CHECK(again.stat("ids_mapped") == 0);
    CHECK(dump_user_tables(db) == state);
  }
}

TEST_CASE("host verify: exit 3 while changes are left, 0 once the run is done", "[e2e][dryrun]") {
  auto db = fresh_database();
  sql(db, k_fixture);
  auto recipe = recipe_file("verify_subject", k_recipe);
  auto before = dump_database(db);

  auto pending = run_host({"verify", recipe, "--db", db});
  INFO(pending.output);
  CHECK(pending.exit_code == 3);
  CHECK(dump_database(db) == before);

  auto real = run_recipe(db, recipe);
  INFO(real.output);
  REQUIRE(real.exit_code == 0);

  auto done = run_host({"verify", recipe, "--db", db});
  INFO(done.output);
  CHECK(done.exit_code == 0);
}

TEST_CASE("a failed verify expectation: exit 3, status verify_failed, listed in the report",
          "[e2e][dryrun]") {
  auto db = fresh_database();
  sql(db, k_fixture);
  auto recipe = recipe_file("verify_fails", R"lua(
return {
  name = "verify-fails",
  table = "projects",
  writes = { projects = { "status" } },
  each = function(row) patch_if_empty(row, "status", "Active") end,
  verify = function()
    expect_count("projects", { status = EMPTY }, 0)
    expect(count("projects", { status = "Done" }) == 2, "two projects are done")
  end,
}
)lua");
  auto run = run_recipe(db, recipe);
  INFO(run.output);
  CHECK(run.exit_code == 3);
  CHECK(run.report["status"] == "verify_failed");
  REQUIRE(run.report["verify"].is_array());
  bool listed = false;
  for (const auto& check : run.report["verify"])
    if (check["check"] == "two projects are done") listed = check["ok"] == false;
  CHECK(listed);
}
