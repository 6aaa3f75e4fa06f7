// End to end: the report breaks counts down per table and per column, in JSON
// and in Markdown, the same in a dry run and a real run.
#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>

#include "tests/e2e/e2e_helpers.hpp"

using namespace host::testing;
using namespace host::testing::e2e;
using nlohmann::json;

namespace {

const char* const k_fixture = R"sql(
CREATE TABLE phases (id int PRIMARY KEY, status text, owner text, project_id int);
INSERT INTO phases VALUES
  (1, NULL, NULL, NULL), (2, 'Done', NULL, NULL), (3, 'Open', 'Ann', NULL), (4, '', NULL, 7);
CREATE TABLE notes (phase_id int PRIMARY KEY, text text);
)sql";

// status: 2 patched, 2 protected; owner: 3 patched, 1 protected; project_id: 3 review
// items, 1 protected.
const char* const k_recipe = R"lua(
return {
  name = "breakdown-subject",
  table = "phases",
  writes = { phases = { "status", "owner", "project_id" }, notes = { "phase_id", "text" } },
  each = function(row)
    patch_if_empty(row, "status", "Active")
    patch_if_empty(row, "owner", "Nobody")
    patch_if_empty(row, "project_id", 1, { confidence = "medium", reason = "guess" })
    if row.id <= 2 then insert_if_absent("notes", { phase_id = row.id, text = "seen" }) end
  end,
}
)lua";

json find_row(const json& rows, const std::string& table, const std::string& column = "") {
  for (const auto& row : rows)
    if (row["table"] == table && (column.empty() || row["column"] == column)) return row;
  return json();
}

}  // namespace

TEST_CASE("the report counts per table and per column", "[e2e][report]") {
  auto db = fresh_database();
  sql(db, k_fixture);
  auto recipe = recipe_file("breakdown_subject", k_recipe);
  for (bool dry_run : {true, false}) {
    INFO("dry run: " << dry_run);
    std::vector<std::string> extra;
    if (dry_run) extra.push_back("--dry-run");
    std::string markdown = scratch_folder() + "/breakdown_" + next_suffix() + ".md";
    extra.push_back("--report");
    extra.push_back(markdown);
    auto run = run_recipe(db, recipe, extra);
    INFO(run.output);
    REQUIRE(run.exit_code == 0);

    auto status = find_row(run.report["columns"], "phases", "status");
    CHECK(status["patched"] == 2);
    CHECK(status["protected"] == 2);
    auto owner = find_row(run.report["columns"], "phases", "owner");
    CHECK(owner["patched"] == 3);
    CHECK(owner["protected"] == 1);
    auto project = find_row(run.report["columns"], "phases", "project_id");
    CHECK(project["patched"] == 0);
    CHECK(project["review"] == 3);
    CHECK(project["protected"] == 1);

    auto phases = find_row(run.report["tables"], "phases");
    CHECK(phases["scanned"] == 4);
    CHECK(phases["patched"] == 5);
    CHECK(phases["protected"] == 4);
    CHECK(phases["review"] == 3);
    CHECK(find_row(run.report["tables"], "notes")["inserted"] == 2);

    std::ifstream file(markdown);
    std::stringstream text;
    text << file.rdbuf();
    CHECK(text.str().find("| phases | status | 2 | 2 | 0 |") != std::string::npos);
    CHECK(text.str().find("| notes | 0 | 0 | 0 | 2 | 0 | 0 |") != std::string::npos);
    if (dry_run) CHECK(rows(db, "SELECT count(*) FROM notes")[0] == "0");
  }
  CHECK(rows(db, "SELECT count(*) FROM notes")[0] == "2");
}

TEST_CASE("orphans{} returns what links to nothing and lists it in the report", "[e2e][report]") {
  auto db = fresh_database();
  sql(db, R"sql(
CREATE TABLE projects (id int PRIMARY KEY, name text);
INSERT INTO projects VALUES (1, 'kept');
CREATE TABLE phases (id int PRIMARY KEY, project_id int);
INSERT INTO phases VALUES (1, 1), (2, 9), (3, NULL), (4, 7), (5, 9);
)sql");
  auto recipe = recipe_file("orphan_subject", R"lua(
return {
  name = "orphan-subject",
  table = "phases",
  writes = {},
  each = function(row) end,
  verify = function()
    local loose = orphans({ child = "phases", fk = "project_id", parent = "projects" })
    expect(loose.count == 3, "three orphans, found " .. loose.count)
    expect(table.concat(loose.sample, ",") == "7,9,9", "sample " .. table.concat(loose.sample, ","))
  end,
}
)lua");
  std::string markdown = scratch_folder() + "/orphans_" + next_suffix() + ".md";
  auto run = run_recipe(db, recipe, {"--dry-run", "--report", markdown});
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  REQUIRE(run.report["orphans"].size() == 1);
  const auto& found = run.report["orphans"][0];
  CHECK(found["child"] == "phases");
  CHECK(found["fk"] == "project_id");
  CHECK(found["parent"] == "projects");
  CHECK(found["key"] == "id");
  CHECK(found["count"] == 3);
  CHECK(found["sample"] == json::array({"7", "9", "9"}));
  std::ifstream file(markdown);
  std::stringstream text;
  text << file.rdbuf();
  CHECK(text.str().find("| phases.project_id -> projects.id | 3 |") != std::string::npos);
}

TEST_CASE("--audit-file appends the run's audit events as JSON Lines", "[e2e][report]") {
  auto db = fresh_database();
  sql(db,
      "CREATE TABLE items (id int PRIMARY KEY, name text); "
      "INSERT INTO items VALUES (1, 'Zoë'), (2, NULL);");
  auto recipe = recipe_file("audit_file_subject", R"lua(
return {
  name = "audit-file-subject",
  table = "items",
  writes = {},
  each = function(row)
    if not row.name then audit("nameless", { id = row.id }) else audit("named", { name = row.name }) end
  end,
}
)lua");
  std::string audit_path = scratch_folder() + "/audit_" + next_suffix() + ".jsonl";
  auto dry = run_recipe(db, recipe, {"--dry-run", "--audit-file", audit_path});
  auto real = run_recipe(db, recipe, {"--audit-file", audit_path});
  INFO(dry.output << real.output);
  REQUIRE(dry.exit_code == 0);
  REQUIRE(real.exit_code == 0);
  std::ifstream file(audit_path);
  std::vector<json> lines;
  for (std::string line; std::getline(file, line);) lines.push_back(json::parse(line));
  REQUIRE(lines.size() == 4);
  CHECK(lines[0]["mode"] == "dry-run");
  CHECK(lines[0]["run_id"] == dry.run_id);
  CHECK(lines[0]["event"] == "named");
  CHECK(lines[0]["data"]["name"] == "Zoë");
  CHECK(lines[1]["event"] == "nameless");
  CHECK(lines[1]["key"] == json{{"id", 2}});
  CHECK(lines[3]["mode"] == "commit");
  CHECK(lines[3]["run_id"] == real.run_id);
  CHECK(lines[3]["recipe"] == "audit-file-subject");
}

TEST_CASE("an --audit-file that cannot be written stops the run before it starts",
          "[e2e][report]") {
  auto db = fresh_database();
  sql(db,
      "CREATE TABLE items (id int PRIMARY KEY, note text); INSERT INTO items VALUES (1, NULL);");
  auto recipe = recipe_file("audit_unwritable", R"lua(
return {
  name = "audit-unwritable",
  table = "items",
  writes = { items = { "note" } },
  each = function(row) patch_if_empty(row, "note", "x") audit("seen", {}) end,
}
)lua");
  auto run = run_recipe(db, recipe, {"--audit-file", "/nonexistent-folder/audit.jsonl"});
  INFO(run.output);
  CHECK(run.exit_code == 2);
  CHECK(run.output.find("audit file") != std::string::npos);
  CHECK(rows(db, "SELECT count(*) FROM items WHERE note IS NULL")[0] == "1");
}
