// End to end: the crash-point sweep. The host kills itself with SIGKILL at an
// exact place (host/crash_point.hpp) of a batch run, an atomic run, a resume or a
// revert; the test then resumes, re-runs or reverts again and proves the class of
// bug gone: the final tables equal an uninterrupted run's, every change is in the
// ledger exactly once, and the revert gives back the tables as they were.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <map>
#include <random>
#include <thread>
#include <utility>

#include "tests/e2e/e2e_helpers.hpp"

using namespace host::testing;
using namespace host::testing::e2e;

#ifdef HOST_FAULT_INJECTION

namespace {

// The table every sweep runs on, of `rows` rows (20 unless a test needs more chunks).
std::string fixture(int rows = 20) {
  return "CREATE TABLE items (id int PRIMARY KEY, status text, seconds int, minutes text, "
         "seen date);"
         "INSERT INTO items SELECT g, CASE WHEN g % 4 = 0 THEN 'human' END, NULL, "
         "(g * 1.5)::text, CASE WHEN g % 5 = 0 THEN date '2024-02-29' + g END "
         "FROM generate_series(1, " +
         std::to_string(rows) +
         ") g;"
         "CREATE TABLE copies (id int PRIMARY KEY, status text);"
         "INSERT INTO copies VALUES (8, 'kept');";
}

const char* const k_recipe = R"lua(
return {
  name = "sweep",
  table = "items",
  batch_size = 3,
  writes = { items = { "status", "seconds", "seen" }, copies = "*" },
  each = function(row)
    patch_if_empty(row, "status", "Active")
    patch_if_empty(row, "seconds", math.floor(tonumber(row.minutes) * 60))
    patch_if_empty(row, "seen", "2024-03-0" .. (row.id % 9 + 1))
    insert_if_absent("copies", { id = row.id, status = row.status or "Active" })
    audit("seen", { id = row.id })
  end,
}
)lua";

const char* const k_tables =
    "SELECT 'items', id::text, coalesce(status, '-'), coalesce(seconds::text, '-'), "
    "coalesce(seen::text, '-') FROM items UNION ALL "
    "SELECT 'copies', id::text, coalesce(status, '-'), '', '' FROM copies ORDER BY 1, 2";

// Two chunks of batches that overlap: twenty batches of 3 rows, then four.
const int k_two_chunk_rows = 70;

struct Expected {
  int fixture_rows;
  std::vector<std::string> before, after;
  std::string changes;  // "cells|rows" of the ledger of an uninterrupted run
  std::string audits;   // "events|distinct events" of an uninterrupted run
};

std::string audit_totals(const std::string& db, const std::string& run_id) {
  return value(db,
               "SELECT count(*) || '|' || count(DISTINCT data::text) FROM host_ledger.audit "
               "WHERE run_id = '" +
                   run_id + "'");
}

std::string ledger_totals(const std::string& db, const std::string& run_id) {
  return value(db,
               "SELECT coalesce(sum(jsonb_array_length(keys)) FILTER (WHERE op = 'update'), 0) "
               "|| '|' || coalesce(sum(jsonb_array_length(keys)) FILTER (WHERE op = 'insert'), 0) "
               "FROM host_ledger.changes WHERE run_id = '" +
                   run_id + "'");
}

// Every changed cell and inserted row appears once, whatever was killed and redone.
std::string duplicate_changes(const std::string& db, const std::string& run_id) {
  return value(db,
               "SELECT count(*) - count(DISTINCT (op, table_name, column_name, k.key::text)) "
               "FROM host_ledger.changes c, jsonb_array_elements(c.keys) k(key) WHERE run_id = '" +
                   run_id + "'");
}

// An uninterrupted run's outcome, once per recipe text (`recipe` is a file of it).
const Expected& expected(const char* recipe_text, const std::string& recipe,
                         int fixture_rows = 20) {
  static std::map<std::pair<const char*, int>, Expected> found;
  auto known = found.find({recipe_text, fixture_rows});
  if (known != found.end()) return known->second;
  auto db = fresh_database();
  sql(db, fixture(fixture_rows));
  Expected e;
  e.fixture_rows = fixture_rows;
  e.before = rows(db, k_tables);
  auto run = run_recipe(db, recipe, {"--commit", "batch"});
  REQUIRE(run.exit_code == 0);
  e.after = rows(db, k_tables);
  e.changes = ledger_totals(db, run.run_id);
  e.audits = audit_totals(db, run.run_id);
  return found.emplace(std::make_pair(recipe_text, fixture_rows), std::move(e)).first->second;
}

// `host resume`, again while the killed process's session is still being torn down.
host::ProcessResult resume(const std::string& db, const std::string& run_id,
                           const std::vector<std::string>& environment = {}) {
  for (int attempt = 0;; ++attempt) {
    auto result = run_host({"resume", run_id, "--db", db, "--quiet"}, environment);
    if (result.exit_code != 2 || !mentions(result.output, "being processed") || attempt == 50)
      return result;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

std::string crash_at(const std::string& point, int hit) {
  return "HOST_CRASH_AT=" + point + ":" + std::to_string(hit);
}

// The run's id, from the ledger: a killed process may not have printed it whole.
std::string only_run(const std::string& db) {
  return value(db, "SELECT run_id FROM host_ledger.runs ORDER BY started_at DESC LIMIT 1");
}

void check_final_and_revert(const std::string& db, const std::string& run_id, const Expected& e) {
  CHECK(rows(db, k_tables) == e.after);
  CHECK(ledger_totals(db, run_id) == e.changes);
  CHECK(duplicate_changes(db, run_id) == "0");
  CHECK(audit_totals(db, run_id) == e.audits);
  auto revert = run_host({"revert", run_id, "--db", db});
  INFO(revert.output);
  CHECK(revert.exit_code == 0);
  CHECK(rows(db, k_tables) == e.before);
}

// A batch run of `recipe` killed at the `hit`-th `point`, resumed, then checked and reverted.
void kill_resume_and_check(const std::string& recipe, const std::string& point, int hit,
                           const Expected& e) {
  auto db = fresh_database();
  sql(db, fixture(e.fixture_rows));
  auto killed =
      run_host({"run", recipe, "--db", db, "--commit", "batch", "--quiet"}, {crash_at(point, hit)});
  INFO(killed.output);
  REQUIRE(killed.exit_code == 137);
  std::string run_id = only_run(db);
  auto resumed = resume(db, run_id);
  INFO(resumed.output);
  REQUIRE(resumed.exit_code == 0);
  check_final_and_revert(db, run_id, e);
}

}  // namespace

TEST_CASE("crash-point sweep: kill -9 of a batch run at every point, then resume", "[e2e][crash]") {
  auto recipe = recipe_file("sweep", k_recipe);
  const Expected& e = expected(k_recipe, recipe);
  std::vector<std::pair<std::string, int>> points = {
      {"batch_processed", 1},    {"batch_processed", 2},    {"batch_processed", 4},
      {"batch_processed", 7},    {"batch_flushed", 1},      {"batch_flushed", 2},
      {"batch_flushed", 4},      {"batch_flushed", 7},      {"batch_checkpointed", 1},
      {"batch_checkpointed", 4}, {"batch_checkpointed", 7}, {"batch_committed", 1},
      {"batch_committed", 4},    {"batch_committed", 7},    {"run_finishing", 1}};
  // A few more, from a seed that can be changed to explore (CRASH_SWEEP_SEED).
  const char* seed_text = std::getenv("CRASH_SWEEP_SEED");
  std::mt19937 random(seed_text ? static_cast<unsigned>(std::atoi(seed_text)) : 20261201u);
  const char* const names[] = {"batch_processed", "batch_flushed", "batch_checkpointed",
                               "batch_committed"};
  for (int i = 0; i < 4; ++i)
    points.emplace_back(names[random() % 4], static_cast<int>(random() % 7) + 1);
  for (const auto& [point, hit] : points) {
    DYNAMIC_SECTION(point << ":" << hit) { kill_resume_and_check(recipe, point, hit, e); }
  }
}

TEST_CASE("crash-point sweep: kill -9 of an atomic run leaves nothing; a re-run does it all",
          "[e2e][crash]") {
  auto recipe = recipe_file("sweep_atomic", k_recipe);
  const Expected& e = expected(k_recipe, recipe);
  const std::vector<std::pair<std::string, int>> points = {
      {"batch_processed", 1}, {"batch_processed", 3}, {"batch_processed", 5},
      {"batch_flushed", 2},   {"batch_flushed", 7},   {"run_finishing", 1}};
  for (const auto& [point, hit] : points) {
    DYNAMIC_SECTION(point << ":" << hit) {
      auto db = fresh_database();
      sql(db, fixture());
      auto killed = run_host({"run", recipe, "--db", db, "--commit", "atomic", "--quiet"},
                             {crash_at(point, hit)});
      REQUIRE(killed.exit_code == 137);
      CHECK(rows(db, k_tables) == e.before);
      CHECK(ledger_rows(db, "changes") == 0);
      auto again = run_recipe(db, recipe, {"--commit", "atomic"});
      INFO(again.output);
      REQUIRE(again.exit_code == 0);
      check_final_and_revert(db, again.run_id, e);
    }
  }
}

TEST_CASE("crash-point sweep: a resume killed again and again still ends exact", "[e2e][crash]") {
  auto recipe = recipe_file("sweep_chain", k_recipe);
  const Expected& e = expected(k_recipe, recipe);
  auto db = fresh_database();
  sql(db, fixture());
  auto killed = run_host({"run", recipe, "--db", db, "--commit", "batch", "--quiet"},
                         {crash_at("batch_committed", 2)});
  REQUIRE(killed.exit_code == 137);
  std::string run_id = only_run(db);
  for (const char* point : {"batch_flushed", "batch_committed", "batch_checkpointed"}) {
    INFO(point);
    CHECK(resume(db, run_id, {crash_at(point, 1)}).exit_code == 137);
  }
  auto resumed = resume(db, run_id);
  INFO(resumed.output);
  REQUIRE(resumed.exit_code == 0);
  check_final_and_revert(db, run_id, e);
}

TEST_CASE("crash-point sweep: kill -9 of a revert undoes nothing; reverting again is exact",
          "[e2e][crash]") {
  auto recipe = recipe_file("sweep_revert", k_recipe);
  const Expected& e = expected(k_recipe, recipe);
  const std::vector<std::pair<std::string, int>> points = {{"revert_change", 1},
                                                           {"revert_change", 2},
                                                           {"revert_change", 5},
                                                           {"revert_change", 12},
                                                           {"revert_committing", 1}};
  for (const auto& [point, hit] : points) {
    DYNAMIC_SECTION(point << ":" << hit) {
      auto db = fresh_database();
      sql(db, fixture());
      auto run = run_recipe(db, recipe, {"--commit", "batch"});
      REQUIRE(run.exit_code == 0);
      auto killed = run_host({"revert", run.run_id, "--db", db}, {crash_at(point, hit)});
      REQUIRE(killed.exit_code == 137);
      CHECK(rows(db, k_tables) == e.after);
      CHECK(value(db, "SELECT reverted_at IS NULL FROM host_ledger.runs") == "t");
      auto revert = run_host({"revert", run.run_id, "--db", db});
      INFO(revert.output);
      CHECK(revert.exit_code == 0);
      CHECK(rows(db, k_tables) == e.before);
    }
  }
}

TEST_CASE("crash-point sweep: reverting a killed run undoes its committed batches for good",
          "[e2e][crash]") {
  auto recipe = recipe_file("sweep_interrupted", k_recipe);
  const Expected& e = expected(k_recipe, recipe);
  auto db = fresh_database();
  sql(db, fixture());
  auto killed = run_host({"run", recipe, "--db", db, "--commit", "batch", "--quiet"},
                         {crash_at("batch_committed", 3)});
  REQUIRE(killed.exit_code == 137);
  std::string run_id = only_run(db);
  host::ProcessResult revert;
  for (int attempt = 0; attempt < 50; ++attempt) {
    revert = run_host({"revert", run_id, "--db", db});
    if (revert.exit_code != 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  INFO(revert.output);
  REQUIRE(revert.exit_code == 0);
  CHECK(rows(db, k_tables) == e.before);
  auto resumed = resume(db, run_id);
  CHECK(resumed.exit_code == 2);
  CHECK(rows(db, k_tables) == e.before);
}

// Patches of the scanned rows only: each batch is written while `each` runs over
// the next, read in the batch's transaction, and the last batch of the first chunk
// claims the second chunk and reads its first batch in its own transaction.
const char* const k_patch_recipe = R"lua(
return {
  name = "sweep-overlap",
  table = "items",
  batch_size = 3,
  writes = { items = { "status", "seconds", "seen" } },
  each = function(row)
    patch_if_empty(row, "status", "Active")
    patch_if_empty(row, "seconds", math.floor(tonumber(row.minutes) * 60))
    patch_if_empty(row, "seen", "2024-03-0" .. (row.id % 9 + 1))
    audit("seen", { id = row.id })
  end,
}
)lua";

TEST_CASE("crash-point sweep: kill -9 of a run whose batches overlap, then resume",
          "[e2e][crash]") {
  auto recipe = recipe_file("sweep_overlap", k_patch_recipe);
  const Expected& e = expected(k_patch_recipe, recipe, k_two_chunk_rows);
  REQUIRE(e.changes == "179|0");
  REQUIRE(e.audits == "70|70");
  // 70 rows in batches of 3: chunks of 60 and 10 rows; batch 20 ends the first.
  // A batch read beside the one before passes batch_processed before it, so that
  // point's 11th hit is batch 20 (19 committed) and its 12th batch 21 (20 committed).
  const std::vector<std::pair<std::string, int>> points = {
      {"batch_processed", 2},     {"batch_processed", 11}, {"batch_processed", 12},
      {"batch_flushed", 19},      {"batch_flushed", 20},   {"batch_flushed", 21},
      {"batch_checkpointed", 20}, {"batch_committed", 19}, {"batch_committed", 20},
      {"batch_committed", 21},    {"run_finishing", 1}};
  for (const auto& [point, hit] : points) {
    DYNAMIC_SECTION(point << ":" << hit) { kill_resume_and_check(recipe, point, hit, e); }
  }
}

// A COMMIT that took effect, but whose result the connection lost: the worker
// sees a lost connection, re-opens it and tries the batch again. Its chunk's row
// says the batch is done; the worker must go on after it, not do it again (each()
// twice over its rows: audit events twice, its cells counted as protected and the
// chunk's counters overwritten without them).
TEST_CASE("a batch whose COMMIT landed but lost its connection is not done again", "[e2e][crash]") {
  auto stats_of = [](const std::string& db, const std::string& run_id) {
    return value(db,
                 "SELECT sum((stats->>'patched')::int) || '|' || sum((stats->>'protected')::int) "
                 "|| '|' || sum(batches) FROM host_ledger.chunks WHERE run_id = '" +
                     run_id + "'");
  };
  for (const char* text : {k_recipe, k_patch_recipe}) {
    auto recipe = recipe_file("unconfirmed", text);
    const Expected& e = expected(text, recipe);
    auto reference_db = fresh_database();
    sql(reference_db, fixture());
    auto reference = run_recipe(reference_db, recipe, {"--commit", "batch"});
    REQUIRE(reference.exit_code == 0);
    const std::string reference_stats = stats_of(reference_db, reference.run_id);
    // Overlapped batches, and one at a time (a throttled run does not overlap).
    for (const std::vector<std::string>& extra :
         {std::vector<std::string>{}, std::vector<std::string>{"--max-rate", "100000"}}) {
      for (int hit : {1, 2, 5}) {
        DYNAMIC_SECTION((text == k_recipe ? "inserts" : "patches")
                        << (extra.empty() ? ", overlapped" : ", throttled") << ", commit " << hit) {
          auto db = fresh_database();
          sql(db, fixture());
          std::vector<std::string> args = {"run", recipe, "--db", db, "--commit", "batch"};
          args.insert(args.end(), extra.begin(), extra.end());
          auto run =
              run_host(args, {"HOST_FAIL_AT=batch_commit_unconfirmed:" + std::to_string(hit)});
          INFO(run.output);
          REQUIRE(run.exit_code == 0);
          // The fifth batch ends the first chunk: the retry finds the chunk done and
          // claims the next one.
          if (hit != 5) CHECK(mentions(run.output, "was committed; going on after it"));
          std::string run_id = only_run(db);
          CHECK(ledger_status(db, run_id) == "succeeded");
          CHECK(stats_of(db, run_id) == reference_stats);
          check_final_and_revert(db, run_id, e);
        }
      }
    }
  }
}

// The same at the run's end: its last COMMIT took effect, the connection lost the
// result. The run succeeded and says so; before, its ledger row was overwritten as
// failed and it exited as if nothing had been committed.
TEST_CASE("a run whose last COMMIT landed but lost its connection ends as succeeded",
          "[e2e][crash]") {
  auto recipe = recipe_file("unconfirmed_end", k_recipe);
  const Expected& e = expected(k_recipe, recipe);
  for (const char* mode : {"atomic", "batch"}) {
    DYNAMIC_SECTION(mode) {
      auto db = fresh_database();
      sql(db, fixture());
      std::string report = scratch_folder() + "/report_" + next_suffix() + ".json";
      auto run = run_host({"run", recipe, "--db", db, "--commit", mode, "--report", report},
                          {"HOST_FAIL_AT=run_commit_unconfirmed:1"});
      INFO(run.output);
      REQUIRE(run.exit_code == 0);
      CHECK(mentions(run.output, "lost its connection, but it had taken effect"));
      CHECK(read_json(report)["status"] == "succeeded");
      std::string run_id = only_run(db);
      CHECK(ledger_status(db, run_id) == "succeeded");
      check_final_and_revert(db, run_id, e);
    }
  }
}

// An exception in the worker's thread while batches are still being written on
// other threads (a chain: the batch in hand, the one beside it, the one behind):
// before, it unwound past them, destroying what they wrote from, and the
// process crashed or wrote a batch from freed memory. Now the run fails once the
// writers have ended, with every committed batch whole in the ledger, and a
// resume finishes it as an uninterrupted run would.
TEST_CASE("an exception while a chain of batches is in flight waits for its writers",
          "[e2e][crash]") {
  auto recipe = recipe_file("unwind_chain", R"lua(
return {
  name = "unwind-chain", table = "t", commit = "batch", batch_size = 10,
  writes = { t = { "v" } },
  each = function(row)
    if row.id % 10 == 1 and row.id > 10 then patch_if_empty(row, "v", "x" .. row.id) end
  end,
}
)lua");
  for (int hit : {3, 8, 20}) {
    DYNAMIC_SECTION("failing at batch_posted:" << hit) {
      auto db = fresh_database();
      sql(db, slow_chain_table());
      auto failed = run_host({"run", recipe, "--db", db, "--quiet"},
                             {"HOST_FAIL_AT=batch_posted:" + std::to_string(hit)});
      INFO(failed.output);
      REQUIRE(failed.exit_code == 1);
      std::string run_id = only_run(db);
      // What committed is in the ledger, cell for cell, and nothing else changed.
      CHECK(value(db, "SELECT count(v) FROM t") ==
            value(db, "SELECT coalesce(sum(cardinality(new_values)), 0) FROM "
                      "host_ledger.changes WHERE run_id = '" + run_id + "'"));
      auto resumed = resume(db, run_id);
      INFO(resumed.output);
      REQUIRE(resumed.exit_code == 0);
      CHECK(value(db, "SELECT count(*) FILTER (WHERE v = 'x' || id) || ' ' || count(v) FROM t") ==
            "49 49");
      CHECK(value(db, "SELECT sum(cardinality(new_values)) FROM host_ledger.changes "
                      "WHERE run_id = '" + run_id + "'") == "49");
      auto reverted = run_host({"revert", run_id, "--db", db});
      INFO(reverted.output);
      REQUIRE(reverted.exit_code == 0);
      CHECK(value(db, "SELECT count(v) FROM t") == "0");
    }
  }
}

#endif
