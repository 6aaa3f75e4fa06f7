// End to end: `--log-format json` writes one JSON object per log line, with the
// run id, for log shippers.
#include <catch2/catch.hpp>

#include "tests/e2e/e2e_helpers.hpp"

using namespace host::testing;
using namespace host::testing::e2e;
using nlohmann::json;

namespace {

// The lines of `output` that are JSON objects, parsed; every such line must parse.
std::vector<json> json_lines(const std::string& output) {
  std::vector<json> lines;
  for (const auto& line : message_lines(output)) {
    if (line.empty() || line[0] != '{') continue;
    auto parsed = json::parse(line, nullptr, false);
    INFO(line);
    CHECK_FALSE(parsed.is_discarded());
    if (!parsed.is_discarded()) lines.push_back(parsed);
  }
  return lines;
}

}  // namespace

TEST_CASE("--log-format json: one object per line with the run id", "[e2e][log]") {
  auto db = fresh_database();
  sql(db, "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, NULL), (2, 'x')");
  auto recipe = recipe_file("logged", R"lua(
return {
  name = "logged",
  table = "t",
  writes = { t = { "v" } },
  each = function(row)
    log.info("row", row.id, "say \"hi\"")
    if row.v then log.warn("kept", row.id) end
    patch_if_empty(row, "v", "filled")
  end,
}
)lua");
  auto run = run_recipe(db, recipe, {"--log-format", "json"});
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  auto lines = json_lines(run.output);
  REQUIRE(lines.size() >= 4);
  bool row_line = false, warn_line = false;
  int with_run_id = 0;
  for (const auto& line : lines) {
    // null only before the run has an id; never another run's.
    CHECK((line["run_id"].is_null() || line["run_id"] == run.run_id));
    with_run_id += line["run_id"] == run.run_id ? 1 : 0;
    CHECK(line["time"].is_string());
    CHECK(line["level"].is_string());
    CHECK(line["message"].is_string());
    std::string message = line["message"];
    row_line = row_line || (line["level"] == "info" && mentions(message, "say \"hi\""));
    warn_line = warn_line || (line["level"] == "warning" && mentions(message, "kept 2"));
  }
  CHECK(with_run_id >= 4);  // run started, two recipe lines, finished
  CHECK(row_line);
  CHECK(warn_line);
  // No human "info: ..." lines beside them.
  for (const auto& line : message_lines(run.output)) CHECK(line.rfind("info: ", 0) != 0);

  // The option also goes before the command; without it, lines stay human.
  auto before = run_host({"--log-format", "json", "run", recipe, "--db", db, "--quiet"});
  CHECK(before.exit_code == 0);
  CHECK_FALSE(json_lines(before.output).empty());
  auto human = run_host({"run", recipe, "--db", db, "--quiet"});
  CHECK(human.exit_code == 0);
  CHECK(mentions(human.output, "info: [logged] row 1"));
}

TEST_CASE("--log-format json: errors are JSON lines too", "[e2e][log]") {
  auto db = fresh_database();
  auto result =
      run_host({"run", scratch_folder() + "/missing.lua", "--db", db, "--log-format", "json"});
  INFO(result.output);
  CHECK(result.exit_code == 2);
  auto lines = json_lines(result.output);
  REQUIRE(lines.size() == 1);  // the error is the last line, as in human mode
  CHECK(lines[0]["level"] == "error");
  CHECK(lines[0]["run_id"].is_null());
  CHECK(mentions(lines[0]["message"].get<std::string>(), "no such recipe file"));
  CHECK(message_lines(result.output).size() == 1);

  // A bad command line too, as one line.
  auto usage = run_host({"--log-format", "json", "run", "x.lua", "--batch-size", "0"});
  CHECK(usage.exit_code == 2);
  lines = json_lines(usage.output);
  REQUIRE(lines.size() == 1);
  CHECK(lines[0]["level"] == "error");
  CHECK(message_lines(usage.output).size() == 1);
  CHECK(run_host({"run", "x.lua", "--log-format", "xml"}).exit_code == 2);
}
