// End to end: `host revert RUN_ID` undoes a committed run from its ledger, and
// leaves alone (and reports) anything changed since the run.
#include <catch2/catch.hpp>

#include "tests/e2e/e2e_helpers.hpp"

using namespace host::testing;
using namespace host::testing::e2e;
using nlohmann::json;

namespace {

const char* const k_fixture = R"sql(
CREATE TABLE projects (id int PRIMARY KEY, status text, phase text, budget numeric, uuid uuid,
                       score float8, seen_at timestamptz, meta jsonb);
INSERT INTO projects VALUES
  (1, NULL, 'v1', NULL, NULL, NULL, NULL, NULL), (2, '  ', 'v1', 10.50, NULL, 0.1, NULL, '{}'),
  (3, 'Done', 'other', NULL, NULL, NULL, NULL, NULL), (4, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (5, 'Zoë', 'v1', NULL, NULL, NULL, '2020-01-01 00:00:00+00', NULL);
CREATE TABLE owners (id int PRIMARY KEY, name text, note text);
INSERT INTO owners VALUES (1, 'Ann', NULL);
CREATE TABLE contacts (id int PRIMARY KEY, email text, city text);
INSERT INTO contacts VALUES (2, 'keep@x', NULL);
)sql";

// patch_if_empty, patch_if, insert_if_absent, fill_from (insert and fill), map_id.
const char* const k_recipe = R"lua(
return {
  name = "revert-subject",
  table = "projects",
  writes = {
    projects = { "status", "phase", "budget", "uuid", "score", "seen_at", "meta" },
    owners = "*",
    contacts = "*",
  },
  each = function(row)
    patch_if_empty(row, "status", "Active – ✓")
    patch_if(row, "phase", "v1", "v2")
    patch_if_empty(row, "budget", "12345678901234567890.123")
    patch_if_empty(row, "uuid", map_id("projects", "legacy-" .. row.id))
    patch_if_empty(row, "score", 1 / 3)
    patch_if_empty(row, "seen_at", "2024-01-02T03:04:05.123456Z")
    patch_if_empty(row, "meta", { source = "recipe", n = 1.5 })
    insert_if_absent("owners", { id = row.id, name = "Owner " .. row.id })
    fill_from("contacts", { id = row.id, email = "c" .. row.id .. "@x", city = "Oslo" })
  end,
}
)lua";

host::ProcessResult revert(const std::string& db, const std::string& run_id,
                           const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args = {"revert", run_id, "--db", db};
  args.insert(args.end(), extra.begin(), extra.end());
  return run_host(args);
}

// The JSON document printed by `host revert --json` (the output may carry log lines first).
json revert_json(const std::string& output) {
  auto start = output.find('{');
  auto end = output.rfind('}');
  if (start == std::string::npos || end == std::string::npos) return nullptr;
  return json::parse(output.substr(start, end - start + 1), nullptr, false);
}

}  // namespace

TEST_CASE("revert restores the exact prior state of patched cells and inserted rows",
          "[e2e][revert]") {
  auto db = fresh_database();
  sql(db, k_fixture);
  auto recipe = recipe_file("revert_subject", k_recipe);
  auto before = dump_user_tables(db);

  SECTION("atomic run") {
    auto run = run_recipe(db, recipe);
    INFO(run.output);
    REQUIRE(run.exit_code == 0);
    REQUIRE(run.stat("patched") > 0);
    REQUIRE(run.stat("inserted") > 0);
    REQUIRE(dump_user_tables(db) != before);

    auto undone = revert(db, run.run_id);
    INFO(undone.output);
    CHECK(undone.exit_code == 0);
    CHECK(dump_user_tables(db) == before);

    // A second revert must not undo anything that happened after the first.
    sql(db, "UPDATE projects SET status = 'Later' WHERE id = 1");
    auto state = dump_user_tables(db);
    auto twice = revert(db, run.run_id);
    INFO(twice.output);
    CHECK(twice.exit_code == 0);
    CHECK(dump_user_tables(db) == state);
  }
  SECTION("batch run over several batches") {
    auto run = run_recipe(db, recipe, {"--commit", "batch", "--batch-size", "2"});
    INFO(run.output);
    REQUIRE(run.exit_code == 0);
    REQUIRE(dump_user_tables(db) != before);
    auto undone = revert(db, run.run_id);
    INFO(undone.output);
    CHECK(undone.exit_code == 0);
    CHECK(dump_user_tables(db) == before);
  }
}

TEST_CASE("revert --dry-run changes nothing", "[e2e][revert]") {
  auto db = fresh_database();
  sql(db, k_fixture);
  auto recipe = recipe_file("revert_dry", k_recipe);
  auto run = run_recipe(db, recipe);
  INFO(run.output);
  REQUIRE(run.exit_code == 0);

  auto before = dump_database(db);
  auto dry = revert(db, run.run_id, {"--dry-run", "--json"});
  INFO(dry.output);
  CHECK(dry.exit_code == 0);
  CHECK(dump_database(db) == before);
  auto report = revert_json(dry.output);
  REQUIRE(report.is_object());
  CHECK(report["dry_run"] == true);
  CHECK(report["restored_cells"].get<long long>() == run.stat("patched"));
  CHECK(report["deleted_rows"].get<long long>() == run.stat("inserted"));
  CHECK(report["conflicts"] == 0);

  // The dry run did not mark the run reverted: the real revert still works.
  auto real = revert(db, run.run_id);
  INFO(real.output);
  CHECK(real.exit_code == 0);
  CHECK(value(db, "SELECT count(*) FROM owners") == "1");
}

TEST_CASE("revert leaves cells changed since the run alone, reports them, exits 5",
          "[e2e][revert]") {
  auto db = fresh_database();
  sql(db, k_fixture);
  auto recipe = recipe_file("revert_conflict", k_recipe);
  auto run = run_recipe(db, recipe);
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  REQUIRE(value(db, "SELECT status FROM projects WHERE id = 1") == "Active – ✓");

  // Someone edits a patched cell and an inserted row after the run.
  sql(db,
      "UPDATE projects SET status = 'Human' WHERE id = 1; "
      "UPDATE owners SET note = 'edited by a person' WHERE id = 3");

  auto undone = revert(db, run.run_id, {"--json"});
  INFO(undone.output);
  CHECK(undone.exit_code == 5);
  CHECK(value(db, "SELECT status FROM projects WHERE id = 1") == "Human");
  CHECK(value(db, "SELECT name || '|' || note FROM owners WHERE id = 3") ==
        "Owner 3|edited by a person");
  // Everything else is back as it was.
  CHECK(rows(db,
             "SELECT id, coalesce(status, 'NULL'), coalesce(phase, 'NULL'), "
             "coalesce(budget::text, 'NULL'), coalesce(uuid::text, 'NULL') FROM projects "
             "WHERE id <> 1 ORDER BY id") ==
        std::vector<std::string>{"2|  |v1|10.50|NULL", "3|Done|other|NULL|NULL",
                                 "4|NULL|NULL|NULL|NULL", "5|Zoë|v1|NULL|NULL"});
  CHECK(value(db,
              "SELECT coalesce(phase, 'NULL') || '|' || coalesce(budget::text, 'NULL') FROM "
              "projects WHERE id = 1") == "v1|NULL");
  CHECK(rows(db, "SELECT id FROM owners ORDER BY id") == std::vector<std::string>{"1", "3"});
  CHECK(rows(db, "SELECT * FROM contacts ORDER BY id") ==
        std::vector<std::string>{"2|keep@x|NULL"});

  auto report = revert_json(undone.output);
  REQUIRE(report.is_object());
  CHECK(report["conflicts"] == 2);
  bool cell_reported = false, row_reported = false;
  for (const auto& item : report["conflict_items"]) {
    if (item["table"] == "projects" && item.value("column", "") == "status") {
      cell_reported = true;
      CHECK(item.value("now", json()) == "Human");
    }
    if (item["table"] == "owners") row_reported = true;
  }
  CHECK(cell_reported);
  CHECK(row_reported);
}

TEST_CASE("the ledger holds old and new values of every change", "[e2e][revert]") {
  auto db = fresh_database();
  sql(db, k_fixture);
  auto recipe = recipe_file("revert_ledger", k_recipe);
  auto run = run_recipe(db, recipe);
  INFO(run.output);
  REQUIRE(run.exit_code == 0);

  auto cells = rows(db, R"sql(
SELECT l.table_name, l.column_name, k.key->>0, coalesce(o.old, 'NULL'), coalesce(n.new, 'NULL')
FROM host_ledger.changes l,
     jsonb_array_elements(l.keys) WITH ORDINALITY AS k(key, i)
     JOIN unnest(l.old_values) WITH ORDINALITY AS o(old, i) USING (i)
     JOIN unnest(l.new_values) WITH ORDINALITY AS n(new, i) USING (i)
WHERE l.op = 'update' AND l.run_id = ')sql" +
                            run.run_id + R"sql('
  AND l.column_name IN ('status', 'phase', 'budget', 'city', 'email')
ORDER BY 1, 2, 3
)sql");
  CHECK(cells == std::vector<std::string>{
                     "contacts|city|2|NULL|Oslo",
                     "projects|budget|1|NULL|12345678901234567890.123",
                     "projects|budget|3|NULL|12345678901234567890.123",
                     "projects|budget|4|NULL|12345678901234567890.123",
                     "projects|budget|5|NULL|12345678901234567890.123",
                     "projects|phase|1|v1|v2",
                     "projects|phase|2|v1|v2",
                     "projects|phase|5|v1|v2",
                     "projects|status|1|NULL|Active – ✓",
                     "projects|status|2|  |Active – ✓",
                     "projects|status|4|NULL|Active – ✓",
                 });
  // Inserted rows: one ledger entry per row, with the row's values.
  CHECK(value(db,
              "SELECT sum(jsonb_array_length(keys)) FROM host_ledger.changes WHERE op = "
              "'insert' AND table_name = 'owners' AND run_id = '" +
                  run.run_id + "'") == "4");
  CHECK(value(db,
              "SELECT count(*) FROM host_ledger.changes l, jsonb_array_elements(l.row_values) "
              "v WHERE l.op = 'insert' AND l.table_name = 'contacts' AND v->>'city' = 'Oslo' "
              "AND v->>'email' IN ('c1@x', 'c3@x', 'c4@x', 'c5@x')") == "4");
}
