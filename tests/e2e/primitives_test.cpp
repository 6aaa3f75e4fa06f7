// End to end: every recipe primitive of RECIPE_API.md section 2, driven through
// the built `host` binary against a fresh database.
#include <catch2/catch.hpp>
#include <map>

#include "host/uuid5.hpp"
#include "tests/e2e/e2e_helpers.hpp"

using namespace host::testing;
using namespace host::testing::e2e;
using nlohmann::json;

namespace {

// The data of every audit event named `event`, in order.
std::vector<json> audit_data(const HostRun& run, const std::string& event) {
  std::vector<json> data;
  if (!run.report.contains("audit")) return data;
  for (const auto& item : run.report["audit"])
    if (item["event"] == event) data.push_back(item["data"]);
  return data;
}

// Audit data keyed by its "id" field.
std::map<long long, json> audit_by_id(const HostRun& run, const std::string& event) {
  std::map<long long, json> by_id;
  for (const auto& data : audit_data(run, event)) by_id[data["id"].get<long long>()] = data;
  return by_id;
}

// Ids seen by a recipe that audits `seen` with {id = row.id}, in scan order.
std::vector<long long> seen_ids(const HostRun& run) {
  std::vector<long long> ids;
  for (const auto& data : audit_data(run, "seen")) ids.push_back(data["id"].get<long long>());
  return ids;
}

#define REQUIRE_RUN_OK(run)                         \
  do {                                              \
    INFO((run).output);                             \
    REQUIRE((run).exit_code == 0);                  \
    REQUIRE((run).report.is_object());              \
    REQUIRE((run).report["status"] == "succeeded"); \
  } while (false)

const char* const k_people = R"sql(
CREATE TABLE people (id int PRIMARY KEY, name text, age int, email text);
INSERT INTO people VALUES (1, 'Ann', 30, 'a@x'), (2, 'Bob', 25, 'b@x'), (3, 'Cy', 40, NULL),
                          (4, 'Dee', NULL, 'd@x');
CREATE TABLE items (id int PRIMARY KEY, status text);
INSERT INTO items VALUES (1, NULL);
)sql";

}  // namespace

TEST_CASE("read: first matching row, opts.columns and opts.order_by", "[e2e][primitives]") {
  auto db = fresh_database();
  sql(db, k_people);
  auto recipe = recipe_file("read", R"lua(
return {
  name = "read-test",
  table = "items",
  each = function(row)
    local some = read("people", { id = 2 }, { columns = { "name" } })
    local youngest = read("people", { age = NOT_EMPTY }, { order_by = "age" })
    local oldest = read("people", { age = NOT_EMPTY }, { order_by = { "age", "desc" } })
    local last_name = read("people", nil, { order_by = { "name", "desc" } })
    local first_name = read("people", {}, { order_by = { "name", "asc" } })
    local none = read("people", { id = 99 })
    local by_text = read("people", { name = "Cy" })
    audit("read", {
      some_name = some.name, some_id = some.id,
      some_has_age = some.age ~= nil, some_has_email = some.email ~= nil,
      youngest = youngest.name, oldest = oldest.name,
      last_name = last_name.name, first_name = first_name.name,
      none_is_nil = none == nil, by_text_age = by_text.age, by_text_email_nil = by_text.email == nil,
    })
  end,
}
)lua");
  auto run = run_recipe(db, recipe);
  REQUIRE_RUN_OK(run);
  auto data = audit_data(run, "read");
  REQUIRE(data.size() == 1);
  CHECK(data[0]["some_name"] == "Bob");
  CHECK(data[0]["some_id"] == 2);
  CHECK(data[0]["some_has_age"] == false);
  CHECK(data[0]["some_has_email"] == false);
  CHECK(data[0]["youngest"] == "Bob");
  CHECK(data[0]["oldest"] == "Cy");
  CHECK(data[0]["last_name"] == "Dee");
  CHECK(data[0]["first_name"] == "Ann");
  CHECK(data[0]["none_is_nil"] == true);
  CHECK(data[0]["by_text_age"] == 40);
  CHECK(data[0]["by_text_email_nil"] == true);
}

TEST_CASE("read_all: every matching row; past opts.limit is an error", "[e2e][primitives]") {
  auto db = fresh_database();
  sql(db, k_people);
  SECTION("rows, filters, order and a limit that is not exceeded") {
    auto recipe = recipe_file("read_all", R"lua(
return {
  name = "read-all-test",
  table = "items",
  each = function(row)
    local with_age = read_all("people", { age = NOT_EMPTY }, { order_by = { "age", "desc" } })
    local ids = {}
    for i, person in ipairs(with_age) do ids[i] = person.id end
    local exactly = read_all("people", {}, { limit = 4 })
    local nobody = read_all("people", { name = "Zed" })
    audit("all", { ids = ids, exactly = #exactly, nobody = #nobody, nobody_type = type(nobody) })
  end,
}
)lua");
    auto run = run_recipe(db, recipe);
    REQUIRE_RUN_OK(run);
    auto data = audit_data(run, "all");
    REQUIRE(data.size() == 1);
    CHECK(data[0]["ids"] == json({3, 1, 2}));
    CHECK(data[0]["exactly"] == 4);
    CHECK(data[0]["nobody"] == 0);
    CHECK(data[0]["nobody_type"] == "table");
  }
  SECTION("more rows than opts.limit stops the run") {
    auto recipe = recipe_file("read_all_overflow", R"lua(
return {
  name = "read-all-overflow",
  table = "items",
  writes = { items = { "status" } },
  each = function(row)
    patch_if_empty(row, "status", "touched")
    local everyone = read_all("people", {}, { limit = 3 })
    audit("unreachable", { n = #everyone })
  end,
}
)lua");
    auto run = run_recipe(db, recipe);
    INFO(run.output);
    CHECK(run.exit_code == 1);
    CHECK(run.output.find("read_all_overflow.lua:8") != std::string::npos);
    CHECK(run.output.find("3") != std::string::npos);
    CHECK(run.report["status"] == "failed");
    CHECK(audit_data(run, "unreachable").empty());
    CHECK(value(db, "SELECT coalesce(status, 'NULL') FROM items") == "NULL");
  }
}

TEST_CASE("query: $1..$n are bound and results are typed", "[e2e][primitives]") {
  auto db = fresh_database();
  sql(db, k_people);
  auto recipe = recipe_file("query", R"lua(
return {
  name = "query-test",
  table = "items",
  each = function(row)
    local rows = query([[
      select id, name, age, age * 1.5 as scaled, $1::int8 as big, $2::text as echo,
             $3::int8 as small8, id = $4 as is_two, 0.1::float8 as f8
      from people where id = any($5::int[]) order by id
    ]], "9007199254740993", "Zoë – café'; drop table people; --", 7, 2, "{1,2,3}")
    local out = {}
    for i, r in ipairs(rows) do
      out[i] = { id = r.id, name = r.name, age = r.age, scaled = r.scaled, big = r.big,
                 echo = r.echo, small8 = r.small8, is_two = r.is_two, f8 = r.f8,
                 types = type(r.id) .. "," .. type(r.name) .. "," .. type(r.scaled) .. "," ..
                         type(r.big) .. "," .. type(r.small8) .. "," .. type(r.is_two) .. "," ..
                         type(r.f8) }
    end
    local empty = query("select 1 as one where false")
    audit("query", { rows = out, empty = #empty })
  end,
}
)lua");
  auto run = run_recipe(db, recipe);
  REQUIRE_RUN_OK(run);
  auto data = audit_data(run, "query");
  REQUIRE(data.size() == 1);
  const auto& rows = data[0]["rows"];
  REQUIRE(rows.size() == 3);
  CHECK(rows[0]["id"] == 1);
  CHECK(rows[0]["name"] == "Ann");
  CHECK(rows[0]["scaled"] == "45.0");  // numeric stays exact text
  CHECK(rows[0]["big"] == "9007199254740993");
  CHECK(rows[0]["echo"] == "Zoë – café'; drop table people; --");
  CHECK(rows[0]["small8"] == 7);
  CHECK(rows[0]["is_two"] == false);
  CHECK(rows[1]["is_two"] == true);
  CHECK(rows[0]["f8"] == 0.1);
  CHECK(rows[0]["types"] == "number,string,string,string,number,boolean,number");
  CHECK(rows[2]["id"] == 3);
  CHECK(data[0]["empty"] == 0);
  CHECK(value(db, "SELECT count(*) FROM people") == "4");
}

TEST_CASE("patch_if_empty: NULL and blank are empty, values are protected, text is exact",
          "[e2e][primitives]") {
  auto db = fresh_database();
  sql(db, R"sql(
CREATE TABLE t (id int PRIMARY KEY, status text, code varchar(20), n int);
INSERT INTO t VALUES (1, NULL, NULL, NULL), (2, '  ', '  ', NULL), (3, 'Kept', 'K', 5),
                     (4, '', '', NULL), (5, E'\t\n ', NULL, NULL);
)sql");
  SECTION("default: NULL and white space only are empty") {
    auto recipe = recipe_file("patch_if_empty", R"lua(
return {
  name = "patch-if-empty",
  table = "t",
  writes = { t = { "status", "code", "n" } },
  each = function(row)
    local queued = patch_if_empty(row, "status", "Zoë – café", { reason = "default" })
    patch_if_empty(row, "code", "ß✓")
    local n_queued = patch_if_empty(row, "n", 7)
    audit("r", { id = row.id, queued = queued, n_queued = n_queued })
  end,
}
)lua");
    auto run = run_recipe(db, recipe);
    REQUIRE_RUN_OK(run);
    CHECK(rows(db, "SELECT id, status, code, n FROM t ORDER BY id") ==
          std::vector<std::string>{"1|Zoë – café|ß✓|7", "2|Zoë – café|ß✓|7", "3|Kept|K|5",
                                   "4|Zoë – café|ß✓|7", "5|Zoë – café|ß✓|7"});
    // Byte-exact: the stored text is the UTF-8 the recipe wrote.
    CHECK(value(db, "SELECT encode(convert_to(status, 'UTF8'), 'hex') FROM t WHERE id = 1") ==
          "5a6fc3ab20e2809320636166c3a9");
    CHECK(run.stat("scanned") == 5);
    CHECK(run.stat("patched") == 12);
    CHECK(run.stat("protected") == 3);
    auto by_id = audit_by_id(run, "r");
    CHECK(by_id[1]["queued"] == true);
    CHECK(by_id[2]["queued"] == true);
    CHECK(by_id[3]["queued"] == false);
    CHECK(by_id[3]["n_queued"] == false);
    CHECK(changes_by_column(run.report) == json({{"t.status", 4}, {"t.code", 4}, {"t.n", 4}}));
  }
  SECTION("opts.empty = \"null\": only NULL is empty, blanks are kept") {
    auto recipe = recipe_file("patch_if_empty_null", R"lua(
return {
  name = "patch-if-empty-null",
  table = "t",
  writes = { t = { "status" } },
  each = function(row)
    local queued = patch_if_empty(row, "status", "filled", { empty = "null" })
    audit("r", { id = row.id, queued = queued })
  end,
}
)lua");
    auto run = run_recipe(db, recipe);
    REQUIRE_RUN_OK(run);
    CHECK(rows(db, "SELECT id, '[' || status || ']' FROM t ORDER BY id") ==
          std::vector<std::string>{"1|[filled]", "2|[  ]", "3|[Kept]", "4|[]", "5|[\t\n ]"});
    CHECK(run.stat("patched") == 1);
    CHECK(run.stat("protected") == 4);
    auto by_id = audit_by_id(run, "r");
    CHECK(by_id[1]["queued"] == true);
    CHECK(by_id[2]["queued"] == false);
  }
}

TEST_CASE("patch_if: compare-and-set on the expected value (nil = empty)", "[e2e][primitives]") {
  auto db = fresh_database();
  sql(db, R"sql(
CREATE TABLE t (id int PRIMARY KEY, status text);
INSERT INTO t VALUES (1, NULL), (2, 'v1'), (3, 'other'), (4, '  '), (5, 'v1');
)sql");
  auto recipe = recipe_file("patch_if", R"lua(
return {
  name = "patch-if",
  table = "t",
  writes = { t = { "status" } },
  each = function(row)
    local ok
    if row.id == 1 or row.id == 4 then
      ok = patch_if(row, "status", nil, "from-empty")
    elseif row.id == 5 then
      ok = patch_if(row, "status", nil, "must-not-win")
    else
      ok = patch_if(row, "status", "v1", "v2", { reason = "upgrade" })
    end
    audit("r", { id = row.id, ok = ok })
  end,
}
)lua");
  auto run = run_recipe(db, recipe);
  REQUIRE_RUN_OK(run);
  CHECK(rows(db, "SELECT id, status FROM t ORDER BY id") ==
        std::vector<std::string>{"1|from-empty", "2|v2", "3|other", "4|from-empty", "5|v1"});
  auto by_id = audit_by_id(run, "r");
  CHECK(by_id[1]["ok"] == true);
  CHECK(by_id[2]["ok"] == true);
  CHECK(by_id[3]["ok"] == false);
  CHECK(by_id[4]["ok"] == true);
  CHECK(by_id[5]["ok"] == false);
  CHECK(run.stat("patched") == 3);
  CHECK(run.stat("protected") == 2);
  // Done: a second run finds nothing to change.
  auto again = run_recipe(db, recipe);
  REQUIRE_RUN_OK(again);
  CHECK(again.stat("patched") == 0);
}

TEST_CASE("insert_if_absent: inserts once, never changes an existing row, opts.key",
          "[e2e][primitives]") {
  auto db = fresh_database();
  sql(db, R"sql(
CREATE TABLE src (id int PRIMARY KEY, name text, code text);
INSERT INTO src VALUES (1, 'A', 'a'), (2, 'B', 'b'), (3, 'C', 'c');
CREATE TABLE tags (id int PRIMARY KEY, name text, color text);
INSERT INTO tags VALUES (1, 'old', NULL);
CREATE TABLE codes (id serial PRIMARY KEY, code text UNIQUE, label text);
INSERT INTO codes (code, label) VALUES ('a', 'existing');
)sql");
  auto recipe = recipe_file("insert_if_absent", R"lua(
return {
  name = "insert-if-absent",
  table = "src",
  writes = { tags = "*", codes = { "code", "label" } },
  each = function(row)
    local tag = insert_if_absent("tags", { id = row.id, name = row.name, color = "blue" })
    local code = insert_if_absent("codes", { code = row.code, label = row.name }, { key = { "code" } })
    audit("r", { id = row.id, tag = tag, code = code })
  end,
}
)lua");
  auto run = run_recipe(db, recipe);
  REQUIRE_RUN_OK(run);
  CHECK(rows(db, "SELECT id, name, coalesce(color, 'NULL') FROM tags ORDER BY id") ==
        std::vector<std::string>{"1|old|NULL", "2|B|blue", "3|C|blue"});
  CHECK(rows(db, "SELECT code, label FROM codes ORDER BY code") ==
        std::vector<std::string>{"a|existing", "b|B", "c|C"});
  CHECK(run.stat("inserted") == 4);
  CHECK(run.stat("patched") == 0);
  auto state = dump_user_tables(db);
  auto again = run_recipe(db, recipe);
  REQUIRE_RUN_OK(again);
  CHECK(again.stat("inserted") == 0);
  CHECK(dump_user_tables(db) == state);
}

TEST_CASE("fill_from: inserts absent rows and fills only empty columns", "[e2e][primitives]") {
  auto db = fresh_database();
  sql(db, R"sql(
CREATE TABLE src (id int PRIMARY KEY, email text, phone text, city text);
INSERT INTO src VALUES (1, 'new@x', '111', 'Paris'), (2, 'b@x', '222', 'Rome'),
                       (3, 'c@x', NULL, 'Oslo');
CREATE TABLE contacts (id int PRIMARY KEY, email text, phone text, city text);
INSERT INTO contacts VALUES (1, 'keep@x', NULL, '  '), (3, NULL, '333', 'Bergen');
)sql");
  auto recipe = recipe_file("fill_from", R"lua(
return {
  name = "fill-from",
  table = "src",
  writes = { contacts = { "id", "email", "phone", "city" } },
  each = function(row)
    fill_from("contacts", { id = row.id, email = row.email, phone = row.phone, city = row.city })
  end,
}
)lua");
  auto run = run_recipe(db, recipe);
  REQUIRE_RUN_OK(run);
  CHECK(rows(db, "SELECT * FROM contacts ORDER BY id") ==
        std::vector<std::string>{"1|keep@x|111|Paris", "2|b@x|222|Rome", "3|c@x|333|Bergen"});
  CHECK(run.stat("inserted") == 1);
  CHECK(run.stat("patched") == 3);  // contacts 1: phone, city; contacts 3: email
  auto state = dump_user_tables(db);
  auto again = run_recipe(db, recipe);
  REQUIRE_RUN_OK(again);
  CHECK(again.stat("inserted") == 0);
  CHECK(again.stat("patched") == 0);
  CHECK(dump_user_tables(db) == state);
}

TEST_CASE("map_id: stable UUIDs, persisted mappings, existing mappings win", "[e2e][primitives]") {
  const char* const fixture = R"sql(
CREATE TABLE legacy (id int PRIMARY KEY, code text, uuid uuid);
INSERT INTO legacy VALUES (1, 'P-1', NULL), (2, 'P-2', NULL), (3, NULL, NULL),
                          (4, 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', NULL), (5, 'P-1', NULL);
)sql";
  auto recipe = recipe_file("map_id", R"lua(
return {
  name = "map-id",
  table = "legacy",
  writes = { legacy = { "uuid" } },
  each = function(row)
    local id = map_id("projects", row.code)
    audit("id", { id = row.id, uuid = id or "nil", numeric = map_id("projects", 42) })
    if id then patch_if_empty(row, "uuid", id) end
  end,
}
)lua");
  std::string p1 = host::uuid_v5("projects", "P-1"), p2 = host::uuid_v5("projects", "P-2"),
              n42 = host::uuid_v5("projects", "42");
  std::string canonical = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11";

  auto db = fresh_database();
  sql(db, fixture);
  auto run = run_recipe(db, recipe);
  REQUIRE_RUN_OK(run);
  auto ids = audit_by_id(run, "id");
  CHECK(ids[1]["uuid"] == p1);
  CHECK(ids[5]["uuid"] == p1);
  CHECK(ids[2]["uuid"] == p2);
  CHECK(ids[3]["uuid"] == "nil");
  CHECK(ids[4]["uuid"] == canonical);
  CHECK(ids[1]["numeric"] == n42);
  CHECK(run.stat("ids_mapped") == 4);
  CHECK(
      rows(db, "SELECT legacy_id, uuid FROM host_ledger.projects_id_map ORDER BY legacy_id") ==
      // A UUID legacy id is stored in its canonical form, one row however spelled.
      std::vector<std::string>{"42|" + n42, "P-1|" + p1, "P-2|" + p2, canonical + "|" + canonical});
  CHECK(rows(db, "SELECT id, coalesce(uuid::text, 'NULL') FROM legacy ORDER BY id") ==
        std::vector<std::string>{"1|" + p1, "2|" + p2, "3|NULL", "4|" + canonical, "5|" + p1});

  SECTION("the same ids on the next run, nothing new mapped") {
    sql(db, "UPDATE legacy SET uuid = NULL");
    auto again = run_recipe(db, recipe);
    REQUIRE_RUN_OK(again);
    CHECK(audit_by_id(again, "id")[2]["uuid"] == p2);
    CHECK(again.stat("ids_mapped") == 0);
    CHECK(value(db, "SELECT count(*) FROM host_ledger.projects_id_map") == "4");
  }
  SECTION("the same ids in another database") {
    auto other = fresh_database();
    sql(other, fixture);
    auto elsewhere = run_recipe(other, recipe);
    REQUIRE_RUN_OK(elsewhere);
    auto other_ids = audit_by_id(elsewhere, "id");
    CHECK(other_ids[1]["uuid"] == p1);
    CHECK(other_ids[2]["uuid"] == p2);
    CHECK(other_ids[4]["uuid"] == canonical);
  }
  SECTION("a mapping inserted by hand wins and is never overwritten") {
    auto other = fresh_database();
    sql(other, fixture);
    // A first run over one row creates the ledger and the map table.
    REQUIRE(run_recipe(other, recipe, {"--limit", "1"}).exit_code == 0);
    sql(other,
        "INSERT INTO host_ledger.projects_id_map (legacy_id, uuid) VALUES "
        "('P-2', '11111111-1111-1111-1111-111111111111')");
    auto with_hand_mapping = run_recipe(other, recipe);
    REQUIRE_RUN_OK(with_hand_mapping);
    CHECK(audit_by_id(with_hand_mapping, "id")[2]["uuid"] ==
          "11111111-1111-1111-1111-111111111111");
    CHECK(value(other, "SELECT uuid FROM host_ledger.projects_id_map WHERE legacy_id = 'P-2'") ==
          "11111111-1111-1111-1111-111111111111");
    CHECK(value(other, "SELECT uuid FROM legacy WHERE id = 2") ==
          "11111111-1111-1111-1111-111111111111");
  }
  SECTION("a dry run reports new mappings and stores none") {
    auto other = fresh_database();
    sql(other, fixture);
    auto dry = run_recipe(other, recipe, {"--dry-run"});
    REQUIRE_RUN_OK(dry);
    CHECK(dry.stat("ids_mapped") == 4);
    CHECK(audit_by_id(dry, "id")[2]["uuid"] == p2);
    CHECK(value(other,
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'host_ledger' AND "
                "tablename = 'projects_id_map'") == "0");
    CHECK(value(other, "SELECT count(*) FROM legacy WHERE uuid IS NOT NULL") == "0");
  }
}

TEST_CASE("audit: events in the report, the ledger and stats.audit_events", "[e2e][primitives]") {
  auto db = fresh_database();
  sql(db,
      "CREATE TABLE t (id int PRIMARY KEY, name text); "
      "INSERT INTO t VALUES (1, 'Zoë'), (2, 'b'), (3, NULL)");
  auto recipe = recipe_file("audit", R"lua(
return {
  name = "audit-test",
  table = "t",
  each = function(row)
    audit("seen", { id = row.id, name = row.name, nested = { list = { 1, 2 } } })
  end,
}
)lua");
  auto run = run_recipe(db, recipe);
  REQUIRE_RUN_OK(run);
  CHECK(run.stat("audit_events") == 3);
  REQUIRE(run.report["audit"].size() == 3);
  CHECK(run.report["audit"][0]["event"] == "seen");
  CHECK(run.report["audit"][0]["data"] ==
        json({{"id", 1}, {"name", "Zoë"}, {"nested", {{"list", {1, 2}}}}}));
  CHECK(seen_ids(run) == std::vector<long long>{1, 2, 3});
  CHECK(value(db, "SELECT count(*) FROM host_ledger.audit WHERE run_id = '" + run.run_id + "'") ==
        "3");
}

TEST_CASE("review: recorded in the report, never written", "[e2e][primitives]") {
  auto db = fresh_database();
  sql(db,
      "CREATE TABLE t (id int PRIMARY KEY, status text); INSERT INTO t VALUES (1, NULL), (2, 'x')");
  auto recipe = recipe_file("review", R"lua(
return {
  name = "review-test",
  table = "t",
  writes = { t = { "status" } },
  each = function(row)
    if row.id == 1 then review(row, "status", "Maybe", "a person should decide") end
  end,
}
)lua");
  auto before = dump_user_tables(db);
  auto run = run_recipe(db, recipe);
  REQUIRE_RUN_OK(run);
  CHECK(dump_user_tables(db) == before);
  CHECK(run.stat("review") == 1);
  CHECK(run.stat("patched") == 0);
  REQUIRE(run.report["review"].size() == 1);
  const auto& item = run.report["review"][0];
  CHECK(item["table"] == "t");
  CHECK(item["key"] == json({{"id", 1}}));
  CHECK(item["column"] == "status");
  CHECK(item["value"] == "Maybe");
  CHECK(item["reason"] == "a person should decide");
}

TEST_CASE("confidence gate: writes below --min-confidence become review items",
          "[e2e][primitives]") {
  auto db = fresh_database();
  sql(db,
      "CREATE TABLE t (id int PRIMARY KEY, status text, note text); "
      "INSERT INTO t VALUES (1, NULL, NULL)");
  auto recipe = recipe_file("confidence", R"lua(
return {
  name = "confidence-test",
  table = "t",
  writes = { t = { "status", "note" } },
  each = function(row)
    local medium = patch_if_empty(row, "status", "Guess", { confidence = "medium", reason = "guessed" })
    local low = patch_if_empty(row, "note", "Wild guess", { confidence = "low", reason = "wild" })
    audit("r", { id = row.id, medium = medium, low = low })
  end,
}
)lua");
  SECTION("default --min-confidence high: nothing written, two review items") {
    auto run = run_recipe(db, recipe);
    REQUIRE_RUN_OK(run);
    CHECK(value(db, "SELECT coalesce(status, 'NULL') || '|' || coalesce(note, 'NULL') FROM t") ==
          "NULL|NULL");
    CHECK(run.stat("patched") == 0);
    CHECK(run.stat("review") == 2);
    REQUIRE(run.report["review"].size() == 2);
    std::map<std::string, json> by_column;
    for (const auto& item : run.report["review"]) by_column[item["column"]] = item;
    CHECK(by_column["status"]["value"] == "Guess");
    CHECK(by_column["status"]["confidence"] == "medium");
    CHECK(by_column["status"]["reason"] == "guessed");
    CHECK(by_column["status"]["table"] == "t");
    CHECK(by_column["status"]["key"] == json({{"id", 1}}));
    CHECK(by_column["note"]["confidence"] == "low");
    CHECK(audit_by_id(run, "r")[1]["medium"] == false);
    CHECK(value(db, "SELECT count(*) FROM host_ledger.review WHERE run_id = '" + run.run_id +
                        "'") == "2");
  }
  SECTION("--min-confidence medium: the medium write is applied, the low one reviewed") {
    auto run = run_recipe(db, recipe, {"--min-confidence", "medium"});
    REQUIRE_RUN_OK(run);
    CHECK(value(db, "SELECT coalesce(status, 'NULL') || '|' || coalesce(note, 'NULL') FROM t") ==
          "Guess|NULL");
    CHECK(run.stat("patched") == 1);
    CHECK(run.stat("review") == 1);
    CHECK(value(db, "SELECT confidence || '|' || reason FROM host_ledger.changes WHERE run_id = '" +
                        run.run_id + "'") == "medium|guessed");
  }
  SECTION("--min-confidence low: both applied") {
    auto run = run_recipe(db, recipe, {"--min-confidence", "low"});
    REQUIRE_RUN_OK(run);
    CHECK(run.stat("patched") == 2);
    CHECK(run.stat("review") == 0);
  }
}

TEST_CASE("log.info and vars", "[e2e][primitives]") {
  auto db = fresh_database();
  sql(db, "CREATE TABLE t (id int PRIMARY KEY, status text); INSERT INTO t VALUES (1, NULL)");
  auto recipe = recipe_file("vars_log", R"lua(
return {
  name = "vars-log",
  table = "t",
  writes = { t = { "status" } },
  each = function(row)
    log.info("hello", vars.greeting, 42)
    log.warn("careful", row.id)
    patch_if_empty(row, "status", vars.status)
    local ok = pcall(function() vars.status = "changed" end)
    audit("vars", { missing = vars.missing == nil, writable = ok, status = vars.status })
  end,
}
)lua");
  auto run = run_recipe(db, recipe, {"--var", "greeting=Zoë – hi", "--var", "status=From var"});
  REQUIRE_RUN_OK(run);
  CHECK(run.output.find("[vars-log] hello Zoë – hi 42") != std::string::npos);
  CHECK(run.output.find("[vars-log] careful 1") != std::string::npos);
  CHECK(value(db, "SELECT status FROM t") == "From var");
  auto data = audit_data(run, "vars");
  REQUIRE(data.size() == 1);
  CHECK(data[0]["missing"] == true);
  CHECK(data[0]["writable"] == false);
  CHECK(data[0]["status"] == "From var");
}

TEST_CASE("where: values, EMPTY, NOT_EMPTY, arrays (IN) and SQL strings", "[e2e][primitives]") {
  auto db = fresh_database();
  sql(db, R"sql(
CREATE TABLE t (id int PRIMARY KEY, status text, n int, kind text);
INSERT INTO t VALUES (1, NULL, NULL, 'a'), (2, '  ', 5, 'b'), (3, 'done', NULL, 'a'),
                     (4, '', 7, 'c'), (5, 'open', 0, 'b');
)sql");
  auto scan = [&](const std::string& where) {
    auto recipe = recipe_file("where", R"lua(
return {
  name = "where-test",
  table = "t",
  where = )lua" + where + R"lua(,
  each = function(row) audit("seen", { id = row.id }) end,
}
)lua");
    auto run = run_recipe(db, recipe);
    INFO(where << "\n" << run.output);
    CHECK(run.exit_code == 0);
    CHECK(run.stat("scanned") == static_cast<long long>(seen_ids(run).size()));
    return seen_ids(run);
  };
  using Ids = std::vector<long long>;
  CHECK(scan("{ status = EMPTY }") == Ids{1, 2, 4});
  CHECK(scan("{ status = NOT_EMPTY }") == Ids{3, 5});
  CHECK(scan("{ n = EMPTY }") == Ids{1, 3});
  CHECK(scan("{ n = NOT_EMPTY }") == Ids{2, 4, 5});
  CHECK(scan("{ kind = 'a' }") == Ids{1, 3});
  CHECK(scan("{ kind = { 'a', 'c' } }") == Ids{1, 3, 4});
  CHECK(scan("{ id = { 2, 5 }, status = NOT_EMPTY }") == Ids{5});
  CHECK(scan("{ n = 0 }") == Ids{5});
  CHECK(scan("\"n > 1 and kind <> 'c'\"") == Ids{2});
  CHECK(scan("{}") == Ids{1, 2, 3, 4, 5});
}

TEST_CASE("where filters in read_all: EMPTY, NOT_EMPTY, arrays (IN) and SQL strings",
          "[e2e][primitives]") {
  auto db = fresh_database();
  sql(db, R"sql(
CREATE TABLE t (id int PRIMARY KEY, status text, n int, kind text);
INSERT INTO t VALUES (1, NULL, NULL, 'a'), (2, '  ', 5, 'b'), (3, 'done', NULL, 'a'),
                     (4, '', 7, 'c'), (5, 'open', 0, 'b');
)sql");
  auto recipe = recipe_file("where_read", R"lua(
return {
  name = "where-read",
  table = "t",
  each = function(row)
    if row.id ~= 1 then return end
    local function ids(rows)
      local out = {}
      for i, r in ipairs(rows) do out[i] = r.id end
      return out
    end
    audit("reads", {
      empty = ids(read_all("t", { status = EMPTY }, { order_by = "id" })),
      not_empty = ids(read_all("t", { status = NOT_EMPTY }, { order_by = "id" })),
      in_list = ids(read_all("t", { kind = { "b", "c" } }, { order_by = "id" })),
      equals = ids(read_all("t", { kind = "a", n = EMPTY }, { order_by = "id" })),
      sql = ids(read_all("t", "n is null or n = 0", { order_by = { "id", "desc" } })),
    })
  end,
}
)lua");
  auto run = run_recipe(db, recipe);
  REQUIRE_RUN_OK(run);
  auto data = audit_data(run, "reads");
  REQUIRE(data.size() == 1);
  CHECK(data[0]["empty"] == json({1, 2, 4}));
  CHECK(data[0]["not_empty"] == json({3, 5}));
  CHECK(data[0]["in_list"] == json({2, 4, 5}));
  CHECK(data[0]["equals"] == json({1, 3}));
  CHECK(data[0]["sql"] == json({5, 3, 1}));
}

TEST_CASE("composite primary keys: scanned and patched by the whole key", "[e2e][primitives]") {
  auto db = fresh_database();
  sql(db, R"sql(
CREATE TABLE ck (a int, b text, v text, PRIMARY KEY (a, b));
INSERT INTO ck VALUES (1, 'x', NULL), (1, 'y', 'keep'), (2, 'x', NULL), (2, 'y', '  '),
                      (3, 'x', NULL);
)sql");
  auto recipe = recipe_file("composite", R"lua(
return {
  name = "composite",
  table = "ck",
  writes = { ck = { "v" } },
  each = function(row)
    patch_if_empty(row, "v", row.a .. "-" .. row.b)
    audit("seen", { a = row.a, b = row.b })
  end,
}
)lua");
  auto run = run_recipe(db, recipe, {"--batch-size", "2"});
  REQUIRE_RUN_OK(run);
  CHECK(rows(db, "SELECT a, b, v FROM ck ORDER BY a, b") ==
        std::vector<std::string>{"1|x|1-x", "1|y|keep", "2|x|2-x", "2|y|2-y", "3|x|3-x"});
  CHECK(run.stat("scanned") == 5);
  CHECK(run.stat("patched") == 4);
  CHECK(run.stat("protected") == 1);
  CHECK(audit_data(run, "seen").size() == 5);
  CHECK(value(db, "SELECT string_agg(keys::text, ' ' ORDER BY seq) FROM host_ledger.changes") ==
        "[[\"1\", \"x\"]] [[\"2\", \"x\"], [\"2\", \"y\"]] [[\"3\", \"x\"]]");
}

TEST_CASE("types read into Lua as the contract maps them", "[e2e][primitives]") {
  auto db = fresh_database();
  sql(db, R"sql(
CREATE TABLE types (id int PRIMARY KEY, b bool, i2 int2, i4 int4, i8 int8, big int8, neg int8,
                    f8 float8, num numeric, t text, vc varchar(10), u uuid, d date,
                    ts timestamptz, j jsonb);
INSERT INTO types VALUES
  (1, true, -32768, 2147483647, 9007199254740992, 9007199254740993, -9223372036854775808, 0.1,
   12345678901234567890.123, 'Zoë – café', 'ab  ', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11',
   '2024-02-29', '2024-01-02 03:04:05.123456+00', '{"a": [1, 2.50]}'),
  (2, false, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
)sql");
  auto recipe = recipe_file("types_read", R"lua(
return {
  name = "types-read",
  table = "types",
  each = function(row)
    local kinds, present = {}, {}
    for column, v in pairs(row) do
      kinds[column] = type(v)
      present[#present + 1] = column
    end
    table.sort(present)
    audit("row", { id = row.id, values = row, kinds = kinds, present = table.concat(present, ",") })
  end,
}
)lua");
  auto run = run_recipe(db, recipe);
  REQUIRE_RUN_OK(run);
  auto by_id = audit_by_id(run, "row");
  const auto& v = by_id[1]["values"];
  const auto& k = by_id[1]["kinds"];
  CHECK(v["b"] == true);
  CHECK(k["b"] == "boolean");
  CHECK(v["i2"] == -32768);
  CHECK(k["i2"] == "number");
  CHECK(v["i4"] == 2147483647);
  CHECK(k["i4"] == "number");
  CHECK(v["i8"] == 9007199254740992LL);
  CHECK(k["i8"] == "number");
  CHECK(v["big"] == "9007199254740993");
  CHECK(k["big"] == "string");
  CHECK(v["neg"] == "-9223372036854775808");
  CHECK(k["neg"] == "string");
  CHECK(v["f8"] == 0.1);
  CHECK(k["f8"] == "number");
  CHECK(v["num"] == "12345678901234567890.123");
  CHECK(k["num"] == "string");
  CHECK(v["t"] == "Zoë – café");
  CHECK(v["vc"] == "ab  ");
  CHECK(v["u"] == "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
  CHECK(k["u"] == "string");
  CHECK(v["d"] == "2024-02-29");
  CHECK(v["ts"] == value(db, "SELECT ts::text FROM types WHERE id = 1"));
  CHECK(k["ts"] == "string");
  CHECK(v["j"] == "{\"a\": [1, 2.50]}");
  CHECK(k["j"] == "string");
  // SQL NULL is nil: row 2 has only its key and the boolean.
  CHECK(by_id[2]["present"] == "b,id");
  CHECK(by_id[2]["values"]["b"] == false);
}

TEST_CASE("writes of each type are exact; a value that does not fit is an error",
          "[e2e][primitives]") {
  auto db = fresh_database();
  sql(db, R"sql(
CREATE TABLE w (id int PRIMARY KEY, b bool, i2 int2, i4 int4, i8 int8, f8 float8, third float8,
                num numeric, t text, u uuid, d date, ts timestamptz, j jsonb);
INSERT INTO w (id) VALUES (1), (2);
)sql");
  SECTION("every type round-trips") {
    auto recipe = recipe_file("types_write", R"lua(
return {
  name = "types-write",
  table = "w",
  writes = { w = "*" },
  each = function(row)
    if row.id == 1 then
      patch_if_empty(row, "b", true)
      patch_if_empty(row, "i2", -32768)
      patch_if_empty(row, "i4", 2147483647)
      patch_if_empty(row, "i8", "9007199254740993")
      patch_if_empty(row, "f8", 0.1)
      patch_if_empty(row, "third", 1 / 3)
      patch_if_empty(row, "num", "12345678901234567890.123")
      patch_if_empty(row, "t", "Zoë – café \"quoted\" \\ back")
      patch_if_empty(row, "u", "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11")
      patch_if_empty(row, "d", "2024-02-29")
      patch_if_empty(row, "ts", "2024-01-02T03:04:05.123456Z")
      patch_if_empty(row, "j", { a = { 1, 2.5 }, s = "Zoë" })
    else
      patch_if_empty(row, "b", false)
      patch_if_empty(row, "i8", 9007199254740992)
      patch_if_empty(row, "f8", 1e20)
      patch_if_empty(row, "num", 0.1)
      patch_if_empty(row, "j", "[1, 2, 3]")
    end
  end,
}
)lua");
    auto run = run_recipe(db, recipe);
    REQUIRE_RUN_OK(run);
    CHECK(run.stat("patched") == 17);
    CHECK(rows(db, "SELECT b, i2, i4, i8, f8, num, t, u, d FROM w WHERE id = 1") ==
          std::vector<std::string>{"t|-32768|2147483647|9007199254740993|0.1|"
                                   "12345678901234567890.123|Zoë – café \"quoted\" \\ back|"
                                   "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11|2024-02-29"});
    CHECK(value(db, "SELECT third = 1::float8 / 3 FROM w WHERE id = 1") == "t");
    CHECK(value(db, "SELECT ts = '2024-01-02 03:04:05.123456+00' FROM w WHERE id = 1") == "t");
    CHECK(value(db, "SELECT j = '{\"a\": [1, 2.5], \"s\": \"Zoë\"}'::jsonb FROM w WHERE id = 1") ==
          "t");
    CHECK(rows(db, "SELECT b, i8, f8 = 1e20, num, j FROM w WHERE id = 2") ==
          std::vector<std::string>{"f|9007199254740992|t|0.1|[1, 2, 3]"});
  }
  SECTION("values that do not fit stop the run, naming column and value") {
    struct Case {
      std::string column, lua_value, shown;
    };
    for (const Case& c :
         {Case{"i4", "'abc'", "abc"}, Case{"i2", "70000", "70000"},
          Case{"i8", "'9223372036854775808'", "9223372036854775808"},
          Case{"u", "'not-a-uuid'", "not-a-uuid"}, Case{"d", "'2024-02-30'", "2024-02-30"},
          Case{"b", "'maybe'", "maybe"}, Case{"j", "'{broken'", "{broken"}}) {
      auto recipe = recipe_file("bad_" + c.column, R"lua(
return {
  name = "bad-value",
  table = "w",
  writes = { w = "*" },
  each = function(row)
    patch_if_empty(row, "t", "written first")
    if row.id == 2 then patch_if_empty(row, ")lua" + c.column +
                                                       R"lua(", )lua" + c.lua_value + R"lua() end
  end,
}
)lua");
      auto run = run_recipe(db, recipe);
      INFO(c.column << " = " << c.lua_value << "\n" << run.output);
      CHECK(run.exit_code == 1);
      CHECK(run.output.find(c.column) != std::string::npos);
      CHECK(run.output.find(c.shown) != std::string::npos);
      CHECK(run.output.find("bad_" + c.column + ".lua:8") != std::string::npos);
      CHECK(run.output.find("id=2") != std::string::npos);
      CHECK(run.report["status"] == "failed");
      CHECK(value(db, "SELECT count(*) FROM w WHERE t IS NOT NULL OR " + c.column +
                          " IS NOT NULL") == "0");
    }
  }
}

TEST_CASE("least privilege: a write outside `writes` is an error before anything is sent",
          "[e2e][primitives]") {
  auto db = fresh_database();
  sql(db,
      "CREATE TABLE t (id int PRIMARY KEY, status text, secret text); "
      "CREATE TABLE other (id int PRIMARY KEY, x text); "
      "INSERT INTO t VALUES (1, NULL, NULL), (2, NULL, NULL)");
  for (const std::string& call :
       {std::string("patch_if_empty(row, 'secret', 'x')"),
        std::string("insert_if_absent('other', { id = row.id, x = 'y' })")}) {
    auto recipe = recipe_file("privilege", R"lua(
return {
  name = "privilege",
  table = "t",
  writes = { t = { "status" } },
  each = function(row)
    patch_if_empty(row, "status", "ok")
    )lua" + call + R"lua(
  end,
}
)lua");
    auto run = run_recipe(db, recipe);
    INFO(call << "\n" << run.output);
    CHECK(run.exit_code == 1);
    CHECK(run.output.find("writes") != std::string::npos);
    CHECK(value(db, "SELECT count(*) FROM t WHERE status IS NOT NULL OR secret IS NOT NULL") ==
          "0");
    CHECK(value(db, "SELECT count(*) FROM other") == "0");
  }
}

TEST_CASE("a scan key other than the primary key; writes to rows obtained with read()",
          "[e2e][primitives]") {
  auto db = fresh_database();
  sql(db,
      "CREATE TABLE kk (id int PRIMARY KEY, code text UNIQUE NOT NULL, v text); "
      "INSERT INTO kk VALUES (1, 'c', NULL), (2, 'a', NULL), (3, 'b', 'keep')");
  auto recipe = recipe_file("scan_key", R"lua(
return {
  name = "scan-key",
  table = "kk",
  key = "code",
  writes = { kk = { "v" } },
  each = function(row)
    audit("seen", { code = row.code })
    patch_if_empty(row, "v", "from-" .. row.code)
    if row.code == "a" then
      local other = read("kk", { id = 1 })
      patch_if_empty(other, "v", "via-read")
    end
  end,
}
)lua");
  auto run = run_recipe(db, recipe, {"--batch-size", "1"});
  REQUIRE_RUN_OK(run);
  std::vector<std::string> order;
  for (const auto& data : audit_data(run, "seen")) order.push_back(data["code"]);
  CHECK(order == std::vector<std::string>{"a", "b", "c"});
  CHECK(rows(db, "SELECT id, code, v FROM kk ORDER BY id") ==
        std::vector<std::string>{"1|c|via-read", "2|a|from-a", "3|b|keep"});
  CHECK(run.stat("patched") == 2);
  CHECK(run.stat("protected") == 2);
}

TEST_CASE("quoted identifiers: mixed-case schema, table, key and column names",
          "[e2e][primitives]") {
  auto db = fresh_database();
  sql(db, R"sql(
CREATE SCHEMA "Sales";
CREATE TABLE "Sales"."Mixed Case" ("Id" int PRIMARY KEY, "Näme" text, "we""ird" text);
INSERT INTO "Sales"."Mixed Case" VALUES (1, NULL, NULL), (2, 'x', NULL);
)sql");
  auto recipe = recipe_file("mixed_case", R"lua(
return {
  name = "mixed-case",
  table = 'Sales."Mixed Case"',
  writes = { ['Sales."Mixed Case"'] = { "Näme", 'we"ird' } },
  each = function(row)
    patch_if_empty(row, "Näme", "filled")
    patch_if_empty(row, 'we"ird', "w")
    audit("seen", { id = row.Id, name = row["Näme"] })
  end,
}
)lua");
  auto run = run_recipe(db, recipe);
  REQUIRE_RUN_OK(run);
  CHECK(rows(db, "SELECT * FROM \"Sales\".\"Mixed Case\" ORDER BY 1") ==
        std::vector<std::string>{"1|filled|w", "2|x|w"});
  CHECK(run.stat("patched") == 3);
  CHECK(audit_by_id(run, "seen")[2]["name"] == "x");
}

TEST_CASE("--limit N processes at most N source rows", "[e2e][primitives]") {
  auto db = fresh_database();
  sql(db,
      "CREATE TABLE t (id int PRIMARY KEY, status text); "
      "INSERT INTO t SELECT g, NULL FROM generate_series(1, 7) g");
  auto recipe = recipe_file("limit", R"lua(
return {
  name = "limit-test",
  table = "t",
  writes = { t = { "status" } },
  each = function(row) patch_if_empty(row, "status", "done") end,
}
)lua");
  auto run = run_recipe(db, recipe, {"--limit", "3", "--batch-size", "2"});
  REQUIRE_RUN_OK(run);
  CHECK(run.stat("scanned") == 3);
  CHECK(value(db, "SELECT string_agg(id::text, ',' ORDER BY id) FROM t WHERE status = 'done'") ==
        "1,2,3");
}

TEST_CASE("input files: CSV records keyed by header, empty cells nil", "[e2e][primitives]") {
  auto db = fresh_database();
  sql(db, "CREATE TABLE people (id int PRIMARY KEY, name text, city text)");
  auto csv = write_file("inputs/people_" + next_suffix() + ".csv",
                        "\xEF\xBB\xBFid,name,city\r\n"
                        "1,\"Smith, Zoë\",\r\n"
                        "2,\"multi\nline\",Oslo\r\n"
                        "3,plain,\"Rome\"\r\n");
  auto recipe = recipe_file("csv_input", R"lua(
return {
  name = "csv-input",
  input = "people",
  writes = { people = "*" },
  each = function(record)
    audit("record", { id = tonumber(record.id), city_is_nil = record.city == nil })
    insert_if_absent("people", { id = record.id, name = record.name, city = record.city })
  end,
}
)lua");
  auto run = run_recipe(db, recipe, {"--input", "people=" + csv});
  REQUIRE_RUN_OK(run);
  CHECK(run.stat("scanned") == 3);
  CHECK(run.stat("inserted") == 3);
  CHECK(rows(db, "SELECT id, name, coalesce(city, 'NULL') FROM people ORDER BY id") ==
        std::vector<std::string>{"1|Smith, Zoë|NULL", "2|multi\nline|Oslo", "3|plain|Rome"});
  auto records = audit_by_id(run, "record");
  CHECK(records[1]["city_is_nil"] == true);
  CHECK(records[2]["city_is_nil"] == false);
  // The audit trail names each record by its first physical line.
  std::vector<long long> lines;
  for (const auto& event : run.report["audit"]) lines.push_back(event["key"].value("line", -1LL));
  CHECK(lines == std::vector<long long>{2, 3, 5});
}
