// End to end: `host new recipe NAME --table T` writes a recipe and a test skeleton
// from the live catalog, which `host check` (online and offline) accepts and
// `host test` runs.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/e2e/e2e_helpers.hpp"

using namespace host::testing;
using namespace host::testing::e2e;

namespace {

std::string file_text(const std::string& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

}  // namespace

TEST_CASE("new recipe writes skeletons that check and test accept", "[e2e][scaffold]") {
  auto db = fresh_database();
  sql(db, R"sql(
CREATE TYPE phase_kind AS ENUM ('build', 'run');
CREATE TABLE phases (
  id bigint PRIMARY KEY,
  status text,
  title varchar(80) NOT NULL,
  budget numeric(10,2) DEFAULT 0,
  kind phase_kind,
  starts date,
  doubled bigint GENERATED ALWAYS AS (id * 2) STORED
);
CREATE SCHEMA crm;
CREATE TABLE crm."Accounts" (a int, b text, note text, PRIMARY KEY (a, b));
)sql");
  std::string folder = scratch_folder() + "/scaffold_" + next_suffix();
  auto made =
      run_host({"new", "recipe", "phases-fill", "--table", "phases", "--db", db, "--dir", folder});
  INFO(made.output);
  REQUIRE(made.exit_code == 0);
  std::string recipe = folder + "/phases-fill.lua";
  std::string test = folder + "/phases-fill_test.lua";
  REQUIRE(std::filesystem::exists(recipe));
  REQUIRE(std::filesystem::exists(test));
  std::string text = file_text(recipe);
  CHECK(mentions(text, "name        = \"phases-fill\""));
  CHECK(mentions(text, "table       = \"phases\""));
  CHECK(mentions(text, "key         = { \"id\" }"));
  CHECK(mentions(text, "--   title    character varying(80)  NOT NULL"));
  CHECK(mentions(text, "numeric(10,2)"));
  CHECK(mentions(text, "phase_kind"));
  CHECK(mentions(text, "GENERATED"));
  CHECK(mentions(text, "writes      = {\n"));

  auto check = run_host({"check", recipe, "--db", db});
  INFO(check.output);
  CHECK(check.exit_code == 0);
  auto offline = run_host({"check", "--offline", recipe});
  INFO(offline.output);
  CHECK(offline.exit_code == 0);
  auto tests = run_host({"test", folder});
  INFO(tests.output);
  CHECK(tests.exit_code == 0);
  CHECK(mentions(tests.output, "1 passed, 0 failed"));

  // Existing files are kept unless --force.
  auto again =
      run_host({"new", "recipe", "phases-fill", "--table", "phases", "--db", db, "--dir", folder});
  CHECK(again.exit_code == 2);
  CHECK(mentions(again.output, "already exists"));
  CHECK(run_host({"new", "recipe", "phases-fill", "--table", "phases", "--db", db, "--dir", folder,
                  "--force"})
            .exit_code == 0);

  // A composite key in another schema, with a name that needs quoting in SQL.
  auto composite = run_host({"new", "recipe", "accounts", "--table", "crm.\"Accounts\"", "--db", db,
                             "--dir", folder + "/crm"});
  INFO(composite.output);
  REQUIRE(composite.exit_code == 0);
  CHECK(mentions(file_text(folder + "/crm/accounts.lua"), "key         = { \"a\", \"b\" }"));
  CHECK(run_host({"check", folder + "/crm/accounts.lua", "--db", db}).exit_code == 0);
  tests = run_host({"test", folder + "/crm"});
  INFO(tests.output);
  CHECK(tests.exit_code == 0);
}

TEST_CASE("new recipe refuses bad names and unknown tables", "[e2e][scaffold]") {
  auto db = fresh_database();
  std::string folder = scratch_folder() + "/scaffold_" + next_suffix();
  auto bad = run_host({"new", "recipe", "Bad/Name", "--table", "t", "--db", db, "--dir", folder});
  CHECK(bad.exit_code == 2);
  auto missing = run_host({"new", "recipe", "x", "--table", "nope", "--db", db, "--dir", folder});
  INFO(missing.output);
  CHECK(missing.exit_code == 1);
  CHECK(mentions(missing.output, "nope"));
  CHECK_FALSE(std::filesystem::exists(folder + "/x.lua"));
  CHECK(run_host({"new", "recipe", "x", "--db", db}).exit_code == 2);  // --table is required
  CHECK(run_host({"new"}).exit_code == 2);
}
