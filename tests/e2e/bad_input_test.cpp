// End to end: every bad input of RECIPE_API.md section 6, broken recipes, broken
// input files, an unreachable database and bad command lines, driven through the
// built `host` binary. Each must end with the documented exit code (section 8),
// one clear line naming what is wrong and where, and nothing half-done.
#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "host/process.hpp"
#include "tests/e2e/e2e_helpers.hpp"

using namespace host::testing;
using namespace host::testing::e2e;

namespace {

const char* const k_schema = R"sql(
CREATE TABLE nums (id int PRIMARY KEY, n int, d date, code text);
INSERT INTO nums VALUES (1, NULL, NULL, '1'), (2, NULL, NULL, 'abc'), (3, NULL, NULL, '3');
CREATE TABLE people (id int PRIMARY KEY, name text);
)sql";

// A password that must never be printed, in any of its spellings.
const char* const k_secret = "s3cr3t";

// A database seeded with k_schema and the dump of its tables before the test.
struct Target {
  std::string db;
  std::string tables_before;
};

Target prepared_target() {
  Target target;
  target.db = fresh_database();
  sql(target.db, k_schema);
  target.tables_before = dump_user_tables(target.db);
  return target;
}

// How a failing command must end.
struct Failure {
  int exit_code = 1;
  std::string where;                  // "file.lua:7" or "file.csv:3", or "" where none applies
  std::vector<std::string> mentions;  // words the message must contain besides paths
};

void check_failure(const std::string& output, int exit_code, const Failure& expected) {
  INFO("host output:\n" << output);
  CHECK(exit_code == expected.exit_code);
  auto lines = message_lines(output);
  CHECK(lines.size() == 1);
  if (!expected.where.empty()) CHECK(mentions(output, expected.where));
  auto message = without_paths(output);
  for (const auto& part : expected.mentions) {
    INFO("the message should mention: " << part);
    CHECK(mentions(message, part));
  }
}

// A failed run: the failure as expected, tables as they were, no change in the ledger.
void check_failed_run(const Target& target, const HostRun& run, const Failure& expected) {
  check_failure(run.output, run.exit_code, expected);
  INFO("host output:\n" << run.output);
  auto lines = message_lines(run.output);
  CHECK((!lines.empty() && lines.front().rfind("host: ", 0) == 0));
  CHECK(dump_user_tables(target.db) == target.tables_before);
  CHECK(ledger_rows(target.db, "changes") == 0);
  auto status = ledger_status(target.db, run.run_id);
  INFO("ledger status of the run: " << status);
  CHECK((status == "failed" || status == "<none>"));
  if (run.report.is_object()) CHECK(run.report["status"] == "failed");
}

// A recipe that never ran: refused before a run was opened.
void check_refused_recipe(const Target& target, const HostRun& run, const Failure& expected) {
  check_failed_run(target, run, expected);
  CHECK(ledger_rows(target.db, "runs") == 0);
}

// `host check RECIPE --db DB EXTRA...`
host::ProcessResult host_check(const std::string& db, const std::string& recipe,
                               const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args = {"check", recipe, "--db", db};
  args.insert(args.end(), extra.begin(), extra.end());
  return run_host(args);
}

// Recipe fields as (name, Lua text of the value), in the order they are written.
using Fields = std::vector<std::pair<std::string, std::string>>;

// A valid recipe over nums, one field per line: name (line 2), table (3), writes (4),
// each (5). A field of `changed` replaces the base field of that name on its line;
// the others follow from line 6 on. (A key repeated in a table constructor is not a
// way to replace a field: LuaJIT does not reliably keep the last one.)
std::string nums_recipe(const std::string& stem, const Fields& changed = {}) {
  Fields fields = {{"name", "\"" + stem + "\""},
                   {"table", "\"nums\""},
                   {"writes", "{ nums = { \"n\" } }"},
                   {"each", "function(row) patch_if_empty(row, \"n\", 7) end"}};
  for (const auto& field : changed) {
    auto same = std::find_if(fields.begin(), fields.end(),
                             [&](const auto& base) { return base.first == field.first; });
    if (same != fields.end())
      same->second = field.second;
    else
      fields.push_back(field);
  }
  std::string text = "return {\n";
  for (const auto& [name, value] : fields) text += "  " + name + " = " + value + ",\n";
  return recipe_file(stem, text + "}\n");
}

std::string people_input_recipe(const std::string& stem) {
  return recipe_file(stem, R"lua(return {
  name = "people-import",
  input = "people",
  writes = { people = "*" },
  batch_size = 1,
  each = function(record)
    insert_if_absent("people", { id = tonumber(record.id), name = record.name })
  end,
}
)lua");
}

std::string input_file(const std::string& stem, const std::string& extension,
                       const std::string& content) {
  return write_file("inputs/" + stem + "_" + next_suffix() + "." + extension, content);
}

std::string file_name(const std::string& path) {
  return std::filesystem::path(path).filename().string();
}

}  // namespace

TEST_CASE("a Lua syntax error names the file and line", "[bad_input][e2e]") {
  auto target = prepared_target();
  auto recipe = recipe_file("syntax_error", R"lua(return {
  name = "syntax-error",
  table = "nums",
  each = function(row)
    local x = = 1
  end,
}
)lua");
  check_refused_recipe(target, run_recipe(target.db, recipe), {1, "syntax_error.lua:5", {}});
  auto checked = host_check(target.db, recipe);
  check_failure(checked.output, checked.exit_code, {1, "syntax_error.lua:5", {}});
}

TEST_CASE("a runtime error in each names file, line and row key; nothing is committed",
          "[bad_input][e2e]") {
  auto target = prepared_target();
  // Batches of one row: row 1's write is flushed before row 2 fails, yet must not stay.
  auto recipe = recipe_file("each_error", R"lua(return {
  name = "each-error",
  table = "nums",
  writes = { nums = { "n" } },
  batch_size = 1,
  each = function(row)
    patch_if_empty(row, "n", 7)
    if row.code == "abc" then error("cannot read code " .. row.code) end
  end,
}
)lua");
  auto run = run_recipe(target.db, recipe);
  check_failed_run(target, run, {1, "each_error.lua:8", {"id=2", "cannot read code abc"}});
  CHECK(ledger_status(target.db, run.run_id) == "failed");
}

TEST_CASE("an error value that is not a string still names the recipe file and row",
          "[bad_input][e2e]") {
  auto target = prepared_target();
  SECTION("a table") {
    auto recipe = nums_recipe("table_error", {{"each", "function(row) error({ code = 42 }) end"}});
    check_failed_run(target, run_recipe(target.db, recipe), {1, "table_error.lua", {"id=1"}});
  }
  SECTION("a string without position (level 0)") {
    auto recipe =
        nums_recipe("level_zero_error", {{"each", "function(row) error('bare message', 0) end"}});
    check_failed_run(target, run_recipe(target.db, recipe),
                     {1, "level_zero_error.lua", {"id=1", "bare message"}});
  }
}

TEST_CASE("a recipe that does not return a table", "[bad_input][e2e]") {
  auto target = prepared_target();
  SECTION("a number") {
    auto recipe = recipe_file("scalar_result", "return 42\n");
    check_refused_recipe(target, run_recipe(target.db, recipe),
                         {1, "scalar_result.lua", {"table", "number"}});
  }
  SECTION("a string") {
    auto recipe = recipe_file("text_result", "return 'nums'\n");
    check_refused_recipe(target, run_recipe(target.db, recipe),
                         {1, "text_result.lua", {"table", "string"}});
  }
  SECTION("nothing") {
    auto recipe = recipe_file("returns_nothing", "local recipe = { name = 'x' }\n");
    check_refused_recipe(target, run_recipe(target.db, recipe),
                         {1, "returns_nothing.lua", {"table"}});
  }
}

TEST_CASE("a recipe missing a required field", "[bad_input][e2e]") {
  auto target = prepared_target();
  SECTION("name") {
    auto recipe = recipe_file("no_name", "return { table = 'nums', each = function() end }\n");
    check_refused_recipe(target, run_recipe(target.db, recipe), {1, "no_name.lua", {"name"}});
  }
  SECTION("each") {
    auto recipe = recipe_file("no_each", "return { name = 'no-each', table = 'nums' }\n");
    check_refused_recipe(target, run_recipe(target.db, recipe), {1, "no_each.lua", {"each"}});
  }
  SECTION("a row source") {
    auto recipe =
        recipe_file("no_source", "return { name = 'no-source', each = function() end }\n");
    check_refused_recipe(target, run_recipe(target.db, recipe),
                         {1, "no_source.lua", {"table", "input"}});
  }
  SECTION("two row sources") {
    auto recipe = recipe_file("two_sources",
                              "return { name = 'two-sources', table = 'nums', input = 'people', "
                              "each = function() end }\n");
    check_refused_recipe(target, run_recipe(target.db, recipe),
                         {1, "two_sources.lua", {"table", "input"}});
  }
}

TEST_CASE("a recipe field of the wrong type", "[bad_input][e2e]") {
  auto target = prepared_target();
  const Fields cases = {
      {"name", "5"},
      {"name", "'Not A Valid Name!'"},
      {"table", "{ 'nums' }"},
      {"each", "'patch everything'"},
      {"writes", "'nums'"},
      {"writes", "{ nums = 5 }"},
      {"columns", "5"},
      {"key", "{ 1 }"},
      {"batch_size", "'big'"},
      {"batch_size", "0"},
      {"commit", "'sometimes'"},
      {"verify", "true"},
      {"on_error", "'ignore'"},
      {"where", "5"},
      {"version", "{ 1 }"},
  };
  for (const auto& field : cases) {
    DYNAMIC_SECTION(field.first << " = " << field.second) {
      auto recipe = nums_recipe("wrong_type", {field});
      check_refused_recipe(target, run_recipe(target.db, recipe),
                           {1, "wrong_type.lua", {field.first}});
    }
  }
}

TEST_CASE("a recipe with an unknown field", "[bad_input][e2e]") {
  auto target = prepared_target();
  auto recipe = nums_recipe("unknown_field", {{"tabel", "'people'"}});
  check_refused_recipe(target, run_recipe(target.db, recipe), {1, "unknown_field.lua", {"tabel"}});
  auto checked = host_check(target.db, recipe);
  check_failure(checked.output, checked.exit_code, {1, "unknown_field.lua", {"tabel"}});
}

TEST_CASE("an unknown table: host check and host run", "[bad_input][e2e]") {
  auto target = prepared_target();
  auto good = nums_recipe("known_table");
  auto control = host_check(target.db, good);
  INFO(control.output);
  REQUIRE(control.exit_code == 0);
  SECTION("as the row source") {
    auto recipe = nums_recipe("unknown_source", {{"table", "'no_such_table'"}});
    auto checked = host_check(target.db, recipe);
    check_failure(checked.output, checked.exit_code, {1, "unknown_source.lua", {"no_such_table"}});
    check_refused_recipe(target, run_recipe(target.db, recipe),
                         {1, "unknown_source.lua", {"no_such_table"}});
  }
  SECTION("in writes") {
    auto recipe = nums_recipe("unknown_written", {{"writes", "{ no_such_table = { 'n' } }"}});
    auto checked = host_check(target.db, recipe);
    check_failure(checked.output, checked.exit_code, {1, "unknown_written.lua", {"no_such_table"}});
    check_refused_recipe(target, run_recipe(target.db, recipe),
                         {1, "unknown_written.lua", {"no_such_table"}});
  }
  SECTION("read while processing a row") {
    auto recipe =
        nums_recipe("unknown_read", {{"each",
                                      "function(row)\n"
                                      "    local other = read('no_such_table', { id = row.id })\n"
                                      "  end"}});
    check_failed_run(target, run_recipe(target.db, recipe),
                     {1, "unknown_read.lua:6", {"no_such_table", "id=1"}});
  }
}

TEST_CASE("an unknown column: host check and host run", "[bad_input][e2e]") {
  auto target = prepared_target();
  const Fields cases = {
      {"columns", "{ 'id', 'no_such_column' }"},
      {"writes", "{ nums = { 'no_such_column' } }"},
      {"key", "'no_such_column'"},
      {"where", "{ no_such_column = 1 }"},
  };
  for (const auto& field : cases) {
    DYNAMIC_SECTION("in " << field.first) {
      auto recipe = nums_recipe("unknown_column", {field});
      auto checked = host_check(target.db, recipe);
      check_failure(checked.output, checked.exit_code,
                    {1, "unknown_column.lua", {"no_such_column"}});
      check_refused_recipe(target, run_recipe(target.db, recipe),
                           {1, "unknown_column.lua", {"no_such_column"}});
    }
  }
  SECTION("written while processing a row, with writes = \"*\"") {
    auto recipe =
        nums_recipe("unknown_written_column",
                    {{"writes", "{ nums = '*' }"},
                     {"each", "function(row) patch_if_empty(row, 'no_such_column', 1) end"}});
    check_failed_run(target, run_recipe(target.db, recipe),
                     {1, "unknown_written_column.lua:5", {"no_such_column", "id=1"}});
  }
}

TEST_CASE("a value of the wrong type names column, row key and value; nothing half-done",
          "[bad_input][e2e]") {
  auto target = prepared_target();
  struct Case {
    std::string column;
    std::string value_lua;
    std::string shown;
  };
  const std::vector<Case> cases = {
      {"n", "row.code", "abc"},                             // "abc" into an integer
      {"n", "row.id == 2 and 1.5 or 1", "1.5"},             // would be rounded
      {"n", "row.id == 2 and 1e12 or 1", "1000000000000"},  // out of range
      {"d", "row.id == 2 and '2024-13-45' or '2024-01-01'", "2024-13-45"},
  };
  for (const auto& c : cases) {
    DYNAMIC_SECTION(c.column << " = " << c.value_lua) {
      // Batches of one row: row 1 is flushed before row 2 fails, yet must not stay.
      auto recipe = nums_recipe("wrong_value", {{"writes", "{ nums = { 'n', 'd' } }"},
                                                {"each",
                                                 "function(row)\n"
                                                 "    patch_if_empty(row, '" +
                                                     c.column + "', " + c.value_lua +
                                                     ")\n"
                                                     "  end"},
                                                {"batch_size", "1"}});
      check_failed_run(target, run_recipe(target.db, recipe),
                       {1, "wrong_value.lua:6", {"nums." + c.column, "id=2", c.shown}});
    }
  }
}

TEST_CASE("a write outside writes is an error naming table, column, file and line",
          "[bad_input][e2e]") {
  auto target = prepared_target();
  SECTION("a column that is not listed") {
    auto recipe = nums_recipe("outside_column",
                              {{"each", "function(row) patch_if_empty(row, 'code', 'x') end"}});
    check_failed_run(target, run_recipe(target.db, recipe),
                     {1, "outside_column.lua:5", {"code", "writes", "id=1"}});
  }
  SECTION("a table that is not listed") {
    auto recipe = nums_recipe(
        "outside_table",
        {{"each", "function(row) insert_if_absent('people', { id = row.id, name = 'x' }) end"}});
    check_failed_run(target, run_recipe(target.db, recipe),
                     {1, "outside_table.lua:5", {"people", "writes", "id=1"}});
  }
}

TEST_CASE("batch mode: the failing batch is rolled back; resume only with the same recipe",
          "[bad_input][e2e]") {
  auto target = prepared_target();
  sql(target.db,
      "UPDATE nums SET code = '2' WHERE id = 2; "
      "INSERT INTO nums VALUES (4, NULL, NULL, 'x'), (5, NULL, NULL, '5')");
  auto recipe = recipe_file("batch_failure", R"lua(return {
  name = "batch-failure",
  table = "nums",
  writes = { nums = { "n" } },
  commit = "batch",
  batch_size = 2,
  each = function(row)
    patch_if_empty(row, "n", tonumber(row.code) or error("code is not a number: " .. row.code))
  end,
}
)lua");
  auto first = run_recipe(target.db, recipe);
  {
    INFO(first.output);
    CHECK(first.exit_code == 1);
    CHECK(message_lines(first.output).size() == 1);
    CHECK(mentions(first.output, "batch_failure.lua:8"));
    CHECK(mentions(first.output, "id=4"));
    REQUIRE(!first.run_id.empty());
  }
  // Batch 1 (rows 1, 2) committed; batch 2 (rows 3, 4) rolled back; row 5 never ran.
  CHECK(rows(target.db, "SELECT id, coalesce(n::text, 'NULL') FROM nums ORDER BY id") ==
        std::vector<std::string>{"1|1", "2|2", "3|NULL", "4|NULL", "5|NULL"});
  CHECK(value(target.db,
              "SELECT coalesce(sum(cardinality(new_values)), 0) FROM "
              "host_ledger.changes") == "2");
  CHECK(ledger_status(target.db, first.run_id) == "failed");

  SECTION("resumed after fixing the data: every row changed once") {
    sql(target.db, "UPDATE nums SET code = '4' WHERE id = 4");
    auto resumed = host_with_report({"resume", first.run_id, "--db", target.db});
    INFO(resumed.output);
    CHECK(resumed.exit_code == 0);
    CHECK(rows(target.db, "SELECT id, n FROM nums ORDER BY id") ==
          std::vector<std::string>{"1|1", "2|2", "3|3", "4|4", "5|5"});
    CHECK(ledger_status(target.db, first.run_id) == "succeeded");
    CHECK(value(target.db,
                "SELECT count(*) || '|' || count(DISTINCT k) FROM host_ledger.changes, "
                "jsonb_array_elements(keys) AS k WHERE run_id::text = '" +
                    first.run_id + "'") == "5|5");
  }
  SECTION("resuming with a changed recipe is refused") {
    sql(target.db, "UPDATE nums SET code = '4' WHERE id = 4");
    std::ofstream(recipe, std::ios::app) << "-- edited after the failure\n";
    auto resumed = host_with_report({"resume", first.run_id, "--db", target.db});
    INFO(resumed.output);
    // The contract says "refused" without naming a code: a recipe error or a usage error.
    CHECK((resumed.exit_code == 1 || resumed.exit_code == 2));
    CHECK(message_lines(resumed.output).size() == 1);
    CHECK(mentions(resumed.output, "changed"));
    CHECK(rows(target.db, "SELECT id, coalesce(n::text, 'NULL') FROM nums ORDER BY id") ==
          std::vector<std::string>{"1|1", "2|2", "3|NULL", "4|NULL", "5|NULL"});
    CHECK(value(target.db,
                "SELECT coalesce(sum(cardinality(new_values)), 0) FROM "
                "host_ledger.changes") == "2");
  }
}

// A batch's writes are flushed inside a savepoint only when a refused row may be
// skipped; otherwise the refusal is found in a transaction of its own. Both must
// name the cell and leave exactly the committed batches.
TEST_CASE("batch mode: a value the database refuses ends the run, or is skipped with on_error",
          "[bad_input][e2e]") {
  auto target = prepared_target();
  sql(target.db,
      "UPDATE nums SET code = '2' WHERE id = 2; ALTER TABLE nums ADD CHECK (n < 100); "
      "INSERT INTO nums SELECT g, NULL, NULL, g::text FROM generate_series(4, 9) AS g");
  auto recipe_text = [](const std::string& on_error) {
    return R"lua(return {
  name = "refused-value",
  table = "nums",
  writes = { nums = { "n" } },
  commit = "batch",
  batch_size = 2,)lua" + on_error + R"lua(
  each = function(row)
    patch_if_empty(row, "n", row.id == 5 and 500 or row.id)
  end,
}
)lua";
  };
  auto ledger_cells = [&](const std::string& run_id) {
    return value(target.db,
                 "SELECT coalesce(sum(cardinality(new_values)), 0) FROM host_ledger.changes "
                 "WHERE run_id::text = '" + run_id + "'");
  };
  SECTION("without on_error: the run stops at the batch, which is rolled back") {
    auto run = run_recipe(target.db, recipe_file("refused_value", recipe_text("")));
    INFO(run.output);
    CHECK(run.exit_code == 1);
    CHECK(message_lines(run.output).size() == 1);
    CHECK(mentions(run.output, "refused_value.lua:8"));
    auto message = without_paths(run.output);
    CHECK(mentions(message, "nums.n"));
    CHECK(mentions(message, "id=5"));
    CHECK(mentions(message, "500"));
    // Batches (1, 2) and (3, 4) committed; (5, 6) rolled back; the rest never ran.
    CHECK(rows(target.db, "SELECT id, coalesce(n::text, 'NULL') FROM nums ORDER BY id") ==
          std::vector<std::string>{"1|1", "2|2", "3|3", "4|4", "5|NULL", "6|NULL", "7|NULL",
                                   "8|NULL", "9|NULL"});
    CHECK(ledger_cells(run.run_id) == "4");
    CHECK(ledger_status(target.db, run.run_id) == "failed");
  }
  SECTION("with on_error = \"skip\": the row is recorded and the others are written") {
    auto run = run_recipe(target.db, recipe_file("refused_value_skip",
                                                 recipe_text("\n  on_error = \"skip\",")));
    INFO(run.output);
    CHECK(run.exit_code == 0);
    CHECK(rows(target.db, "SELECT id, coalesce(n::text, 'NULL') FROM nums ORDER BY id") ==
          std::vector<std::string>{"1|1", "2|2", "3|3", "4|4", "5|NULL", "6|6", "7|7", "8|8",
                                   "9|9"});
    CHECK(ledger_cells(run.run_id) == "8");
    REQUIRE(run.report.is_object());
    CHECK(run.stat("errors") == 1);
    REQUIRE(run.report["failed_rows"].size() == 1);
    CHECK(run.report["failed_rows"][0]["key"] == nlohmann::json({{"id", 5}}));
    CHECK(mentions(run.report["failed_rows"][0]["error"].get<std::string>(),
                   "refused_value_skip.lua:9"));
  }
}

TEST_CASE("on_error = \"skip\" records the failing row and goes on", "[bad_input][e2e]") {
  auto target = prepared_target();
  auto recipe = recipe_file("skip_errors", R"lua(return {
  name = "skip-errors",
  table = "nums",
  writes = { nums = { "n" } },
  on_error = "skip",
  each = function(row)
    patch_if_empty(row, "n", tonumber(row.code) or error("code is not a number: " .. row.code))
  end,
}
)lua");
  auto run = run_recipe(target.db, recipe);
  INFO(run.output);
  CHECK(run.exit_code == 0);
  REQUIRE(run.report.is_object());
  CHECK(run.report["status"] == "succeeded");
  CHECK(run.stat("errors") == 1);
  CHECK(run.stat("patched") == 2);
  CHECK(rows(target.db, "SELECT id, coalesce(n::text, 'NULL') FROM nums ORDER BY id") ==
        std::vector<std::string>{"1|1", "2|NULL", "3|3"});
  REQUIRE(run.report.contains("failed_rows"));
  REQUIRE(run.report["failed_rows"].size() == 1);
  CHECK(run.report["failed_rows"][0]["key"] == nlohmann::json({{"id", 2}}));
  CHECK(mentions(run.report["failed_rows"][0]["error"].get<std::string>(), "skip_errors.lua:7"));
  CHECK(value(target.db, "SELECT count(*) FROM host_ledger.failed_rows WHERE run_id::text = '" +
                             run.run_id + "'") == "1");
}

TEST_CASE("malformed CSV: an unterminated quote names file and line", "[bad_input][e2e]") {
  auto target = prepared_target();
  auto csv = input_file("unterminated", "csv", "id,name\n1,Ann\n2,\"Bob\n3,Cy\n");
  auto recipe = people_input_recipe("unterminated_csv");
  check_failed_run(target, run_recipe(target.db, recipe, {"--input", "people=" + csv}),
                   {1, file_name(csv) + ":3", {"quote"}});
  auto checked = host_check(target.db, recipe, {"--input", "people=" + csv});
  check_failure(checked.output, checked.exit_code, {1, file_name(csv) + ":3", {}});
}

TEST_CASE("malformed CSV: a ragged row or a stray quote names file and line", "[bad_input][e2e]") {
  auto target = prepared_target();
  SECTION("more fields than the header") {
    auto csv = input_file("ragged", "csv", "id,name\n1,Ann\n2,Bob,extra\n3,Cy\n");
    check_failed_run(
        target,
        run_recipe(target.db, people_input_recipe("ragged_csv"), {"--input", "people=" + csv}),
        {1, file_name(csv) + ":3", {}});
  }
  SECTION("a quote inside an unquoted field") {
    auto csv = input_file("stray_quote", "csv", "id,name\n1,Ann\n2,Bo\"b\n3,Cy\n");
    check_failed_run(
        target,
        run_recipe(target.db, people_input_recipe("stray_quote_csv"), {"--input", "people=" + csv}),
        {1, file_name(csv) + ":3", {}});
  }
}

TEST_CASE("invalid UTF-8 in a CSV names file and line", "[bad_input][e2e]") {
  auto target = prepared_target();
  auto csv = input_file("latin1", "csv", "id,name\n1,Ann\n2,B\xf6rje\n3,Cy\n");
  auto recipe = people_input_recipe("latin1_csv");
  check_failed_run(target, run_recipe(target.db, recipe, {"--input", "people=" + csv}),
                   {1, file_name(csv) + ":3", {"UTF-8"}});
  auto checked = host_check(target.db, recipe, {"--input", "people=" + csv});
  check_failure(checked.output, checked.exit_code, {1, file_name(csv) + ":3", {"UTF-8"}});
}

TEST_CASE("a JSON Lines file with a broken line names the line", "[bad_input][e2e]") {
  auto target = prepared_target();
  SECTION("cut-off JSON") {
    auto jsonl = input_file("broken", "jsonl",
                            "{\"id\": \"1\", \"name\": \"Ann\"}\n"
                            "{\"id\": \"2\", \"name\": \n"
                            "{\"id\": \"3\", \"name\": \"Cy\"}\n");
    check_failed_run(
        target,
        run_recipe(target.db, people_input_recipe("broken_jsonl"), {"--input", "people=" + jsonl}),
        {1, file_name(jsonl) + ":2", {}});
  }
  SECTION("a line that is not an object") {
    auto jsonl = input_file("not_object", "jsonl",
                            "{\"id\": \"1\", \"name\": \"Ann\"}\n"
                            "[2, \"Bob\"]\n");
    check_failed_run(
        target,
        run_recipe(target.db, people_input_recipe("array_jsonl"), {"--input", "people=" + jsonl}),
        {1, file_name(jsonl) + ":2", {}});
  }
}

TEST_CASE("a missing --input file", "[bad_input][e2e]") {
  auto target = prepared_target();
  auto recipe = people_input_recipe("missing_input");
  SECTION("the path does not exist") {
    std::string missing = scratch_folder() + "/inputs/no_such_file.csv";
    auto run = run_recipe(target.db, recipe, {"--input", "people=" + missing});
    // The contract names no code for this one: a runtime error or a usage error.
    INFO(run.output);
    CHECK((run.exit_code == 1 || run.exit_code == 2));
    check_failed_run(target, run, {run.exit_code, "no_such_file.csv", {}});
  }
  SECTION("the recipe's input is not given at all") {
    check_refused_recipe(target, run_recipe(target.db, recipe), {2, "", {"--input", "people"}});
  }
}

TEST_CASE("an unreachable database exits 4 and never prints the password", "[bad_input][e2e]") {
  auto recipe = nums_recipe("unreachable");
  auto check_unreachable = [&](const std::vector<std::string>& args,
                               const std::vector<std::string>& environment) {
    std::vector<std::string> argv = {HOST_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    std::string report = scratch_folder() + "/unreachable_" + next_suffix() + ".json";
    if (args.front() == "run") argv.insert(argv.end(), {"--report", report});
    auto result = host::run_process(argv, std::nullopt, environment);
    INFO("command: " << args.front() << "\nhost output:\n" << result.output);
    CHECK(result.exit_code == 4);
    CHECK(mentions(result.output, "unreachable"));
    // One clear line (STYLE.md); checked once per connection form to keep failures readable.
    if (args.front() == "run") CHECK(message_lines(result.output).size() == 1);
    CHECK_FALSE(mentions(result.output, k_secret));
    if (std::filesystem::exists(report)) {
      std::ifstream file(report);
      std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
      CHECK_FALSE(mentions(text, k_secret));
    }
  };
  auto every_command = [&](const std::vector<std::string>& db_args,
                           const std::vector<std::string>& environment) {
    const std::string some_run = "00000000-0000-0000-0000-000000000000";
    const std::vector<std::vector<std::string>> commands = {
        {"run", recipe}, {"run", recipe, "--dry-run"}, {"check", recipe},    {"verify", recipe},
        {"runs"},        {"show", some_run},           {"revert", some_run}, {"resume", some_run},
    };
    for (auto args : commands) {
      args.insert(args.end(), db_args.begin(), db_args.end());
      check_unreachable(args, environment);
    }
  };
  SECTION("a URL with a password") {
    every_command({"--db", "postgresql://alice:s3cr3t@127.0.0.1:1/db"}, {});
  }
  SECTION("a URL with a percent-encoded password") {
    every_command({"--db", "postgresql://alice:s3cr3t%40home@127.0.0.1:1/db"}, {});
  }
  SECTION("key=value with password=") {
    every_command({"--db", "host=127.0.0.1 port=1 user=alice password=s3cr3t dbname=db"}, {});
  }
  SECTION("key=value with a quoted password") {
    every_command({"--db", "host=127.0.0.1 port=1 user=alice password='s3cr3t and more' dbname=db"},
                  {});
  }
  SECTION("DATABASE_URL") {
    every_command({}, {"DATABASE_URL=postgresql://alice:s3cr3t@127.0.0.1:1/db"});
  }
  SECTION("PGPASSWORD with PGHOST and PGPORT") {
    every_command({}, {"PGHOST=127.0.0.1", "PGPORT=1", "PGUSER=alice", "PGPASSWORD=s3cr3t",
                       "PGDATABASE=db", "DATABASE_URL="});
  }
}

TEST_CASE("bad command line usage exits 2 and runs nothing", "[bad_input][e2e]") {
  auto target = prepared_target();
  auto recipe = nums_recipe("usage");
  const std::vector<std::vector<std::string>> cases = {
      {},
      {"run"},
      {"check"},
      {"run", recipe, "--no-such-option"},
      {"run", recipe, "another.lua"},
      {"run", recipe, "--batch-size", "0"},
      {"run", recipe, "--batch-size", "many"},
      {"run", recipe, "--min-confidence", "extreme"},
      {"run", recipe, "--commit", "sometimes"},
      {"run", recipe, "--limit", "-1"},
      {"run", recipe, "--timeout-ms", "0"},
      {"run", recipe, "--memory-mb", "1"},
      {"run", recipe, "--db"},
      {"resume"},
      {"revert"},
      {"show"},
      {"runs", "--bogus"},
      {"resume", "00000000-0000-0000-0000-000000000000"},
      {"show", "not-a-run-id"},
      {"revert", "not-a-run-id"},
  };
  for (const auto& args : cases) {
    // Section names must not change between passes: show the recipe's path as RECIPE.
    std::string shown;
    for (const auto& arg : args) shown += " " + (arg == recipe ? std::string("RECIPE") : arg);
    DYNAMIC_SECTION("host" << shown) {
      auto all = args;
      if (args.empty() || args.back() != "--db") all.insert(all.end(), {"--db", target.db});
      auto result = run_host(all);
      INFO(result.output);
      CHECK(result.exit_code == 2);
      CHECK(mentions(result.output, "usage"));
      CHECK(dump_user_tables(target.db) == target.tables_before);
      CHECK(ledger_rows(target.db, "runs") == 0);
    }
  }
  SECTION("an unknown command is named in the message") {
    auto result = run_host({"frobnicate", "--db", target.db});
    INFO(result.output);
    CHECK(result.exit_code == 2);
    CHECK(mentions(result.output, "frobnicate"));
  }
}

TEST_CASE("a malformed --var or --input exits 2, names it and runs nothing", "[bad_input][e2e]") {
  auto target = prepared_target();
  auto recipe = nums_recipe("malformed_var");
  struct Case {
    std::string option;
    std::string item;
  };
  const std::vector<Case> cases = {
      {"--var", "novalue"},  {"--var", "=value"},        {"--var", ""},
      {"--input", "people"}, {"--input", "=people.csv"},
  };
  for (const auto& c : cases) {
    DYNAMIC_SECTION(c.option << " '" << c.item << "'") {
      auto run = run_recipe(target.db, recipe, {c.option, c.item});
      check_failure(run.output, run.exit_code, {2, "", {c.option, "'" + c.item + "'"}});
      CHECK(dump_user_tables(target.db) == target.tables_before);
      CHECK(ledger_rows(target.db, "runs") == 0);
    }
  }
  SECTION("--var without a value") {
    auto result = run_host({"run", recipe, "--db", target.db, "--var"});
    INFO(result.output);
    CHECK(result.exit_code == 2);
    CHECK(mentions(result.output, "--var"));
    CHECK(ledger_rows(target.db, "runs") == 0);
  }
}
