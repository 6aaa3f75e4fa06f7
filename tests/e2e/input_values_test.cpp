// End to end: values from input files and recipes reach PostgreSQL exactly or are
// refused with one clear line; files the host writes are private to their owner.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <string>
#include <vector>

#include "tests/e2e/e2e_helpers.hpp"

using namespace host::testing;
using namespace host::testing::e2e;

TEST_CASE("JSON Lines numbers past a double's precision reach numeric columns exactly",
          "[e2e][input_values]") {
  auto db = fresh_database();
  sql(db, "CREATE TABLE exact (id int PRIMARY KEY, n numeric);");
  std::string input = write_file("inputs/exact_" + next_suffix() + ".jsonl",
                                 "{\"id\": 1, \"n\": 123456789012345678901234567890}\n"
                                 "{\"id\": 2, \"n\": 0.12345678901234567890123}\n"
                                 "{\"id\": 3, \"n\": 0.1}\n"
                                 "{\"id\": 4, \"n\": 42}\n");
  auto recipe = recipe_file("exact_jsonl", R"lua(
return {
  name = "exact-jsonl",
  input = "numbers",
  writes = { exact = { "id", "n" } },
  each = function(record)
    audit("kind", { id = record.id, kind = type(record.n) })
    insert_if_absent("exact", { id = record.id, n = record.n })
  end,
}
)lua");
  auto run = run_recipe(db, recipe, {"--input", "numbers=" + input});
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  CHECK(rows(db, "SELECT n::text FROM exact ORDER BY id") ==
        std::vector<std::string>{"123456789012345678901234567890", "0.12345678901234567890123",
                                 "0.1", "42"});
  REQUIRE(run.report["audit"].size() == 4);
  CHECK(run.report["audit"][0]["data"]["kind"] == "string");
  CHECK(run.report["audit"][1]["data"]["kind"] == "string");
  CHECK(run.report["audit"][2]["data"]["kind"] == "number");
  CHECK(run.report["audit"][3]["data"]["kind"] == "number");
}

TEST_CASE("a JSON Lines document nested 30,000 deep is refused with one line naming file and line",
          "[e2e][input_values]") {
  auto db = fresh_database();
  sql(db, "CREATE TABLE people (id int PRIMARY KEY, name text);");
  std::string input = write_file("inputs/deep_" + next_suffix() + ".jsonl",
                                 "{\"id\": 1, \"name\": \"Ann\"}\n{\"id\": 2, \"name\": " +
                                     std::string(30000, '[') + std::string(30000, ']') + "}\n");
  auto recipe = recipe_file("deep_jsonl", R"lua(
return {
  name = "deep-jsonl",
  input = "people",
  writes = { people = "*" },
  each = function(record) insert_if_absent("people", { id = record.id, name = "x" }) end,
}
)lua");
  auto run = run_recipe(db, recipe, {"--input", "people=" + input});
  INFO(run.output);
  CHECK(run.exit_code == 1);
  CHECK(message_lines(run.output).size() == 1);
  CHECK(mentions(run.output, std::filesystem::path(input).filename().string() + ":2: "));
  CHECK(mentions(run.output, "nested deeper than 200"));
  CHECK_FALSE(mentions(run.output, "panic"));
  CHECK(value(db, "SELECT count(*) FROM people") == "0");
}

TEST_CASE("a string holding a NUL byte is refused wherever it would become a parameter",
          "[e2e][input_values]") {
  auto db = fresh_database();
  sql(db,
      "CREATE TABLE names (id int PRIMARY KEY, name text, note text);"
      "INSERT INTO names VALUES (1, 'a', NULL);");
  struct Case {
    std::string call;
    std::vector<std::string> mentions;
  };
  const std::vector<Case> cases = {
      {"if read('names', { name = 'a\\0b' }) then audit('matched', {}) end", {"where.name"}},
      {"read_all('names', { name = { 'x', 'a\\0b' } })", {"where.name"}},
      {"patch_if_empty(row, 'note', 'x\\0y')", {"value for column 'note'"}},
      {"insert_if_absent('names', { id = 2, name = 'a\\0b' })", {"value for column 'name'"}},
      {"query('select count(*) as n from names where name = $1', 'a\\0b')", {"query parameter $1"}},
      {"map_id('person', 'a\\0b')", {"legacy id"}},
  };
  for (const auto& c : cases) {
    DYNAMIC_SECTION(c.call) {
      auto recipe = recipe_file("nul_byte",
                                "return {\n"
                                "  name = \"nul-byte\",\n"
                                "  table = \"names\",\n"
                                "  writes = { names = { \"id\", \"name\", \"note\" } },\n"
                                "  each = function(row)\n"
                                "    " +
                                    c.call +
                                    "\n"
                                    "  end,\n"
                                    "}\n");
      auto run = run_recipe(db, recipe);
      INFO(run.output);
      CHECK(run.exit_code == 1);
      CHECK(message_lines(run.output).size() == 1);
      CHECK(mentions(run.output, "nul_byte.lua:6"));
      CHECK(mentions(run.output, "NUL byte"));
      for (const auto& part : c.mentions) CHECK(mentions(run.output, part));
      CHECK(rows(db, "SELECT id, name, coalesce(note, 'NULL') FROM names ORDER BY id") ==
            std::vector<std::string>{"1|a|NULL"});
    }
  }
}

namespace {

// The permission bits of `path`, or -1 when it does not exist.
int mode_of(const std::string& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0 ? static_cast<int>(info.st_mode & 07777) : -1;
}

}  // namespace

TEST_CASE("report and audit files are created readable by their owner only",
          "[e2e][input_values]") {
  auto db = fresh_database();
  sql(db,
      "CREATE TABLE secrets (id int PRIMARY KEY, ssn text); INSERT INTO secrets VALUES (1, NULL);");
  auto recipe = recipe_file("private_files", R"lua(
return {
  name = "private-files",
  table = "secrets",
  writes = { secrets = { "ssn" } },
  each = function(row)
    patch_if_empty(row, "ssn", "123-45-6789")
    audit("filled", { ssn = "123-45-6789" })
  end,
}
)lua");
  std::string folder = scratch_folder() + "/private_" + next_suffix();
  std::filesystem::create_directories(folder);
  std::string json = folder + "/report.json", markdown = folder + "/report.md",
              audit = folder + "/audit.jsonl";
  auto run =
      run_recipe(db, recipe, {"--report", json, "--report", markdown, "--audit-file", audit});
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  CHECK(mode_of(json) == 0600);
  CHECK(mode_of(markdown) == 0600);
  CHECK(mode_of(audit) == 0600);

  SECTION("an existing file keeps the mode its owner gave it") {
    std::string shared = folder + "/shared_audit.jsonl";
    std::ofstream(shared) << "";
    ::chmod(shared.c_str(), 0640);
    auto again = run_recipe(db, recipe, {"--audit-file", shared});
    INFO(again.output);
    REQUIRE(again.exit_code == 0);
    CHECK(mode_of(shared) == 0640);
  }
}

TEST_CASE("a recipe name of 50,000 characters is refused with one clear line",
          "[e2e][input_values]") {
  auto db = fresh_database();
  sql(db, "CREATE TABLE items (id int PRIMARY KEY, note text);");
  auto recipe_named = [](const std::string& name) {
    return recipe_file("long_name", "return { name = '" + name +
                                        "', table = 'items', each = function(row) end }\n");
  };
  auto run = run_recipe(db, recipe_named(std::string(50000, 'a')));
  INFO(run.output);
  CHECK(run.exit_code == 1);
  CHECK(message_lines(run.output).size() == 1);
  CHECK(mentions(run.output, "long_name.lua: recipe name"));
  CHECK(mentions(run.output, "is 50000 characters long (at most 200)"));
  CHECK(run.output.size() < 1000);

  auto at_limit = run_recipe(db, recipe_named(std::string(200, 'b')));
  INFO(at_limit.output);
  CHECK(at_limit.exit_code == 0);
  auto nul = run_recipe(db, recipe_named("ok\\0evil"));
  INFO(nul.output);
  CHECK(nul.exit_code == 1);
  CHECK(mentions(nul.output, "must match [a-z0-9._-]+"));
}

TEST_CASE(
    "batch_size must be a whole number from 1 to 1000000, in the recipe and on the command line",
    "[e2e][input_values]") {
  auto db = fresh_database();
  sql(db,
      "CREATE TABLE items (id int PRIMARY KEY, note text); INSERT INTO items VALUES (1, NULL);");
  auto recipe_with = [](const std::string& batch_size) {
    return recipe_file("batch_size",
                       "return {\n  name = 'batch-size',\n  table = 'items',\n"
                       "  batch_size = " +
                           batch_size + ",\n  each = function(row) end,\n}\n");
  };
  const std::vector<std::pair<std::string, std::string>> refused = {
      {"1.5", "1.5"}, {"'10'", "'10'"},    {"0/0", "NaN"},           {"0", "0"},
      {"-1", "-1"},   {"1e7", "10000000"}, {"math.huge", "Infinity"}};
  for (const auto& [lua, shown] : refused) {
    DYNAMIC_SECTION("batch_size = " << lua) {
      auto run = run_recipe(db, recipe_with(lua));
      INFO(run.output);
      CHECK(run.exit_code == 1);
      CHECK(message_lines(run.output).size() == 1);
      CHECK(mentions(run.output,
                     "batch_size.lua: recipe field 'batch_size' must be a whole "
                     "number from 1 to 1000000 (got " +
                         shown + ")"));
      CHECK_FALSE(mentions(run.output, "--batch-size"));
    }
  }
  SECTION("batch_size = 1000000 is fine") {
    auto run = run_recipe(db, recipe_with("1000000"));
    INFO(run.output);
    CHECK(run.exit_code == 0);
  }
  for (const std::string option :
       {"1.5", "nan", "0x10", "1e3", "0", "1000001", "99999999999999999999"}) {
    DYNAMIC_SECTION("--batch-size " << option) {
      auto run = run_recipe(db, recipe_with("10"), {"--batch-size", option});
      INFO(run.output);
      CHECK(run.exit_code == 2);
      CHECK(mentions(run.output, "--batch-size: must be a whole number from 1 to 1000000 (got '" +
                                     option + "')"));
    }
  }
}
