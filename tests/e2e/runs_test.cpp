// End to end: the run history (`host runs`, `host show`) and resuming an
// interrupted batch-mode run (`host resume`).
#include <catch2/catch.hpp>
#include <fstream>
#include <set>

#include "tests/e2e/e2e_helpers.hpp"

using namespace host::testing;
using namespace host::testing::e2e;
using nlohmann::json;

namespace {

// The JSON document in a command's output (stdout and stderr are merged).
json json_in(const std::string& output, char open, char close) {
  auto start = output.find(open);
  auto end = output.rfind(close);
  if (start == std::string::npos || end == std::string::npos || end < start) return nullptr;
  return json::parse(output.substr(start, end - start + 1), nullptr, false);
}

const char* const k_fixture = R"sql(
CREATE TABLE b (id int PRIMARY KEY, raw text, n int);
INSERT INTO b SELECT g, g::text, NULL FROM generate_series(1, 6) g;
UPDATE b SET raw = 'abc' WHERE id = 5;
)sql";

const char* const k_copy_recipe = R"lua(
return {
  name = "copy-raw",
  table = "b",
  writes = { b = { "n" } },
  each = function(row)
    patch_if_empty(row, "n", row.raw)
    audit("seen", { id = row.id })
  end,
}
)lua";

}  // namespace

TEST_CASE("host runs --json and host show RUN_ID --json", "[e2e][runs]") {
  auto db = fresh_database();
  sql(db,
      "CREATE TABLE t (id int PRIMARY KEY, status text, n int); "
      "INSERT INTO t VALUES (1, NULL, NULL), (2, 'x', NULL)");
  auto good = recipe_file("runs_good", R"lua(
return {
  name = "runs-good",
  table = "t",
  writes = { t = { "status" } },
  each = function(row)
    patch_if_empty(row, "status", "Active")
    review(row, "status", "Maybe", "check")
  end,
}
)lua");
  auto bad = recipe_file("runs_bad", R"lua(
return {
  name = "runs-bad",
  table = "t",
  writes = { t = { "n" } },
  each = function(row) patch_if_empty(row, "n", "not a number") end,
}
)lua");
  auto ok_run = run_recipe(db, good);
  REQUIRE(ok_run.exit_code == 0);
  auto failed_run = run_recipe(db, bad);
  REQUIRE(failed_run.exit_code == 1);
  REQUIRE_FALSE(failed_run.run_id.empty());

  auto listed = run_host({"runs", "--json", "--db", db});
  INFO(listed.output);
  REQUIRE(listed.exit_code == 0);
  auto runs = json_in(listed.output, '[', ']');
  REQUIRE(runs.is_array());
  std::map<std::string, json> by_id;
  for (const auto& run : runs) {
    for (const char* key : {"run_id", "recipe", "mode", "status", "started_at"}) {
      INFO(key);
      CHECK(run.contains(key));
    }
    by_id[run.value("run_id", "")] = run;
  }
  REQUIRE(by_id.count(ok_run.run_id));
  REQUIRE(by_id.count(failed_run.run_id));
  CHECK(by_id[ok_run.run_id]["recipe"] == "runs-good");
  CHECK(by_id[ok_run.run_id]["mode"] == "commit");
  CHECK(by_id[ok_run.run_id]["status"] == "succeeded");
  CHECK_FALSE(by_id[ok_run.run_id]["started_at"].get<std::string>().empty());
  CHECK(by_id[failed_run.run_id]["recipe"] == "runs-bad");
  CHECK(by_id[failed_run.run_id]["status"] == "failed");

  auto shown = run_host({"show", ok_run.run_id, "--json", "--db", db});
  INFO(shown.output);
  REQUIRE(shown.exit_code == 0);
  auto report = json_in(shown.output, '{', '}');
  REQUIRE(report.is_object());
  for (const char* key :
       {"run_id", "recipe", "mode", "status", "stats", "changes", "review", "verify"}) {
    INFO(key);
    CHECK(report.contains(key));
  }
  for (const char* key : {"scanned", "patched", "protected", "inserted", "review", "errors",
                          "audit_events", "ids_mapped"}) {
    INFO(key);
    CHECK(report["stats"].contains(key));
  }
  CHECK(report["run_id"] == ok_run.run_id);
  CHECK(report["recipe"] == "runs-good");
  CHECK(report["mode"] == "commit");
  CHECK(report["status"] == "succeeded");
  CHECK(report["stats"] == ok_run.report["stats"]);
  CHECK(changes_by_column(report) == changes_by_column(ok_run.report));
  CHECK(changes_by_column(report) == json({{"t.status", 1}}));
  CHECK(report["review"] == ok_run.report["review"]);
  CHECK(report["review"].size() == 2);

  auto shown_failed = run_host({"show", failed_run.run_id, "--json", "--db", db});
  REQUIRE(shown_failed.exit_code == 0);
  auto failed_report = json_in(shown_failed.output, '{', '}');
  REQUIRE(failed_report.is_object());
  CHECK(failed_report["status"] == "failed");
}

TEST_CASE("batch mode: a run that failed on a bad value resumes after the fix", "[e2e][runs]") {
  auto db = fresh_database();
  sql(db, k_fixture);
  auto recipe = recipe_file("resume_subject", k_copy_recipe);

  auto first = run_recipe(db, recipe, {"--commit", "batch", "--batch-size", "2"});
  INFO(first.output);
  REQUIRE(first.exit_code == 1);
  REQUIRE_FALSE(first.run_id.empty());
  CHECK(first.output.find("'abc'") != std::string::npos);
  // Batches 1 and 2 committed; batch 3 (rows 5 and 6) was rolled back.
  CHECK(rows(db, "SELECT id, coalesce(n::text, 'NULL') FROM b ORDER BY id") ==
        std::vector<std::string>{"1|1", "2|2", "3|3", "4|4", "5|NULL", "6|NULL"});

  sql(db, "UPDATE b SET raw = '5' WHERE id = 5");
  auto resumed = host_with_report({"resume", first.run_id, "--db", db});
  INFO(resumed.output);
  REQUIRE(resumed.exit_code == 0);
  CHECK(resumed.run_id == first.run_id);
  CHECK(resumed.report["status"] == "succeeded");
  CHECK(rows(db, "SELECT id, n FROM b ORDER BY id") ==
        std::vector<std::string>{"1|1", "2|2", "3|3", "4|4", "5|5", "6|6"});

  // Every row processed once: in the stats, the ledger and the audit trail.
  CHECK(resumed.stat("scanned") == 6);
  CHECK(resumed.stat("patched") == 6);
  CHECK(resumed.stat("audit_events") == 6);
  CHECK(changes_by_column(resumed.report) == json({{"b.n", 6}}));
  CHECK(value(db,
              "SELECT count(*) || '|' || count(DISTINCT k->>0) FROM host_ledger.changes l, "
              "jsonb_array_elements(l.keys) k WHERE l.run_id = '" +
                  first.run_id + "'") == "6|6");
  CHECK(value(db,
              "SELECT count(*) || '|' || count(DISTINCT data->>'id') FROM host_ledger.audit "
              "WHERE run_id = '" +
                  first.run_id + "'") == "6|6");

  auto listed = run_host({"runs", "--json", "--db", db});
  auto runs = json_in(listed.output, '[', ']');
  REQUIRE(runs.is_array());
  REQUIRE(runs.size() == 1);
  CHECK(runs[0]["status"] == "succeeded");

  // Finished: nothing left to resume, and a new run changes nothing.
  CHECK(run_host({"resume", first.run_id, "--db", db}).exit_code != 0);
  auto again = run_recipe(db, recipe, {"--commit", "batch", "--batch-size", "2"});
  INFO(again.output);
  CHECK(again.exit_code == 0);
  CHECK(again.stat("patched") == 0);
}

TEST_CASE("batch mode: resuming with a changed recipe file is refused", "[e2e][runs]") {
  auto db = fresh_database();
  sql(db, k_fixture);
  auto recipe = recipe_file("resume_changed", k_copy_recipe);
  auto first = run_recipe(db, recipe, {"--commit", "batch", "--batch-size", "2"});
  INFO(first.output);
  REQUIRE(first.exit_code == 1);
  sql(db, "UPDATE b SET raw = '5' WHERE id = 5");
  {
    std::ofstream file(recipe, std::ios::app);
    file << "-- edited after the failure\n";
  }
  auto state = dump_user_tables(db);
  auto resumed = run_host({"resume", first.run_id, "--db", db});
  INFO(resumed.output);
  CHECK(resumed.exit_code != 0);
  CHECK(resumed.output.find("changed") != std::string::npos);
  CHECK(dump_user_tables(db) == state);
}

TEST_CASE("atomic mode: a failure on row 5 commits nothing, and there is nothing to resume",
          "[e2e][runs]") {
  auto db = fresh_database();
  sql(db, k_fixture);
  auto recipe = recipe_file("atomic_failure", k_copy_recipe);
  auto before = dump_user_tables(db);
  auto run = run_recipe(db, recipe, {"--batch-size", "2"});
  INFO(run.output);
  CHECK(run.exit_code == 1);
  CHECK(run.report["status"] == "failed");
  CHECK(dump_user_tables(db) == before);
  CHECK(value(db, "SELECT count(*) FROM host_ledger.changes") == "0");
  auto resumed = run_host({"resume", run.run_id, "--db", db});
  INFO(resumed.output);
  CHECK(resumed.exit_code != 0);
  CHECK(dump_user_tables(db) == before);
}
