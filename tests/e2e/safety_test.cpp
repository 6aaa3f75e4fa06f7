// End to end: the data-loss defects an outside probe found (issue 6), each
// reproduced as the probe did it. Every test here failed before its fix.
#include <catch2/catch.hpp>
#include <fstream>
#include <thread>

#include "tests/e2e/e2e_helpers.hpp"

using namespace host::testing;
using namespace host::testing::e2e;
using nlohmann::json;

namespace {

// The conninfo with server settings of the client's own, as PGOPTIONS would give.
std::string with_options(const std::string& db, const std::string& options) {
  return db + " options='" + options + "'";
}

}  // namespace

TEST_CASE("revert resolves the run's own table, whatever search_path the revert has",
          "[e2e][safety]") {
  auto db = fresh_database();
  sql(db, R"sql(
CREATE SCHEMA tenant_a; CREATE SCHEMA tenant_b;
CREATE TABLE tenant_a.phases (id int PRIMARY KEY, status text);
CREATE TABLE tenant_b.phases (id int PRIMARY KEY, status text);
INSERT INTO tenant_a.phases SELECT g, NULL FROM generate_series(1, 5) g;
INSERT INTO tenant_b.phases SELECT g, 'human ' || g FROM generate_series(1, 5) g;
)sql");
  auto recipe = recipe_file("tenant", R"lua(
return {
  name = "tenant-status",
  table = "phases",
  writes = { phases = { "status" } },
  each = function(row) patch_if_empty(row, "status", "Active") end,
}
)lua");
  auto run = run_recipe(with_options(db, "-c search_path=tenant_a"), recipe);
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  CHECK(run.stat("patched") == 5);
  // The ledger keeps the resolved name, the report the recipe's.
  CHECK(value(db, "SELECT DISTINCT qualified_table FROM host_ledger.changes") == "tenant_a.phases");
  CHECK(changes_by_column(run.report) == json({{"phases.status", 5}}));

  auto revert =
      run_host({"revert", run.run_id, "--db", with_options(db, "-c search_path=tenant_b")});
  INFO(revert.output);
  CHECK(revert.exit_code == 0);
  CHECK(value(db, "SELECT count(*) FROM tenant_b.phases WHERE status LIKE 'human %'") == "5");
  CHECK(value(db, "SELECT count(*) FROM tenant_a.phases WHERE status IS NULL") == "5");
}

TEST_CASE("a resumed run resolves names as the run did when it started", "[e2e][safety]") {
  auto db = fresh_database();
  sql(db, R"sql(
CREATE SCHEMA tenant_a; CREATE SCHEMA tenant_b;
CREATE TABLE tenant_a.b (id int PRIMARY KEY, raw text, n int);
CREATE TABLE tenant_b.b (id int PRIMARY KEY, raw text, n int);
INSERT INTO tenant_a.b SELECT g, g::text, NULL FROM generate_series(1, 6) g;
UPDATE tenant_a.b SET raw = 'abc' WHERE id = 5;
INSERT INTO tenant_b.b SELECT g, g::text, 100 + g FROM generate_series(1, 6) g;
)sql");
  auto recipe = recipe_file("tenant_resume", R"lua(
return {
  name = "tenant-copy",
  table = "b",
  writes = { b = { "n" } },
  each = function(row) patch_if_empty(row, "n", row.raw) end,
}
)lua");
  auto first = run_recipe(with_options(db, "-c search_path=tenant_a"), recipe,
                          {"--commit", "batch", "--batch-size", "2"});
  REQUIRE(first.exit_code == 1);
  sql(db, "UPDATE tenant_a.b SET raw = '5' WHERE id = 5");
  auto resumed =
      run_host({"resume", first.run_id, "--db", with_options(db, "-c search_path=tenant_b")});
  INFO(resumed.output);
  CHECK(resumed.exit_code == 0);
  CHECK(value(db, "SELECT string_agg(n::text, ',' ORDER BY id) FROM tenant_a.b") == "1,2,3,4,5,6");
  CHECK(value(db, "SELECT string_agg(n::text, ',' ORDER BY id) FROM tenant_b.b") ==
        "101,102,103,104,105,106");
}

TEST_CASE("ledger text does not depend on the client's DateStyle or TimeZone", "[e2e][safety]") {
  auto db = fresh_database();
  sql(db, R"sql(
CREATE TABLE days (day date PRIMARY KEY, note text, seen timestamptz, span interval);
-- A human wrote the very value the run writes, on the day a DMY/MDY mix-up names.
INSERT INTO days VALUES ('2024-03-04', NULL, NULL, NULL), ('2024-04-03', 'auto', NULL, NULL);
)sql");
  auto recipe = recipe_file("days", R"lua(
return {
  name = "days-note",
  table = "days",
  writes = { days = { "note", "seen", "span" } },
  each = function(row)
    patch_if_empty(row, "note", "auto")
    patch_if_empty(row, "seen", "2024-05-06 07:08:09+00")
    patch_if_empty(row, "span", "1 day 02:03:04")
  end,
}
)lua");
  auto run = run_recipe(
      with_options(db, "-c DateStyle=SQL,DMY -c TimeZone=UTC -c IntervalStyle=sql_standard"),
      recipe);
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  CHECK(run.stat("patched") == 5);
  CHECK(run.stat("protected") == 1);
  // Keys and values are kept in the canonical ISO forms.
  CHECK(value(db, "SELECT keys::text FROM host_ledger.changes WHERE column_name = 'note'") ==
        R"([["2024-03-04"]])");
  auto revert = run_host({"revert", run.run_id, "--db",
                          with_options(db,
                                       "-c DateStyle=SQL,MDY -c TimeZone=America/New_York "
                                       "-c IntervalStyle=iso_8601")});
  INFO(revert.output);
  CHECK(revert.exit_code == 0);
  CHECK(mentions(revert.output, "0 conflict"));
  CHECK(rows(db,
             "SELECT day, coalesce(note, 'NULL'), coalesce(seen::text, 'NULL'), "
             "coalesce(span::text, 'NULL') FROM days ORDER BY day") ==
        std::vector<std::string>{"2024-03-04|NULL|NULL|NULL", "2024-04-03|auto|NULL|NULL"});
}

TEST_CASE("a non-unique, nullable or inherited scan key is refused before anything is written",
          "[e2e][safety]") {
  auto db = fresh_database();
  sql(db, R"sql(
CREATE TABLE accounts (account text NOT NULL, n int, flag text);
INSERT INTO accounts VALUES ('a', 1, NULL), ('a', 2, NULL), ('b', 3, NULL);
CREATE TABLE maybe (id int UNIQUE, flag text);
INSERT INTO maybe VALUES (1, NULL), (NULL, NULL), (NULL, NULL);
CREATE TABLE parent (id int PRIMARY KEY, flag text);
CREATE TABLE child () INHERITS (parent);
INSERT INTO parent VALUES (1, NULL); INSERT INTO child VALUES (1, NULL);
)sql");
  auto recipe_for = [](const std::string& table, const std::string& key) {
    return recipe_file("key_" + table, "return { name = 'k-" + table + "', table = '" + table +
                                           "', key = '" + key + "', batch_size = 2, writes = { " +
                                           table +
                                           " = { 'flag' } }, each = function(row) "
                                           "patch_if_empty(row, 'flag', 'x') end }");
  };
  auto non_unique = run_recipe(db, recipe_for("accounts", "account"));
  CHECK(non_unique.exit_code == 1);
  CHECK(mentions(non_unique.output, "no primary key or unique index"));
  auto nullable = run_recipe(db, recipe_for("maybe", "id"));
  CHECK(nullable.exit_code == 1);
  CHECK(mentions(nullable.output, "may be NULL"));
  auto inherited = run_recipe(db, recipe_for("parent", "id"));
  CHECK(inherited.exit_code == 1);
  CHECK(mentions(inherited.output, "inheritance children"));
  CHECK(value(db, "SELECT count(*) FROM accounts WHERE flag IS NOT NULL") == "0");
  CHECK(value(db, "SELECT count(*) FROM maybe WHERE flag IS NOT NULL") == "0");
  CHECK(value(db, "SELECT count(*) FROM parent WHERE flag IS NOT NULL") == "0");
}

TEST_CASE("opts.key of fill_from must be unique", "[e2e][safety]") {
  auto db = fresh_database();
  sql(db, R"sql(
CREATE TABLE src (id int PRIMARY KEY, account text);
INSERT INTO src VALUES (1, 'a');
CREATE TABLE dst (id serial PRIMARY KEY, account text NOT NULL, note text);
INSERT INTO dst (account) VALUES ('a'), ('a');
)sql");
  auto recipe = recipe_file("fill_key", R"lua(
return {
  name = "fill-key",
  table = "src",
  writes = { dst = { "account", "note" } },
  each = function(row)
    fill_from("dst", { account = row.account, note = "filled" }, { key = { "account" } })
  end,
}
)lua");
  auto run = run_recipe(db, recipe);
  CHECK(run.exit_code == 1);
  CHECK(mentions(run.output, "no primary key or unique index"));
  CHECK(value(db, "SELECT count(*) FROM dst WHERE note IS NOT NULL") == "0");
}

TEST_CASE("the state machine: a reverted run cannot be resumed, a live run cannot be reverted",
          "[e2e][safety]") {
  auto db = fresh_database();
  sql(db, R"sql(
CREATE TABLE b (id int PRIMARY KEY, raw text, n int);
INSERT INTO b SELECT g, g::text, NULL FROM generate_series(1, 6) g;
UPDATE b SET raw = 'abc' WHERE id = 5;
)sql");
  auto recipe = recipe_file("states", R"lua(
return {
  name = "states",
  table = "b",
  writes = { b = { "n" } },
  each = function(row) patch_if_empty(row, "n", row.raw) end,
}
)lua");
  auto first = run_recipe(db, recipe, {"--commit", "batch", "--batch-size", "2"});
  REQUIRE(first.exit_code == 1);
  REQUIRE(value(db, "SELECT count(n) FROM b") == "4");

  SECTION("revert while a process holds the run") {
    host::Database holder(db);
    holder.exec("SELECT pg_advisory_lock(hashtext('host run'), hashtext('" + first.run_id + "'))");
    auto revert = run_host({"revert", first.run_id, "--db", db});
    INFO(revert.output);
    CHECK(revert.exit_code == 2);
    CHECK(mentions(revert.output, "being processed"));
    CHECK(value(db, "SELECT count(n) FROM b") == "4");
    CHECK(value(db, "SELECT reverted_at IS NULL FROM host_ledger.runs") == "t");
  }
  SECTION("revert of an interrupted run, then resume") {
    sql(db, "UPDATE b SET raw = '5' WHERE id = 5");
    auto revert = run_host({"revert", first.run_id, "--db", db});
    INFO(revert.output);
    REQUIRE(revert.exit_code == 0);
    CHECK(value(db, "SELECT count(n) FROM b") == "0");
    CHECK(ledger_status(db, first.run_id) == "failed");
    std::string report_before = value(db, "SELECT report::text FROM host_ledger.runs");
    auto resumed = run_host({"resume", first.run_id, "--db", db});
    INFO(resumed.output);
    CHECK(resumed.exit_code == 2);
    CHECK(mentions(resumed.output, "reverted"));
    CHECK(value(db, "SELECT count(n) FROM b") == "0");
    // A refused resume leaves the run's row alone: its report is the run's, not the refusal.
    CHECK(value(db, "SELECT report::text FROM host_ledger.runs") == report_before);
    auto again = run_host({"revert", first.run_id, "--db", db});
    CHECK(again.exit_code == 0);
    CHECK(mentions(again.output, "already reverted"));
  }
  SECTION("resume while a process holds the run") {
    host::Database holder(db);
    holder.exec("SELECT pg_advisory_lock(hashtext('host run'), hashtext('" + first.run_id + "'))");
    std::string report_before = value(db, "SELECT report::text FROM host_ledger.runs");
    auto resumed = run_host({"resume", first.run_id, "--db", db});
    CHECK(resumed.exit_code == 2);
    CHECK(mentions(resumed.output, "being processed"));
    CHECK(value(db, "SELECT report::text FROM host_ledger.runs") == report_before);
    CHECK(ledger_status(db, first.run_id) == "failed");
  }
}

TEST_CASE("recipe SQL cannot release the run's own lock", "[e2e][safety]") {
  auto db = fresh_database();
  sql(db, R"sql(
CREATE TABLE b (id int PRIMARY KEY, n int);
INSERT INTO b SELECT g, NULL FROM generate_series(1, 4) g;
-- Labelled STABLE, so the query guard trusts it: the run lock must hold even so.
CREATE FUNCTION sneaky_unlock() RETURNS bigint STABLE LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_unlock_all();
  RETURN (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'
          AND classid = (hashtext('host run') & 4294967295)::oid);
END $$;
)sql");
  // Each row asks the server whether anybody holds a "host run" lock after the
  // recipe's own session let go of every advisory lock it had.
  auto recipe = recipe_file("unlock", R"lua(
return {
  name = "unlock",
  table = "b",
  batch_size = 1,
  commit = "batch",
  writes = { b = { "n" } },
  each = function(row)
    local held = query("select sneaky_unlock() as held")[1].held
    patch_if_empty(row, "n", held)
  end,
}
)lua");
  auto run = run_recipe(db, recipe);
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  CHECK(value(db, "SELECT min(n) FROM b") == "1");
}

TEST_CASE("the ledger is never a write target, and revert writes only the run's writes",
          "[e2e][safety]") {
  auto db = fresh_database();
  sql(db, R"sql(
CREATE TABLE t (id int PRIMARY KEY, a text, secret text);
INSERT INTO t VALUES (1, NULL, 'keep me');
)sql");
  auto forge = recipe_file("forge", R"lua(
return {
  name = "forge",
  table = "t",
  writes = { ["host_ledger.changes"] = "*", t = { "a" } },
  each = function(row) patch_if_empty(row, "a", "x") end,
}
)lua");
  auto forged = run_recipe(db, forge);
  INFO(forged.output);
  CHECK(forged.exit_code == 1);
  CHECK(mentions(forged.output, "ledger schema"));
  CHECK(value(db, "SELECT a IS NULL FROM t") == "t");

  auto honest = recipe_file("honest", R"lua(
return {
  name = "honest",
  table = "t",
  writes = { t = { "a" } },
  each = function(row) patch_if_empty(row, "a", "x") end,
}
)lua");
  auto run = run_recipe(db, honest);
  REQUIRE(run.exit_code == 0);
  // A change row for a column the run never declared, as a forger would add it.
  sql(db,
      "INSERT INTO host_ledger.changes (run_id, seq, batch, op, table_name, qualified_table, "
      "column_name, key_columns, keys, old_values, new_values) VALUES ('" +
          run.run_id +
          "', 999, 1, 'update', 't', 'public.t', 'secret', '{id}', '[[\"1\"]]', "
          "'{NULL}', '{\"keep me\"}')");
  auto revert = run_host({"revert", run.run_id, "--db", db});
  INFO(revert.output);
  CHECK(revert.exit_code == 5);
  CHECK(mentions(revert.output, "outside the run's writes"));
  CHECK(value(db, "SELECT coalesce(a, 'NULL') || '|' || secret FROM t") == "NULL|keep me");
}

TEST_CASE("keys that contain the old separator never collide", "[e2e][safety]") {
  auto db = fresh_database();
  sql(db, R"sql(
CREATE TABLE pairs (a text, b text, v text, PRIMARY KEY (a, b));
INSERT INTO pairs VALUES (E'x\x1fvy', 'z', 'one'), ('x', E'y\x1fvz', 'two');
CREATE TABLE src (id int PRIMARY KEY, a text, b text, got text);
INSERT INTO src VALUES (1, E'x\x1fvy', 'z', NULL), (2, 'x', E'y\x1fvz', NULL);
)sql");
  auto recipe = recipe_file("separator", R"lua(
return {
  name = "separator",
  table = "src",
  writes = { src = { "got" }, pairs = { "v" } },
  each = function(row)
    local p = read("pairs", { a = row.a, b = row.b })
    patch_if_empty(row, "got", p and p.v)
    patch_if(p, "v", p.v, p.v .. "!")
  end,
}
)lua");
  auto run = run_recipe(db, recipe);
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  CHECK(rows(db, "SELECT id, got FROM src ORDER BY id") ==
        std::vector<std::string>{"1|one", "2|two"});
  CHECK(rows(db, "SELECT v FROM pairs ORDER BY v") == std::vector<std::string>{"one!", "two!"});
}

TEST_CASE("a write that changes nothing is no change", "[e2e][safety]") {
  auto db = fresh_database();
  sql(db, R"sql(
CREATE TABLE t (id int PRIMARY KEY, note text, code text);
INSERT INTO t VALUES (1, NULL, 'v1'), (2, '   ', 'v2');
)sql");
  auto recipe = recipe_file("noop", R"lua(
return {
  name = "noop",
  table = "t",
  writes = { t = { "note", "code" } },
  each = function(row)
    patch_if_empty(row, "note", "   ")
    patch_if(row, "code", "v2", "v2")
  end,
}
)lua");
  auto first = run_recipe(db, recipe);
  INFO(first.output);
  REQUIRE(first.exit_code == 0);
  CHECK(first.stat("patched") == 1);  // NULL became blank; blank over blank, v2 over v2: nothing
  auto verify = run_host({"verify", recipe, "--db", db});
  INFO(verify.output);
  CHECK(verify.exit_code == 0);
}

TEST_CASE("patch_if and revert work on types without an equality operator", "[e2e][safety]") {
  auto db = fresh_database();
  sql(db, R"sql(
CREATE TABLE docs (id int PRIMARY KEY, body json, spot point);
INSERT INTO docs VALUES (1, '{"v": 1}', NULL);
)sql");
  auto recipe = recipe_file("json_patch", R"lua(
return {
  name = "json-patch",
  table = "docs",
  writes = { docs = { "body", "spot" } },
  each = function(row)
    patch_if(row, "body", '{"v": 1}', '{"v": 2}')
    patch_if_empty(row, "spot", "(1,2)")
  end,
}
)lua");
  auto run = run_recipe(db, recipe);
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  CHECK(run.stat("patched") == 2);
  auto revert = run_host({"revert", run.run_id, "--db", db});
  INFO(revert.output);
  CHECK(revert.exit_code == 0);
  CHECK(value(db, "SELECT body::text || '|' || coalesce(spot::text, 'NULL') FROM docs") ==
        R"({"v": 1}|NULL)");
}

TEST_CASE("a generated column is refused by host check", "[e2e][safety]") {
  auto db = fresh_database();
  sql(db,
      "CREATE TABLE g (id int PRIMARY KEY, a int, twice int GENERATED ALWAYS AS (a * 2) STORED)");
  auto recipe = recipe_file("generated", R"lua(
return {
  name = "generated",
  table = "g",
  writes = { g = { "twice" } },
  each = function(row) patch_if_empty(row, "twice", 4) end,
}
)lua");
  auto check = run_host({"check", recipe, "--db", db});
  INFO(check.output);
  CHECK(check.exit_code == 1);
  CHECK(mentions(check.output, "generated"));
}

TEST_CASE("resume refuses a changed module or input file", "[e2e][safety]") {
  auto db = fresh_database();
  sql(db, R"sql(
CREATE TABLE b (id int PRIMARY KEY, raw text, n text);
INSERT INTO b SELECT g, g::text, NULL FROM generate_series(1, 6) g;
UPDATE b SET raw = 'bad' WHERE id = 5;
CREATE TABLE imported (name text PRIMARY KEY, n int);
)sql");
  std::string folder = scratch_folder() + "/module_resume";
  write_file("module_resume/rules.lua", "return { stamp = 'v1' }\n");
  write_file("module_resume/stamp.lua", R"lua(
local rules = require "rules"
return {
  name = "stamp",
  table = "b",
  writes = { b = { "n" } },
  each = function(row)
    if row.raw == "bad" then error("bad row") end
    patch_if_empty(row, "n", rules.stamp)
  end,
}
)lua");
  auto first = run_recipe(db, folder + "/stamp.lua", {"--commit", "batch", "--batch-size", "2"});
  REQUIRE(first.exit_code == 1);
  sql(db, "UPDATE b SET raw = '5' WHERE id = 5");
  write_file("module_resume/rules.lua", "return { stamp = 'v2' }\n");
  auto resumed = run_host({"resume", first.run_id, "--db", db});
  INFO(resumed.output);
  CHECK(resumed.exit_code == 1);
  CHECK(mentions(resumed.output, "module 'rules'"));
  CHECK(value(db, "SELECT count(*) FROM b WHERE n = 'v2'") == "0");

  auto csv = write_file("input_resume/people.csv", "name,n\na,1\nb,2\nc,x\nd,4\n");
  auto importer = write_file("input_resume/import.lua", R"lua(
return {
  name = "import-people",
  input = "people",
  writes = { imported = "*" },
  each = function(r) insert_if_absent("imported", { name = r.name, n = r.n }) end,
}
)lua");
  auto import = run_recipe(db, importer,
                           {"--input", "people=" + csv, "--commit", "batch", "--batch-size", "2"});
  REQUIRE(import.exit_code == 1);
  write_file("input_resume/people.csv", "name,n\nz,0\na,1\nb,2\nc,3\nd,4\n");
  auto again = run_host({"resume", import.run_id, "--db", db});
  INFO(again.output);
  CHECK(again.exit_code == 1);
  CHECK(mentions(again.output, "input 'people'"));
}

TEST_CASE("an atomic run keeps its subtransactions bounded and still names a bad value",
          "[e2e][safety]") {
  auto db = fresh_database();
  sql(db, R"sql(
CREATE TABLE b (id int PRIMARY KEY, raw text, n int);
INSERT INTO b SELECT g, g::text, NULL FROM generate_series(1, 60) g;
UPDATE b SET raw = 'abc' WHERE id = 50;
)sql");
  auto recipe_text = [](const std::string& on_error) {
    return "return { name = 'bounded', table = 'b', batch_size = 1, " + on_error +
           " writes = { b = { 'n' } }, each = function(row) patch_if_empty(row, 'n', row.raw) end "
           "}";
  };
  // Batch 50 is past the savepoints an atomic run allows itself.
  auto plain = run_recipe(db, recipe_file("bounded", recipe_text("")));
  INFO(plain.output);
  CHECK(plain.exit_code == 1);
  CHECK(mentions(plain.output, "'abc'"));
  CHECK(mentions(plain.output, "id=50"));
  CHECK(value(db, "SELECT count(n) FROM b") == "0");

  auto skipping = run_recipe(db, recipe_file("bounded_skip", recipe_text("on_error = 'skip',")));
  INFO(skipping.output);
  CHECK(skipping.exit_code == 1);
  CHECK(mentions(skipping.output, "commit = \"batch\""));
  CHECK(value(db, "SELECT count(n) FROM b") == "0");

  // Within the first batches a skipped row still works as before.
  sql(db, "UPDATE b SET raw = '50' WHERE id = 50; UPDATE b SET raw = 'abc' WHERE id = 3");
  auto early = run_recipe(db, recipe_file("bounded_early", recipe_text("on_error = 'skip',")));
  INFO(early.output);
  CHECK(early.exit_code == 0);
  CHECK(value(db, "SELECT count(n) FROM b") == "59");
}

TEST_CASE("a failing connection of the server's own is not 'database unreachable'",
          "[e2e][safety]") {
  auto db = fresh_database();
  sql(db, R"sql(
CREATE EXTENSION dblink;
CREATE TABLE t (id int PRIMARY KEY, note text);
INSERT INTO t VALUES (1, NULL);
CREATE FUNCTION t_remote() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM dblink_connect('host=/nonexistent dbname=nowhere'); RETURN NEW; END $$;
CREATE TRIGGER t_remote BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION t_remote();
)sql");
  auto recipe = recipe_file("remote", R"lua(
return {
  name = "remote",
  table = "t",
  writes = { t = { "note" } },
  each = function(row) patch_if_empty(row, "note", "x") end,
}
)lua");
  auto run = run_recipe(db, recipe);
  INFO(run.output);
  CHECK(run.exit_code == 1);
  CHECK_FALSE(mentions(run.output, "unreachable"));
  CHECK(ledger_status(db, run.run_id) == "failed");
}

TEST_CASE("two reverts at once: one restores, the other finds the run reverted", "[e2e][safety]") {
  auto db = fresh_database();
  sql(db, R"sql(
CREATE TABLE t (id int PRIMARY KEY, note text);
INSERT INTO t SELECT g, NULL FROM generate_series(1, 2000) g;
)sql");
  auto recipe = recipe_file("twice", R"lua(
return {
  name = "twice",
  table = "t",
  writes = { t = { "note" } },
  each = function(row) patch_if_empty(row, "note", "x") end,
}
)lua");
  auto run = run_recipe(db, recipe, {"--commit", "batch", "--batch-size", "100"});
  REQUIRE(run.exit_code == 0);
  host::ProcessResult first, second;
  std::thread a([&] { first = run_host({"revert", run.run_id, "--db", db}); });
  std::thread b([&] { second = run_host({"revert", run.run_id, "--db", db}); });
  a.join();
  b.join();
  INFO(first.output);
  INFO(second.output);
  CHECK(first.exit_code == 0);
  CHECK(second.exit_code == 0);
  CHECK(mentions(first.output, "already reverted") != mentions(second.output, "already reverted"));
  CHECK(value(db, "SELECT count(note) FROM t") == "0");
  CHECK(value(db, "SELECT revert_report->>'restored_cells' FROM host_ledger.runs") == "2000");
  CHECK(value(db, "SELECT revert_report->>'conflicts' FROM host_ledger.runs") == "0");
}

TEST_CASE("read_all's opts.limit must be a whole number", "[e2e][safety]") {
  auto db = fresh_database();
  sql(db, "CREATE TABLE t (id int PRIMARY KEY, note text); INSERT INTO t VALUES (1, NULL)");
  for (const char* limit : {"0/0", "1e30", "1.5", "'10'", "0"}) {
    INFO(limit);
    auto recipe = recipe_file("limit", std::string("return { name = 'limit', table = 't', each = "
                                                   "function(row) read_all('t', {}, { limit = ") +
                                           limit + " }) end }");
    auto run = run_recipe(db, recipe);
    CHECK(run.exit_code == 1);
    CHECK(mentions(run.output, "opts.limit must be a whole number"));
  }
}

TEST_CASE("read and map_id at load time: a value, or a clear error", "[e2e][safety]") {
  auto db = fresh_database();
  sql(db, "CREATE TABLE t (id int PRIMARY KEY, note text); INSERT INTO t VALUES (1, 'hello')");
  auto reading = recipe_file("load_read", R"lua(
local greeting = read("t", { id = 1 }).note
return { name = "load-read", table = "t", writes = { t = { "note" } },
  each = function(row) patch_if(row, "note", "hello", greeting .. "!") end }
)lua");
  auto run = run_recipe(db, reading);
  INFO(run.output);
  CHECK(run.exit_code == 0);
  CHECK(value(db, "SELECT note FROM t") == "hello!");
  auto mapping = recipe_file("load_map", R"lua(
local id = map_id("thing", 1)
return { name = "load-map", table = "t", each = function(row) end }
)lua");
  auto mapped = run_recipe(db, mapping);
  INFO(mapped.output);
  CHECK(mapped.exit_code == 1);
  CHECK(mentions(mapped.output, "not while the recipe file loads"));
  CHECK(mentions(mapped.output, "load_map.lua:2"));
}

TEST_CASE("a run does not block the application's inserts of referencing rows", "[e2e][safety]") {
  auto db = fresh_database();
  sql(db, R"sql(
CREATE TABLE parents (id int PRIMARY KEY, note text);
INSERT INTO parents SELECT g, NULL FROM generate_series(1, 3) g;
CREATE TABLE children (id serial PRIMARY KEY, parent_id int REFERENCES parents);
)sql");
  // Each row's verify-free `each` inserts nothing; the test's own session inserts a
  // child of row 1 while the run's transaction holds its row locks (atomic run,
  // a slow STABLE function in the where keeps the transaction open).
  sql(db, R"sql(
CREATE FUNCTION slow_true() RETURNS boolean STABLE LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_sleep(0.5); RETURN true; END $$;
)sql");
  auto recipe = recipe_file("fk_locks", R"lua(
return {
  name = "fk-locks",
  table = "parents",
  batch_size = 1,
  writes = { parents = { "note" } },
  each = function(row)
    patch_if_empty(row, "note", "x")
    query("select slow_true() as ok")
  end,
}
)lua");
  host::ProcessResult run;
  std::thread runner([&] { run = run_host({"run", recipe, "--db", db, "--quiet"}); });
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  host::Database app(db);
  app.exec("SET lock_timeout = '200ms'");
  bool inserted = true;
  try {
    app.exec("INSERT INTO children (parent_id) VALUES (1)");
  } catch (const std::exception&) {
    inserted = false;
  }
  runner.join();
  INFO(run.output);
  CHECK(run.exit_code == 0);
  CHECK(inserted);
  CHECK(value(db, "SELECT count(note) FROM parents") == "3");
}
