// End to end: `host check --offline RECIPE...` validates recipe files without a
// database: the recipe table, names, the shape of `writes`, the require graph.
#include <catch2/catch.hpp>

#include "tests/e2e/e2e_helpers.hpp"

using namespace host::testing;
using namespace host::testing::e2e;

namespace {

// No database anywhere: a connection attempt would fail, and the check must not make one.
const std::vector<std::string> k_no_database = {"DATABASE_URL=postgresql://nobody@127.0.0.1:1/none",
                                                "PGHOST=127.0.0.1", "PGPORT=1"};

host::ProcessResult check_offline(const std::vector<std::string>& recipes,
                                  const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args = {"check", "--offline"};
  args.insert(args.end(), recipes.begin(), recipes.end());
  args.insert(args.end(), extra.begin(), extra.end());
  return run_host(args, k_no_database);
}

const char* const k_good = R"lua(
local convert = require "convert"
return {
  name = "offline-good",
  table = "phases",
  key = "id",
  where = { status = EMPTY },
  writes = { phases = { "status" } },
  each = function(row)
    local ids = require "ids"   -- required lazily: checked all the same
    patch_if_empty(row, "status", convert.trim(" Active "), { reason = ids.legacy_key("a", 1) })
  end,
  verify = function() expect_count("phases", { status = EMPTY }, 0) end,
}
)lua";

}  // namespace

TEST_CASE("check --offline accepts a sound recipe without any database", "[e2e][check]") {
  auto recipe = recipe_file("good", k_good);
  auto result = check_offline({recipe});
  INFO(result.output);
  CHECK(result.exit_code == 0);
  CHECK(mentions(result.output, recipe + ": ok (offline"));
  CHECK(mentions(result.output, "2 required modules"));
  CHECK_FALSE(mentions(result.output, "unreachable"));
}

TEST_CASE("check --offline reports recipe problems with exit 1", "[e2e][check]") {
  auto missing_lazy = recipe_file("lazy", R"lua(
return {
  name = "lazy",
  table = "t",
  each = function(row)
    local rules = require "team.rules"
    rules.apply(row)
  end,
}
)lua");
  auto bad_writes = recipe_file("writes", R"lua(
return { name = "w", table = "t", writes = { t = 5 }, each = function() end }
)lua");
  auto empty_writes = recipe_file("emptyw", R"lua(
return { name = "w2", table = "t", writes = { t = {} }, each = function() end }
)lua");
  auto bad_name = recipe_file("name", R"lua(
return { name = "Bad Name", table = "t", each = function() end }
)lua");
  auto no_each = recipe_file("noeach", R"lua(
return { name = "no-each", table = "t" }
)lua");
  auto unknown_field = recipe_file("field", R"lua(
return { name = "f", table = "t", each = function() end, batchsize = 10 }
)lua");
  auto query_at_load = recipe_file("query", R"lua(
local statuses = query("select 'x' as s")
return { name = "q", table = "t", each = function() return statuses end }
)lua");
  auto syntax =
      recipe_file("syntax", "return { name = \"s\", table = \"t\", each = function( end }\n");

  struct Case {
    std::string recipe, expected;
  };
  const std::vector<Case> cases = {
      {missing_lazy, "lazy.lua:6: require \"team.rules\": module 'team.rules' not found"},
      {bad_writes, "writes.t must be a string or a list of strings"},
      {empty_writes, "writes.t lists no columns"},
      {bad_name, "recipe name 'Bad Name' must match [a-z0-9._-]+"},
      {no_each, "recipe field 'each' must be a function"},
      {unknown_field, "unknown recipe field 'batchsize'"},
      {query_at_load, "query.lua:2: query() needs a database"},
      {syntax, "syntax.lua:1:"},
  };
  for (const auto& c : cases) {
    auto result = check_offline({c.recipe});
    INFO(c.recipe << "\n" << result.output);
    CHECK(result.exit_code == 1);
    CHECK(mentions(result.output, c.expected));
    CHECK_FALSE(mentions(result.output, "unreachable"));
  }

  // Several at once: each is reported, and one bad recipe makes the exit 1.
  auto good = recipe_file("good", k_good);
  auto result = check_offline({good, bad_name, missing_lazy});
  INFO(result.output);
  CHECK(result.exit_code == 1);
  CHECK(mentions(result.output, good + ": ok"));
  CHECK(mentions(result.output, "Bad Name"));
  CHECK(mentions(result.output, "team.rules"));
}

TEST_CASE("check --offline follows the require graph through --lib and modules", "[e2e][check]") {
  std::string lib = scratch_folder() + "/offline_lib_" + next_suffix();
  write_file(lib.substr(scratch_folder().size() + 1) + "/team/rules.lua", R"lua(
local helpers = require "team.helpers"
return { apply = function(row) return helpers.tidy(row) end }
)lua");
  auto recipe = recipe_file("graph", R"lua(
local rules = require "team.rules"
return { name = "graph", table = "t", each = function(row) rules.apply(row) end }
)lua");
  // team.helpers is missing: the problem names the module file (and line) that requires it.
  auto result = check_offline({recipe}, {"--lib", lib});
  INFO(result.output);
  CHECK(result.exit_code == 1);
  CHECK(mentions(result.output, "team/rules.lua:2: module 'team.helpers' not found"));

  write_file(lib.substr(scratch_folder().size() + 1) + "/team/helpers.lua",
             "return { tidy = function(row) return row end }\n");
  result = check_offline({recipe}, {"--lib", lib});
  INFO(result.output);
  CHECK(result.exit_code == 0);

  // A module that does not compile is named with its line.
  write_file(lib.substr(scratch_folder().size() + 1) + "/team/helpers.lua", "return {\n");
  result = check_offline({recipe}, {"--lib", lib});
  INFO(result.output);
  CHECK(result.exit_code == 1);
  CHECK(mentions(result.output, "helpers.lua:"));
}

TEST_CASE("check --offline usage errors exit 2", "[e2e][check]") {
  auto result = check_offline({scratch_folder() + "/no_such_recipe.lua"});
  CHECK(result.exit_code == 2);
  CHECK(mentions(result.output, "no such recipe file"));
  CHECK(check_offline({}).exit_code == 2);
  auto good = recipe_file("good", k_good);
  CHECK(check_offline({good, scratch_folder() + "/missing.lua"}).exit_code == 2);
}

TEST_CASE("check without --offline takes several recipes against the database", "[e2e][check]") {
  auto db = fresh_database();
  sql(db, "CREATE TABLE phases (id int PRIMARY KEY, status text)");
  auto good = recipe_file("good", k_good);
  auto other = recipe_file("other", R"lua(
return { name = "other", table = "phases", writes = { phases = { "nope" } }, each = function() end }
)lua");
  auto result = run_host({"check", good, "--db", db});
  INFO(result.output);
  CHECK(result.exit_code == 0);
  result = run_host({"check", good, other, "--db", db});
  INFO(result.output);
  CHECK(result.exit_code == 1);
  CHECK(mentions(result.output, good + ": ok"));
  CHECK(mentions(result.output, "nope"));
}
