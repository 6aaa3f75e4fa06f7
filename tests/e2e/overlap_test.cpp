// End to end: a batch run writes each batch on a thread of its own while `each`
// already runs over the next batch (host/batch_worker.cpp). What the recipe sees
// must stay what it would see batch after batch: a read() of a row the batch
// before patched sees the patch, a table whose writes reach other rows (a trigger)
// is worked batch after batch, and the dry run, the ledger and revert agree.
#include <catch2/catch.hpp>

#include "tests/e2e/e2e_helpers.hpp"

using namespace host::testing;
using namespace host::testing::e2e;

namespace {

// Only row 1 has a value; row n reads row n - 10 (the batch before, with batches
// of 10) and extends its value. Batch after batch, every row 10k + 1 gets one.
const char* const k_chain = R"sql(
CREATE TABLE chain (id int PRIMARY KEY, value text);
INSERT INTO chain SELECT g, CASE WHEN g = 1 THEN 'x' END FROM generate_series(1, 500) g;
)sql";

const char* const k_chain_recipe = R"lua(
return {
  name = "chain", table = "chain", commit = "batch", batch_size = 10,
  writes = { chain = { "value" } },
  each = function(row)
    if row.id <= 10 then return end
    local before = read("chain", { id = row.id - 10 })
    if before and before.value then patch_if_empty(row, "value", before.value .. "+") end
  end,
}
)lua";

// What a run batch after batch leaves: row 10k + 1 holds 'x' and k plus signs.
const char* const k_chain_expected =
    "SELECT count(*) FROM chain WHERE (id % 10 = 1 AND value IS DISTINCT FROM "
    "'x' || repeat('+', (id - 1) / 10)) OR (id % 10 <> 1 AND value IS NOT NULL)";

// Runs a variant of the chain recipe and checks it left what batch after batch would.
void check_chain_variant(const std::string& db, const std::string& stem,
                         const std::string& recipe_text) {
  auto run = run_recipe(db, recipe_file(stem, recipe_text));
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  CHECK(value(db, k_chain_expected) == "0");
  CHECK(run.stat("patched") == 49);
}

}  // namespace

TEST_CASE("overlap: a read() sees what the batch before wrote, as batch after batch would",
          "[overlap][e2e]") {
  auto db = fresh_database();
  sql(db, k_chain);
  auto recipe = recipe_file("overlap_chain", k_chain_recipe);
  auto dry = run_recipe(db, recipe, {"--dry-run"});
  INFO(dry.output);
  REQUIRE(dry.exit_code == 0);
  auto run = run_recipe(db, recipe);
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  CHECK(value(db, k_chain_expected) == "0");
  CHECK(run.stat("patched") == 49);
  CHECK(dry.stat("patched") == run.stat("patched"));
  CHECK(value(db,
              "SELECT sum(jsonb_array_length(keys)) FROM host_ledger.changes WHERE run_id = '" +
                  run.run_id + "'") == "49");
  auto reverted = run_host({"revert", run.run_id, "--db", db});
  INFO(reverted.output);
  REQUIRE(reverted.exit_code == 0);
  CHECK(value(db, "SELECT count(*) FROM chain WHERE value IS NOT NULL") == "1");
}

// Two batches are written at once, the second on another connection
// (host/batch_worker.cpp, PairedBatch), while `each` runs over a third. Every
// batch fills its first row, slowly (a CHECK that sleeps on a value); the
// batches that read nothing come second in a pair, and the third batch reads the
// row the second filled before the second has committed: the read must wait for
// that commit, as it would batch after batch, and never see the row empty.
TEST_CASE("overlap: a read() waits for the batch written beside the one before",
          "[overlap][e2e]") {
  auto db = fresh_database();
  // 10 batches of 10 rows, in chunks of 5 batches.
  sql(db, std::string(k_slow_pass) +
              "CREATE TABLE chain (id int PRIMARY KEY, value text "
              "CHECK (value IS NULL OR slow_pass(0.2))); "
              "INSERT INTO chain SELECT g, NULL FROM generate_series(1, 100) g");
  auto recipe = recipe_file("overlap_pairs", R"lua(
return {
  name = "pairs", table = "chain", commit = "batch", batch_size = 10,
  writes = { chain = { "value" } },
  each = function(row)
    if row.id % 10 ~= 1 then return end
    local batch = math.floor(row.id / 10)
    if batch == 0 then return patch_if_empty(row, "value", "first") end
    if batch % 2 == 1 then return patch_if_empty(row, "value", "plain") end
    local before = read("chain", { id = row.id - 10 })
    patch_if_empty(row, "value", before.value and "after " .. before.value or "stale")
  end,
}
)lua");
  auto run = run_recipe(db, recipe);
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  CHECK(run.stat("patched") == 10);
  CHECK(value(db, "SELECT string_agg(id || '=' || value, ',' ORDER BY id) FROM chain") ==
        "1=first,11=plain,21=after plain,31=plain,41=after plain,51=plain,61=after plain,"
        "71=plain,81=after plain,91=plain");
}

// Batches form a chain (PairedBatch): the batch after a pair is written before
// the pair's second has committed, and records its progress after it. A chunk's
// last batch claims the next chunk, which updates the worker's row the batch
// behind it records in: claimed first, the two waited on each other until the
// lock timeout, at every chunk's end.
TEST_CASE("overlap: a chain of batches crosses chunk ends without waiting on itself",
          "[overlap][e2e]") {
  auto db = fresh_database();
  // 50 batches of 10 rows: chunks of 20, 20 and 10 batches. The first batch
  // writes nothing and `each` takes long over the second, which is then written
  // alone: the chain's batches on the session's connection are the even ones, and
  // it reaches the chunk's last batch.
  sql(db, slow_chain_table());
  auto recipe = recipe_file("overlap_chain", R"lua(
return {
  name = "chain-of-batches", table = "t", commit = "batch", batch_size = 10,
  writes = { t = { "v" } },
  each = function(row)
    if row.id == 11 then
      local n = 0
      for i = 1, 3000000 do n = n + i end
    end
    if row.id % 10 == 1 and row.id > 10 then patch_if_empty(row, "v", "x" .. row.id) end
  end,
}
)lua");
  auto run = run_recipe(db, recipe, {"--lock-timeout", "2000"});
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  CHECK(!mentions(run.output, "55P03"));
  CHECK(run.report["timing"]["retries"].get<long long>() == 0);
  CHECK(run.stat("patched") == 49);
  CHECK(value(db, "SELECT count(*) FILTER (WHERE v = 'x' || id) || ' ' || count(v) FROM t") ==
        "49 49");
  // Every batch recorded once, in order: each chunk's progress ends at its last key.
  CHECK(value(db, "SELECT string_agg(batches || ':' || done || ':' || (after_key->>0), ',' "
                  "ORDER BY chunk) FROM host_ledger.chunks WHERE run_id = '" +
                      run.run_id + "'") == "20:true:200,20:true:400,10:true:500");
  CHECK(value(db, "SELECT sum(cardinality(new_values)) FROM host_ledger.changes WHERE run_id = '" +
                      run.run_id + "'") == "49");
}

// The chain goes on only into a batch whose writes all patch its own rows. A
// batch that patched a row of the batch beside it locked that row first, then
// waited for the batch beside to commit, which waited for the lock: until the
// lock timeout, or forever with --lock-timeout 0.
TEST_CASE("overlap: a batch that patches a row of the batch beside is not chained to it",
          "[overlap][e2e]") {
  auto db = fresh_database();
  // Batch 1's one write is slow, so batch 2 is written beside it; batch 2's writes
  // are slower still, so it has not reached row 20 when batch 1 commits and batch
  // 3, whose row 21 patches row 20, would be written.
  sql(db, std::string(k_slow_pass) +
              "CREATE TABLE t (id int PRIMARY KEY, v text, w text, CHECK (v IS NULL OR "
              "slow_pass(CASE WHEN id = 1 THEN 0.2 WHEN id BETWEEN 11 AND 19 THEN 0.1 "
              "ELSE 0 END))); "
              "INSERT INTO t SELECT g, NULL, NULL FROM generate_series(1, 40) g");
  auto recipe = recipe_file("overlap_named_row", R"lua(
return {
  name = "named-row-beside", table = "t", commit = "batch", batch_size = 10,
  writes = { t = { "v", "w" } },
  each = function(row)
    if row.id == 1 or (row.id > 10 and row.id <= 20) then
      patch_if_empty(row, "v", "x" .. row.id)
    end
    -- Named by its key, not read(): a read waits for the connection the batches
    -- beside are written on, which would keep the chain from going on anyway.
    if row.id == 21 then patch_if_empty({ id = 20 }, "w", "from 21", { table = "t" }) end
  end,
}
)lua");
  auto run = run_recipe(db, recipe, {"--lock-timeout", "3000"});
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  CHECK(!mentions(run.output, "55P03"));
  CHECK(run.report["timing"]["retries"].get<long long>() == 0);
  CHECK(value(db, "SELECT count(*) FILTER (WHERE v = 'x' || id) || ' ' || count(v) || ' ' || "
                  "string_agg(id || '=' || w, ',') FROM t") == "11 11 20=from 21");
  CHECK(value(db, "SELECT sum(cardinality(new_values)) FROM host_ledger.changes WHERE run_id = '" +
                      run.run_id + "'") == "12");
}

// The batch written beside the one before (PairedBatch) writes a value the
// database refuses: the run ends as batch after batch would, with the batch
// before committed, the refused one rolled back and named, and nothing after.
TEST_CASE("overlap: a value refused in the batch written beside the one before ends the run",
          "[overlap][e2e]") {
  auto db = fresh_database();
  // The first batch's writes take long, so that the second is written beside it.
  sql(db, std::string(k_slow_pass) +
              "CREATE TABLE t (id int PRIMARY KEY, n int, "
              "CHECK (n IS NULL OR id > 10 OR slow_pass(0.1)), CHECK (n < 100)); "
              "INSERT INTO t SELECT g, NULL FROM generate_series(1, 50) g");
  auto recipe = recipe_file("overlap_pair_refused", R"lua(
return {
  name = "pair-refused", table = "t", commit = "batch", batch_size = 10,
  writes = { t = { "n" } },
  each = function(row)
    patch_if_empty(row, "n", row.id == 15 and 500 or row.id)
  end,
}
)lua");
  auto run = run_recipe(db, recipe);
  INFO(run.output);
  CHECK(run.exit_code == 1);
  CHECK(mentions(run.output, "overlap_pair_refused.lua:6"));
  CHECK(mentions(run.output, "id=15"));
  CHECK(value(db, "SELECT count(*) || ' ' || max(id) FROM t WHERE n IS NOT NULL") == "10 10");
  CHECK(value(db,
              "SELECT sum(cardinality(new_values)) FROM host_ledger.changes WHERE run_id = '" +
                  run.run_id + "'") == "10");
  auto reverted = run_host({"revert", run.run_id, "--db", db});
  INFO(reverted.output);
  REQUIRE(reverted.exit_code == 0);
  CHECK(value(db, "SELECT count(*) FROM t WHERE n IS NOT NULL") == "0");
}

// A unique index over a written column: the batch written beside the one before
// could write a value first and make that one wait for it, while it waits for
// that one to commit (a cycle only the lock timeout would end, try after try).
// Such a table's batches are written one after the other: the duplicate is
// refused at once, as batch after batch.
TEST_CASE("overlap: batches of a table with a unique written column are not written in pairs",
          "[overlap][e2e]") {
  auto db = fresh_database();
  // The first batch's writes take long, its duplicate comes last in it.
  sql(db, std::string(k_slow_pass) +
              "CREATE TABLE t (id int PRIMARY KEY, code text UNIQUE, "
              "CHECK (code IS NULL OR id > 10 OR slow_pass(0.05))); "
              "INSERT INTO t SELECT g, NULL FROM generate_series(1, 50) g");
  auto recipe = recipe_file("overlap_unique", R"lua(
return {
  name = "unique-code", table = "t", commit = "batch", batch_size = 10,
  writes = { t = { "code" } },
  each = function(row)
    patch_if_empty(row, "code", (row.id == 10 or row.id == 11) and "same" or "c" .. row.id)
  end,
}
)lua");
  auto run = run_recipe(db, recipe, {"--lock-timeout", "3000"});
  INFO(run.output);
  CHECK(run.exit_code == 1);
  CHECK(mentions(run.output, "id=11"));
  CHECK(!mentions(run.output, "55P03"));
  CHECK(value(db, "SELECT count(*) || ' ' || max(id) FROM t WHERE code IS NOT NULL") == "10 10");
}

// The batch written beside the one before records its progress in the chunk's
// row, which that one changed after the second's snapshot was taken: its
// connection works in READ COMMITTED whatever the database's default.
TEST_CASE("overlap: pairs of batches under a default of REPEATABLE READ", "[overlap][e2e]") {
  auto db = fresh_database();
  sql(db, std::string(k_slow_pass) +
              "CREATE TABLE t (id int PRIMARY KEY, v text CHECK (v IS NULL OR slow_pass(0.05))); "
              "INSERT INTO t SELECT g, NULL FROM generate_series(1, 50) g");
  sql(db, "DO $$BEGIN EXECUTE format('ALTER DATABASE %I SET default_transaction_isolation = "
          "''repeatable read''', current_database()); END$$");
  auto recipe = recipe_file("overlap_repeatable_read", R"lua(
return {
  name = "repeatable-read", table = "t", commit = "batch", batch_size = 10,
  writes = { t = { "v" } },
  each = function(row)
    if row.id % 10 == 1 then patch_if_empty(row, "v", "x" .. row.id) end
  end,
}
)lua");
  auto run = run_recipe(db, recipe);
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  CHECK(!mentions(run.output, "40001"));
  CHECK(run.stat("patched") == 5);
  CHECK(value(db, "SELECT string_agg(v, ',' ORDER BY id) FROM t") == "x1,x11,x21,x31,x41");
}

TEST_CASE("overlap: a read() through a view of the table being written waits for the batch before",
          "[overlap][e2e]") {
  auto db = fresh_database();
  sql(db, k_chain);
  sql(db, "CREATE VIEW chain_view AS SELECT id, value FROM chain");
  std::string recipe_text = k_chain_recipe;
  recipe_text.replace(recipe_text.find("read(\"chain\""), 12, "read(\"chain_view\"");
  check_chain_variant(db, "overlap_view", recipe_text);
}

TEST_CASE("overlap: a read() of a partition of the table being written waits for the batch before",
          "[overlap][e2e]") {
  auto db = fresh_database();
  sql(db, R"sql(
CREATE TABLE chain (id int PRIMARY KEY, value text) PARTITION BY RANGE (id);
CREATE TABLE chain_low PARTITION OF chain FOR VALUES FROM (1) TO (251);
CREATE TABLE chain_high PARTITION OF chain FOR VALUES FROM (251) TO (501);
INSERT INTO chain SELECT g, CASE WHEN g = 1 THEN 'x' END FROM generate_series(1, 500) g;
)sql");
  std::string recipe_text = k_chain_recipe;
  recipe_text.replace(recipe_text.find("read(\"chain\", { id = row.id - 10 })"), 35,
                      "read(row.id - 10 <= 250 and \"chain_low\" or \"chain_high\", "
                      "{ id = row.id - 10 })");
  check_chain_variant(db, "overlap_partition", recipe_text);
}

TEST_CASE("overlap: reads of a table the run does not write are right while a batch is written",
          "[overlap][e2e]") {
  auto db = fresh_database();
  sql(db, R"sql(
CREATE TABLE projects (id int PRIMARY KEY, status text NOT NULL);
INSERT INTO projects SELECT g, 'status of ' || g FROM generate_series(1, 50) g;
CREATE TABLE tasks (id int PRIMARY KEY, project_id int NOT NULL, status text);
INSERT INTO tasks SELECT g, 1 + g % 50, NULL FROM generate_series(1, 2000) g;
)sql");
  auto run = run_recipe(db, recipe_file("overlap_projects", R"lua(
return {
  name = "projects", table = "tasks", commit = "batch", batch_size = 100,
  writes = { tasks = { "status" } },
  each = function(row)
    local project = read("projects", { id = row.project_id })
    patch_if_empty(row, "status", project.status)
  end,
}
)lua"));
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  CHECK(run.stat("patched") == 2000);
  CHECK(value(db, "SELECT count(*) FROM tasks t JOIN projects p ON p.id = t.project_id "
                  "WHERE t.status IS DISTINCT FROM p.status") == "0");
}

TEST_CASE("overlap: a SQL where that reads other rows selects each batch after the batch before",
          "[overlap][e2e]") {
  auto db = fresh_database();
  sql(db, R"sql(
CREATE TABLE chain (id int PRIMARY KEY, value text);
INSERT INTO chain SELECT g, NULL FROM generate_series(1, 100) g;
CREATE FUNCTION before_has_value(n int) RETURNS boolean STABLE LANGUAGE sql
  AS 'SELECT EXISTS (SELECT 1 FROM chain WHERE id = n - 1 AND value IS NOT NULL)';
)sql");
  // Batch after batch: row 1, then row 2 (row 1 has its value now), row 3, ...
  auto run = run_recipe(db, recipe_file("overlap_where", R"lua(
return {
  name = "where-chain", table = "chain", commit = "batch", batch_size = 1,
  where = "id = 1 OR before_has_value(id)",
  writes = { chain = { "value" } },
  each = function(row) patch_if_empty(row, "value", "v") end,
}
)lua"));
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  CHECK(run.stat("patched") == 100);
  CHECK(value(db, "SELECT count(*) FROM chain WHERE value = 'v'") == "100");
}

TEST_CASE("overlap: a table whose updates write other rows is worked batch after batch",
          "[overlap][e2e]") {
  auto db = fresh_database();
  // Patching row n's `a` sets row n + 10's `note`: the next batch's row, which a
  // batch read ahead would have seen without it.
  sql(db, R"sql(
CREATE TABLE t (id int PRIMARY KEY, a text, note text);
INSERT INTO t SELECT g, NULL, NULL FROM generate_series(1, 100) g;
CREATE FUNCTION touch_next() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE t SET note = 'touched by ' || NEW.id WHERE id = NEW.id + 10;
  RETURN NEW;
END $$;
CREATE TRIGGER touch_next AFTER UPDATE OF a ON t FOR EACH ROW EXECUTE FUNCTION touch_next();
)sql");
  auto run = run_recipe(db, recipe_file("overlap_trigger", R"lua(
return {
  name = "trigger", table = "t", commit = "batch", batch_size = 10,
  writes = { t = { "a" } },
  each = function(row) patch_if_empty(row, "a", row.note or "untouched") end,
}
)lua"));
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  CHECK(value(db, "SELECT count(*) FROM t WHERE id <= 10 AND a = 'untouched'") == "10");
  CHECK(value(db, "SELECT count(*) FROM t WHERE id > 10 AND a = 'touched by ' || (id - 10)") ==
        "90");
}
