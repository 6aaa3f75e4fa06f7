// End to end: `host test` runs recipe test files on its own throwaway cluster,
// reports one line per test and `N passed, M failed`, and fails on any failure.
#include <catch2/catch.hpp>

#include "tests/e2e/e2e_helpers.hpp"

using namespace host::testing;
using namespace host::testing::e2e;

namespace {

const char* const k_recipe = R"lua(
return {
  name = "fill-status",
  input = "rows",
  writes = { items = { "id", "status" } },
  each = function(record)
    fill_from("items", { id = tonumber(record.id), status = vars.status or "Active" })
  end,
}
)lua";

const char* const k_tests = R"lua(
test("the recipe fills from a CSV given as NAME=PATH to host{}", function()
  sql("CREATE TABLE items (id int PRIMARY KEY, status text)")
  local result = host({ "run", "fill.lua", "--input", "rows=rows.csv", "--var", "status=Open" })
  eq(result.exit, 0, result.output)
  eq(sql("SELECT status FROM items ORDER BY id"), { { status = "Open" }, { status = "Open" } })
end)

test("each test starts from an empty database", function()
  eq(sql("SELECT count(*) AS n FROM pg_tables WHERE tablename = 'items'")[1].n, 0)
end)

test("a wrong expectation fails", function()
  sql("CREATE TABLE items (id int PRIMARY KEY, status text)")
  local result = run("fill.lua", { inputs = { rows = "rows.csv" } })
  eq(result.report.stats.inserted, 3, "inserted")
end)

test("a Lua error fails", function()
  local missing = nil
  return missing.field
end)
)lua";

}  // namespace

TEST_CASE("host test: passes, failures, exit code and relative paths", "[e2e][hosttest]") {
  std::string folder = "hosttest_" + next_suffix();
  write_file(folder + "/fill.lua", k_recipe);
  write_file(folder + "/rows.csv", "id\n1\n2\n");
  std::string tests = write_file(folder + "/fill_test.lua", k_tests);
  auto result = run_host({"test", std::filesystem::path(tests).parent_path().string()});
  INFO(result.output);
  CHECK(result.exit_code != 0);
  CHECK(result.output.find("2 passed, 2 failed") != std::string::npos);
  CHECK(result.output.find("ok   ") != std::string::npos);
  CHECK(result.output.find("the recipe fills from a CSV given as NAME=PATH") != std::string::npos);
  auto failed_expectation = result.output.find("FAIL");
  REQUIRE(failed_expectation != std::string::npos);
  CHECK(result.output.find("fill_test.lua:") != std::string::npos);
  CHECK(result.output.find("inserted") != std::string::npos);
  CHECK(result.output.find("a Lua error fails") != std::string::npos);
}

TEST_CASE("host test: all passing exits 0", "[e2e][hosttest]") {
  std::string folder = "hosttest_" + next_suffix();
  std::string tests = write_file(folder + "/one_test.lua", R"lua(
test("arithmetic", function() eq(1 + 1, 2) end)
)lua");
  auto result = run_host({"test", tests});
  INFO(result.output);
  CHECK(result.exit_code == 0);
  CHECK(result.output.find("1 passed, 0 failed") != std::string::npos);
}

TEST_CASE("host test: a test that breaches a limit does not poison the next", "[e2e][hosttest]") {
  std::string folder = "hosttest_" + next_suffix();
  write_file(folder + "/check/placeholder.txt", "a folder named like a subcommand\n");
  std::string tests = write_file(folder + "/limits_test.lua", R"lua(
test("a memory bomb is stopped", function()
  local s = "x" while true do s = s .. s end
end)

test("pcall works normally afterwards", function()
  local ok, err = pcall(error, "ordinary")
  eq(ok, false)
  expect(tostring(err):find("ordinary"), "the ordinary error comes back")
end)

test("a folder named like a subcommand is not taken for a path", function()
  local result = host({ "check", "--help" })
  eq(result.exit, 0, result.output)
end)
)lua");
  auto result = run_host({"test", tests});
  INFO(result.output);
  CHECK(result.output.find("2 passed, 1 failed") != std::string::npos);
  CHECK(result.output.find("FAIL") != std::string::npos);
  CHECK(result.output.find("a memory bomb is stopped") != std::string::npos);
}
