// End to end: bugs found by running the shipped recipe library, each pinned by
// the smallest recipe that showed it.
#include <catch2/catch.hpp>

#include "tests/e2e/e2e_helpers.hpp"

using namespace host::testing;
using namespace host::testing::e2e;
using nlohmann::json;

TEST_CASE("writes to a table keyed by uuid (no min/max aggregate for uuid)", "[e2e][regression]") {
  auto db = fresh_database();
  sql(db, R"sql(
CREATE TABLE pages (id uuid PRIMARY KEY, title text, status text);
INSERT INTO pages VALUES ('5a1e0c3d-7b2f-4e6a-9c8d-1b2a3f4e5d61', 'Kept', NULL),
                         ('5a1e0c3d-7b2f-4e6a-9c8d-1b2a3f4e5d62', NULL, 'Done');
)sql");
  auto recipe = recipe_file("uuid_key", R"lua(
return {
  name = "uuid-key",
  table = "pages",
  writes = { pages = { "id", "title", "status" } },
  each = function(row)
    patch_if_empty(row, "status", "Open")
    fill_from("pages", { id = row.id, title = "Untitled" })
  end,
}
)lua");
  auto run = run_recipe(db, recipe);
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  CHECK(rows(db, "SELECT title, status FROM pages ORDER BY id") ==
        std::vector<std::string>{"Kept|Open", "Untitled|Done"});
  CHECK(run.stat("patched") == 2);
  CHECK(run.stat("protected") == 2);
}

TEST_CASE("a review item keeps the Lua type of its value", "[e2e][regression]") {
  auto db = fresh_database();
  sql(db,
      "CREATE TABLE phases (id int PRIMARY KEY, project_id int, label text); "
      "INSERT INTO phases VALUES (1, NULL, NULL);");
  auto recipe = recipe_file("review_type", R"lua(
return {
  name = "review-type",
  table = "phases",
  writes = { phases = { "project_id", "label" } },
  each = function(row)
    patch_if_empty(row, "project_id", 7, { confidence = "medium", reason = "guess" })
    patch_if_empty(row, "label", "seven", { confidence = "low" })
  end,
}
)lua");
  auto run = run_recipe(db, recipe);
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  REQUIRE(run.report["review"].size() == 2);
  CHECK(run.report["review"][0]["value"] == 7);
  CHECK(run.report["review"][1]["value"] == "seven");
}

TEST_CASE("an error raised while the recipe file loads is reported, not lost",
          "[e2e][regression]") {
  auto db = fresh_database();
  auto recipe = recipe_file("top_level_error", R"lua(
local settings = nil
local since = settings.since
return { name = "never", table = "x", each = function() end }
)lua");
  auto run = run_recipe(db, recipe);
  INFO(run.output);
  CHECK(run.exit_code == 1);
  CHECK(run.output.find("top_level_error.lua:3:") != std::string::npos);
  CHECK(run.output.find("json.exception") == std::string::npos);
}

TEST_CASE("audit() inside verify is listed with the run's other events", "[e2e][regression]") {
  auto db = fresh_database();
  sql(db, "CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items VALUES (1), (2);");
  auto recipe = recipe_file("verify_audit", R"lua(
return {
  name = "verify-audit",
  table = "items",
  writes = {},
  each = function(row) audit("seen", { id = row.id }) end,
  verify = function() audit("total", { items = count("items") }) end,
}
)lua");
  auto run = run_recipe(db, recipe);
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  CHECK(run.stat("audit_events") == 3);
  REQUIRE(run.report["audit"].size() == 3);
  CHECK(run.report["audit"][2]["event"] == "total");
  CHECK(run.report["audit"][2]["data"]["items"] == 2);
}

// Found in review.

TEST_CASE("a very long error message is reported, not a crash", "[e2e][regression]") {
  auto db = fresh_database();
  sql(db, "CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items VALUES (1);");
  auto recipe = recipe_file("long_error", R"lua(
return {
  name = "long-error",
  table = "items",
  writes = {},
  each = function(row) error("bad row: " .. string.rep("x", 200000), 0) end,
}
)lua");
  auto run = run_recipe(db, recipe);
  CHECK(run.exit_code == 1);
  CHECK(run.output.find("long_error.lua: bad row: xxx") != std::string::npos);
}

TEST_CASE("error values that are numbers keep their value", "[e2e][regression]") {
  auto db = fresh_database();
  sql(db, "CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items VALUES (1);");
  auto recipe = recipe_file("number_error", R"lua(
return {
  name = "number-error",
  table = "items",
  writes = {},
  each = function(row) error(4242, 0) end,
}
)lua");
  auto run = run_recipe(db, recipe);
  INFO(run.output);
  CHECK(run.exit_code == 1);
  CHECK(run.output.find("number_error.lua: 4242") != std::string::npos);
}

TEST_CASE("gsub recursion through a table replacement is stopped, not a crash",
          "[e2e][regression]") {
  auto db = fresh_database();
  sql(db, "CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items VALUES (1);");
  auto recipe = recipe_file("gsub_table", R"lua(
return {
  name = "gsub-table",
  table = "items",
  writes = {},
  each = function(row)
    local t
    t = setmetatable({}, { __index = function() return (("x"):gsub(".", t)) end })
    local _ = ("x"):gsub(".", t)
  end,
}
)lua");
  auto run = run_recipe(db, recipe);
  INFO(run.output);
  CHECK(run.exit_code == 1);
  CHECK(run.output.find("nested more than 16 deep") != std::string::npos);
}

TEST_CASE("a bad gsub pattern names the recipe line", "[e2e][regression]") {
  auto db = fresh_database();
  sql(db, "CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items VALUES (1);");
  auto recipe = recipe_file("gsub_pattern", R"lua(
return {
  name = "gsub-pattern",
  table = "items",
  writes = {},
  each = function(row)
    local _ = ("x"):gsub("(", function() end)
  end,
}
)lua");
  auto run = run_recipe(db, recipe);
  INFO(run.output);
  CHECK(run.exit_code == 1);
  CHECK(run.output.find("gsub_pattern.lua:7:") != std::string::npos);
}

TEST_CASE("keys with a collation of their own are all written", "[e2e][regression]") {
  auto db = fresh_database();
  // The cluster's default collation is C; the key column orders like ICU's root.
  sql(db, R"sql(
CREATE TABLE words (word text COLLATE "und-x-icu" PRIMARY KEY, note text);
INSERT INTO words VALUES ('apple', NULL), ('Banana', NULL), ('cherry', NULL);
)sql");
  auto recipe = recipe_file("collated_key", R"lua(
return {
  name = "collated-key",
  table = "words",
  writes = { words = { "note" } },
  each = function(row) patch_if_empty(row, "note", "seen") end,
}
)lua");
  auto run = run_recipe(db, recipe);
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  CHECK(run.stat("patched") == 3);
  CHECK(rows(db, "SELECT count(*) FROM words WHERE note = 'seen'")[0] == "3");
}

TEST_CASE("a run abandoned by the watchdog still writes its failure report", "[e2e][regression]") {
  auto db = fresh_database();
  sql(db,
      "CREATE TABLE items (id int PRIMARY KEY, note text); INSERT INTO items VALUES (1, NULL);");
  auto recipe = recipe_file("stuck_pattern", R"lua(
return {
  name = "stuck-pattern",
  table = "items",
  writes = { items = { "note" } },
  each = function(row)
    patch_if_empty(row, "note", "never")
    string.find(string.rep("a", 3000), string.rep(".-", 12) .. "b")
  end,
}
)lua");
  auto run = run_recipe(db, recipe, {"--timeout-ms", "1000"});
  INFO(run.output);
  CHECK(run.exit_code == 1);
  CHECK(run.output.find("while processing row id=1") != std::string::npos);
  REQUIRE(run.report.is_object());
  CHECK(run.report["status"] == "failed");
  CHECK(run.report["error"].get<std::string>().find("time limit") != std::string::npos);
  CHECK(rows(db, "SELECT count(*) FROM items WHERE note IS NULL")[0] == "1");
}

// Found checking the contract: "No value is ever silently rounded or truncated".

TEST_CASE("a value numeric(p,s) or timestamp(p) would round is an error, not a rounding",
          "[e2e][regression]") {
  auto db = fresh_database();
  sql(db,
      "CREATE TABLE prices (id int PRIMARY KEY, amount numeric(6,2), at timestamp(0)); "
      "INSERT INTO prices VALUES (1, NULL, NULL), (2, NULL, NULL);");
  auto write_amount = [&](const std::string& value, const std::string& column) {
    return run_recipe(
        db, recipe_file("exact_" + column, R"lua(
return {
  name = "exact-)lua" + column + R"lua(",
  table = "prices",
  writes = { prices = { "id", "amount", "at" } },
  each = function(row)
    if row.id == 1 then patch_if_empty(row, ")lua" +
                                               column + R"lua(", ")lua" + value + R"lua(") end
    if row.id == 2 then fill_from("prices", { id = 2, )lua" +
                                               column + R"lua( = ")lua" + value + R"lua(" }) end
  end,
}
)lua"));
  };
  auto rounded = write_amount("1.005", "amount");
  INFO(rounded.output);
  CHECK(rounded.exit_code == 1);
  CHECK(rounded.output.find("'1.005' has 3 decimal places; numeric(6,2) keeps 2") !=
        std::string::npos);
  CHECK(rounded.output.find("row id=1") != std::string::npos);
  auto late = write_amount("2024-03-18 10:00:00.7", "at");
  CHECK(late.exit_code == 1);
  CHECK(late.output.find("fractional second") != std::string::npos);
  CHECK(rows(db, "SELECT count(*) FROM prices WHERE amount IS NULL AND at IS NULL")[0] == "2");
  auto exact = write_amount("1.50", "amount");
  INFO(exact.output);
  CHECK(exact.exit_code == 0);
  CHECK(rows(db, "SELECT amount::text FROM prices ORDER BY id") ==
        std::vector<std::string>{"1.50", "1.50"});
}

// Found probing the contract from outside.

TEST_CASE("char(n) values and keys are written whole, never cut to one character",
          "[e2e][regression]") {
  auto db = fresh_database();
  sql(db, R"sql(
CREATE TABLE codes (code char(3) PRIMARY KEY, label char(5), note text, flags bit(3));
INSERT INTO codes (code) VALUES ('abc'), ('abd'), ('a');
)sql");
  auto recipe = recipe_file("char_key", R"lua(
return {
  name = "char-key",
  table = "codes",
  where = { code = "abc" },
  writes = { codes = { "label", "note", "flags" } },
  each = function(row)
    patch_if_empty(row, "label", "hello")
    patch_if_empty(row, "note", "for " .. row.code)
    patch_if_empty(row, "flags", "101")
  end,
}
)lua");
  auto run = run_recipe(db, recipe);
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  CHECK(rows(db,
             "SELECT code || '|' || coalesce(label, '-') || '|' || coalesce(note, '-') || '|' || "
             "coalesce(flags::text, '-') FROM codes ORDER BY code") ==
        std::vector<std::string>{"a|-|-|-", "abc|hello|for abc|101", "abd|-|-|-"});
  auto too_long = run_recipe(db, recipe_file("char_long", R"lua(
return {
  name = "char-long",
  table = "codes",
  where = { code = "abd" },
  writes = { codes = { "label" } },
  each = function(row) patch_if_empty(row, "label", "toolong") end,
}
)lua"));
  CHECK(too_long.exit_code == 1);
  CHECK(too_long.output.find("too long") != std::string::npos);
}

TEST_CASE("map_id: one UUID however it is spelled is one legacy id", "[e2e][regression]") {
  auto db = fresh_database();
  sql(db, "CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items VALUES (1), (2);");
  auto recipe = recipe_file("uuid_spellings", R"lua(
return {
  name = "uuid-spellings",
  table = "items",
  writes = {},
  each = function(row)
    local spelled = row.id == 1 and "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"
                                 or "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
    audit("mapped", { id = map_id("customer", spelled) })
  end,
}
)lua");
  auto run = run_recipe(db, recipe);
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  REQUIRE(run.report["audit"].size() == 2);
  for (const auto& event : run.report["audit"])
    CHECK(event["data"]["id"] == "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
  CHECK(rows(db, "SELECT legacy_id FROM host_ledger.customer_id_map") ==
        std::vector<std::string>{"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"});
}

TEST_CASE("map_id: a UUID held by another legacy id fails at the recipe line and row",
          "[e2e][regression]") {
  auto db = fresh_database();
  sql(db, R"sql(
CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items VALUES (1);
CREATE SCHEMA host_ledger;
CREATE TABLE host_ledger.customer_id_map (legacy_id text UNIQUE, uuid uuid UNIQUE);
INSERT INTO host_ledger.customer_id_map VALUES ('C-1', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11');
)sql");
  auto recipe = recipe_file("uuid_taken", R"lua(
return {
  name = "uuid-taken",
  table = "items",
  writes = {},
  each = function(row)
    local known = map_id("customer", "C-1")
    audit("known", { id = known })
    map_id("customer", "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11")
  end,
}
)lua");
  auto run = run_recipe(db, recipe);
  INFO(run.output);
  CHECK(run.exit_code == 1);
  CHECK(run.output.find("uuid_taken.lua:9:") != std::string::npos);
  CHECK(run.output.find("row id=1") != std::string::npos);
  CHECK(run.output.find("already mapped") != std::string::npos);
  CHECK(run.stat("errors") == 1);
}

TEST_CASE("JSON Lines integers beyond 2^53 arrive as exact text", "[e2e][regression]") {
  auto db = fresh_database();
  sql(db, "CREATE TABLE big (id int PRIMARY KEY, n numeric);");
  std::string input = write_file("inputs/big_" + next_suffix() + ".jsonl",
                                 "{\"id\": 1, \"n\": 9007199254740993}\n"
                                 "{\"id\": 2, \"n\": 42}\n");
  auto recipe = recipe_file("big_jsonl", R"lua(
return {
  name = "big-jsonl",
  input = "numbers",
  writes = { big = { "id", "n" } },
  each = function(record)
    audit("kind", { id = record.id, kind = type(record.n) })
    insert_if_absent("big", { id = record.id, n = record.n })
  end,
}
)lua");
  auto run = run_recipe(db, recipe, {"--input", "numbers=" + input});
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  CHECK(run.report["audit"][0]["data"]["kind"] == "string");
  CHECK(run.report["audit"][1]["data"]["kind"] == "number");
  CHECK(rows(db, "SELECT n::text FROM big ORDER BY id") ==
        std::vector<std::string>{"9007199254740993", "42"});
}

TEST_CASE("review() items carry a confidence level of the contract", "[e2e][regression]") {
  auto db = fresh_database();
  sql(db,
      "CREATE TABLE items (id int PRIMARY KEY, owner text); INSERT INTO items VALUES (1, NULL);");
  auto recipe = recipe_file("review_level", R"lua(
return {
  name = "review-level",
  table = "items",
  writes = {},
  each = function(row) review(row, "owner", "Ann", "same team") end,
}
)lua");
  auto run = run_recipe(db, recipe);
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  REQUIRE(run.report["review"].size() == 1);
  CHECK(run.report["review"][0]["confidence"] == "low");
}

TEST_CASE("a missing recipe file is a usage error", "[e2e][regression]") {
  auto db = fresh_database();
  auto run = run_recipe(db, scratch_folder() + "/no/such/recipe.lua");
  CHECK(run.exit_code == 2);
  CHECK(run.output.find("no such recipe file") != std::string::npos);
}

TEST_CASE("an integral Lua number above 2^53 is written with all its digits", "[e2e][regression]") {
  auto db = fresh_database();
  sql(db, "CREATE TABLE items (id int PRIMARY KEY, big int8); INSERT INTO items VALUES (1, NULL);");
  auto recipe = recipe_file("big_int8", R"lua(
return {
  name = "big-int8",
  table = "items",
  writes = { items = { "big" } },
  each = function(row) patch_if_empty(row, "big", 2 ^ 60) end,
}
)lua");
  auto run = run_recipe(db, recipe);
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  CHECK(rows(db, "SELECT big::text FROM items")[0] == "1152921504606846976");
}

TEST_CASE("reads with IN lists and SQL filters, batched per shape, answer each row its own",
          "[e2e][regression]") {
  auto db = fresh_database();
  sql(db, R"sql(
CREATE TABLE tasks (id int PRIMARY KEY, wanted int[]);
INSERT INTO tasks VALUES (1, '{1,2}'), (2, '{3}'), (3, '{}'), (4, '{2,9}');
CREATE TABLE people (id int PRIMARY KEY, name text);
INSERT INTO people VALUES (1, 'Ann'), (2, 'Bo'), (3, 'Cy');
)sql");
  auto recipe = recipe_file("in_lists", R"lua(
return {
  name = "in-lists",
  table = "tasks",
  writes = {},
  each = function(row)
    local ids = {}
    for id in row.wanted:gmatch("%d+") do ids[#ids + 1] = tonumber(id) end
    local names = {}
    for _, person in ipairs(read_all("people", { id = ids }, { order_by = "name" })) do
      names[#names + 1] = person.name
    end
    local first = read("people", { id = ids }, { order_by = { "name", "desc" } })
    local everyone = read_all("people", "id > 0")
    audit("read", { task = row.id, names = table.concat(names, ","),
                    last = first and first.name or "none", everyone = #everyone })
  end,
}
)lua");
  auto run = run_recipe(db, recipe);
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  const auto& audit = run.report["audit"];
  REQUIRE(audit.size() == 4);
  CHECK(audit[0]["data"] ==
        json{{"task", 1}, {"names", "Ann,Bo"}, {"last", "Bo"}, {"everyone", 3}});
  CHECK(audit[1]["data"] == json{{"task", 2}, {"names", "Cy"}, {"last", "Cy"}, {"everyone", 3}});
  CHECK(audit[2]["data"] == json{{"task", 3}, {"names", ""}, {"last", "none"}, {"everyone", 3}});
  CHECK(audit[3]["data"] == json{{"task", 4}, {"names", "Bo"}, {"last", "Bo"}, {"everyone", 3}});
}

TEST_CASE("a domain over numeric(p,s) is checked for rounding too", "[e2e][regression]") {
  auto db = fresh_database();
  sql(db,
      "CREATE DOMAIN price AS numeric(10,2); "
      "CREATE TABLE offers (id int PRIMARY KEY, amount price); "
      "INSERT INTO offers VALUES (1, NULL);");
  auto recipe = recipe_file("domain_round", R"lua(
return {
  name = "domain-round",
  table = "offers",
  writes = { offers = { "amount" } },
  each = function(row) patch_if_empty(row, "amount", "1.234") end,
}
)lua");
  auto run = run_recipe(db, recipe);
  INFO(run.output);
  CHECK(run.exit_code == 1);
  CHECK(run.output.find("numeric(10,2) keeps 2") != std::string::npos);
  CHECK(rows(db, "SELECT count(*) FROM offers WHERE amount IS NULL")[0] == "1");
}

TEST_CASE("map_id: a UUID legacy id mapped earlier in upper case is found, not remapped",
          "[e2e][regression]") {
  auto db = fresh_database();
  sql(db, R"sql(
CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items VALUES (1);
CREATE SCHEMA host_ledger;
CREATE TABLE host_ledger.customer_id_map (legacy_id text UNIQUE, uuid uuid UNIQUE);
INSERT INTO host_ledger.customer_id_map
  VALUES ('A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11');
)sql");
  auto recipe = recipe_file("uuid_upper_map", R"lua(
return {
  name = "uuid-upper-map",
  table = "items",
  writes = {},
  each = function(row)
    audit("mapped", { id = map_id("customer", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11") })
  end,
}
)lua");
  auto run = run_recipe(db, recipe);
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  CHECK(run.report["audit"][0]["data"]["id"] == "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
  CHECK(run.stat("ids_mapped") == 0);
  CHECK(rows(db, "SELECT count(*) FROM host_ledger.customer_id_map")[0] == "1");
}
