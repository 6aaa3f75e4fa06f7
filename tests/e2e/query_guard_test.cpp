// End to end: the guard of recipe SQL (host/query_guard.hpp), one test per attack
// an outside probe found or the rule implies, driven through the built `host`
// binary against a fresh database. A refused attack stops the run (exit 1) with a
// message naming what was refused and why, and leaves nothing behind: no row, no
// file, no lock, no killed session, no secret in the report or the audit trail.
// The positive tests show that ordinary read-only SQL still runs.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "tests/e2e/e2e_helpers.hpp"

using namespace host::testing;
using namespace host::testing::e2e;

namespace {

const char* const k_schema = R"sql(
CREATE TABLE t (id int PRIMARY KEY, status text, n int);
INSERT INTO t VALUES (1, NULL, 10), (2, NULL, 20);
CREATE TABLE victim (id int);
CREATE SEQUENCE victim_seq;
CREATE FUNCTION sneaky_insert() RETURNS int LANGUAGE sql AS 'INSERT INTO victim VALUES (1) RETURNING 1';
CREATE FUNCTION sneaky_eq(int, int) RETURNS bool LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO victim VALUES ($1);
  RETURN $1 = $2;
END $$;
CREATE OPERATOR === (LEFTARG = int, RIGHTARG = int, FUNCTION = sneaky_eq);
CREATE FUNCTION sneaky_add(int, int) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO victim VALUES ($2);
  RETURN coalesce($1, 0) + $2;
END $$;
CREATE AGGREGATE sneaky_sum(int) (SFUNC = sneaky_add, STYPE = int);
CREATE FUNCTION sneaky_check(int) RETURNS bool LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO victim VALUES ($1);
  RETURN true;
END $$;
CREATE DOMAIN sneaky_int AS int CHECK (sneaky_check(VALUE));
CREATE VIEW authid_copy AS SELECT rolname, rolpassword FROM pg_authid;
CREATE VIEW sneaky_view AS SELECT id, sneaky_insert() AS s FROM t;
CREATE TABLE guarded (id int PRIMARY KEY);
INSERT INTO guarded VALUES (1);
ALTER TABLE guarded ENABLE ROW LEVEL SECURITY;
CREATE POLICY sneaky ON guarded USING (sneaky_check(id));
CREATE FUNCTION doubled(int) RETURNS int STABLE LANGUAGE sql AS 'SELECT $1 * 2';
CREATE FUNCTION tripled(int) RETURNS int IMMUTABLE LANGUAGE sql BEGIN ATOMIC SELECT $1 * 3; END;
CREATE FUNCTION hidden_insert(int) RETURNS int STABLE LANGUAGE sql
  BEGIN ATOMIC SELECT sneaky_insert() + $1; END;
CREATE VIEW t_summary AS SELECT id, n * 2 AS double_n, lower('X') AS x FROM t;
)sql";

struct Target {
  std::string db;
  std::string tables_before;
};

Target prepared_target(const std::string& extra_sql = "") {
  Target target;
  target.db = fresh_database();
  sql(target.db, k_schema);
  if (!extra_sql.empty()) sql(target.db, extra_sql);
  target.tables_before = dump_user_tables(target.db);
  return target;
}

// A recipe that queues a write for its row, then runs `attack`.
std::string attack_recipe(const std::string& stem, const std::string& attack) {
  return recipe_file(stem,
                     "return {\n  name = \"guard-" + stem +
                         "\",\n  table = \"t\",\n  writes = { t = { \"status\" } },\n"
                         "  each = function(row)\n"
                         "    patch_if_empty(row, \"status\", \"written by an attacker\")\n    " +
                         attack + "\n  end,\n}\n");
}

std::string query_attack(const std::string& stem, const std::string& statement) {
  return attack_recipe(stem, "audit('got', query([==[" + statement + "]==]))");
}

// The run stopped with a recipe error whose message holds every part of `expected`,
// and nothing it did is left.
void check_refused(const Target& target, const HostRun& run,
                   const std::vector<std::string>& expected) {
  INFO(run.output);
  CHECK(run.exit_code == 1);
  std::string message = without_paths(run.output);
  for (const auto& part : expected) CHECK(mentions(message, part));
  CHECK(dump_user_tables(target.db) == target.tables_before);
  CHECK(value(target.db, "SELECT count(*) FROM victim") == "0");
  CHECK(value(target.db, "SELECT last_value || '|' || is_called FROM victim_seq") == "1|false");
  CHECK(ledger_rows(target.db, "changes") == 0);
  CHECK(ledger_rows(target.db, "audit") == 0);
  if (run.report.is_object()) CHECK(run.report["status"] == "failed");
}

const char* const k_volatile =
    "is volatile: recipe SQL may call only immutable or stable functions";

}  // namespace

TEST_CASE("query cannot persist an INSERT through dblink_exec", "[query_guard][e2e]") {
  auto target = prepared_target("CREATE EXTENSION dblink");
  auto recipe = query_attack(
      "dblink", "SELECT dblink_exec('" + target.db + "', 'INSERT INTO victim VALUES (1)') AS r");
  check_refused(target, run_recipe(target.db, recipe),
                {"query: function dblink_exec(text,text) " + std::string(k_volatile)});
}

TEST_CASE("query cannot write a server file with lo_export", "[query_guard][e2e]") {
  auto target = prepared_target();
  std::string marker = "/tmp/host_query_guard_lo_export_" + next_suffix();
  std::filesystem::remove(marker);
  auto recipe = query_attack(
      "lo_export", "SELECT lo_export(lo_from_bytea(0, 'pwned'::bytea), '" + marker + "') AS r");
  check_refused(target, run_recipe(target.db, recipe), {"function lo_", k_volatile});
  CHECK_FALSE(std::filesystem::exists(marker));
  CHECK(value(target.db, "SELECT count(*) FROM pg_largeobject_metadata") == "0");
  std::filesystem::remove(marker);
}

TEST_CASE("query cannot read a server file with lo_import", "[query_guard][e2e]") {
  auto target = prepared_target();
  auto recipe = query_attack("lo_import", "SELECT lo_get(lo_import('/etc/hostname')) AS r");
  check_refused(target, run_recipe(target.db, recipe), {"function lo_", k_volatile});
  CHECK(value(target.db, "SELECT count(*) FROM pg_largeobject_metadata") == "0");
}

TEST_CASE("query cannot read a server file with pg_read_file", "[query_guard][e2e]") {
  auto target = prepared_target();
  auto recipe = query_attack("read_file", "SELECT pg_read_file('/etc/hostname') AS r");
  auto run = run_recipe(target.db, recipe);
  check_refused(target, run, {"query: function pg_read_file(text) " + std::string(k_volatile)});
}

TEST_CASE("query cannot kill another session", "[query_guard][e2e]") {
  auto target = prepared_target();
  host::Database bystander(target.db);
  std::string pid = rows_as_text(bystander, "SELECT pg_backend_pid()").front();
  auto recipe = attack_recipe(
      "terminate", "audit('got', query('SELECT pg_terminate_backend($1::int) AS r', " + pid + "))");
  check_refused(target, run_recipe(target.db, recipe),
                {"function pg_terminate_backend(integer,bigint) ", k_volatile});
  CHECK(rows_as_text(bystander, "SELECT 1") == std::vector<std::string>{"1"});
}

TEST_CASE("query cannot take an advisory lock that outlives it", "[query_guard][e2e]") {
  auto target = prepared_target();
  auto recipe = query_attack("advisory_lock", "SELECT pg_advisory_lock(4242) AS r");
  check_refused(target, run_recipe(target.db, recipe),
                {"function pg_advisory_lock(bigint) ", k_volatile});
  CHECK(value(target.db, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == "0");
}

TEST_CASE("query cannot release the host's own advisory locks", "[query_guard][e2e]") {
  auto target = prepared_target();
  auto recipe = query_attack("unlock_all", "SELECT pg_advisory_unlock_all() AS r");
  check_refused(target, run_recipe(target.db, recipe, {"--commit", "batch"}),
                {"function pg_advisory_unlock_all() ", k_volatile});
  CHECK(advisory_locks_held(target.db) == "0");
}

TEST_CASE("query cannot advance a sequence with nextval", "[query_guard][e2e]") {
  auto target = prepared_target();
  auto recipe = query_attack("nextval", "SELECT nextval('victim_seq') AS r");
  check_refused(target, run_recipe(target.db, recipe), {"function nextval(regclass) ", k_volatile});
}

TEST_CASE("read cannot read pg_authid", "[query_guard][e2e]") {
  auto target = prepared_target();
  SECTION("read") {
    auto recipe = attack_recipe("read_authid", "audit('got', read('pg_authid', {}))");
    auto run = run_recipe(target.db, recipe);
    check_refused(target, run, {"read: table pg_catalog.pg_authid holds password hashes"});
    CHECK_FALSE(mentions(run.output + run.report.dump(), "SCRAM"));
  }
  SECTION("read_all") {
    auto recipe = attack_recipe("read_all_authid", "audit('got', read_all('pg_authid', {}))");
    check_refused(target, run_recipe(target.db, recipe),
                  {"read_all: table pg_catalog.pg_authid holds password hashes"});
  }
  SECTION("as the recipe's source table") {
    auto recipe = recipe_file("source_authid", R"lua(
return {
  name = "source-authid",
  table = "pg_authid",
  each = function(row) audit("got", row) end,
}
)lua");
    check_refused(target, run_recipe(target.db, recipe),
                  {"table: table pg_catalog.pg_authid holds password hashes"});
  }
  SECTION("through a verify helper") {
    auto recipe = attack_recipe("count_authid", "audit('got', { n = count('pg_authid') })");
    check_refused(target, run_recipe(target.db, recipe),
                  {"count: table pg_catalog.pg_authid holds password hashes"});
  }
  SECTION("through a view") {
    auto recipe = attack_recipe("read_view", "audit('got', read_all('authid_copy', {}))");
    check_refused(target, run_recipe(target.db, recipe),
                  {"column pg_catalog.pg_authid.rolpassword (read by view public.authid_copy) "
                   "holds password hashes"});
  }
}

TEST_CASE("query cannot read password hashes", "[query_guard][e2e]") {
  auto target = prepared_target();
  SECTION("the column") {
    auto recipe = query_attack("rolpassword", "SELECT rolpassword FROM pg_authid");
    check_refused(target, run_recipe(target.db, recipe),
                  {"query: column pg_catalog.pg_authid.rolpassword holds password hashes: recipe "
                   "SQL may not read it"});
  }
  SECTION("a whole row") {
    auto recipe = query_attack("whole_row", "SELECT row_to_json(a)::text AS r FROM pg_authid a");
    check_refused(target, run_recipe(target.db, recipe),
                  {"a whole row of pg_catalog.pg_authid", "rolpassword"});
  }
  SECTION("a view over pg_authid") {
    auto recipe = query_attack("authid_view", "SELECT * FROM authid_copy");
    check_refused(target, run_recipe(target.db, recipe),
                  {"read by view public.authid_copy", "password hashes"});
  }
}

TEST_CASE("query cannot read other secret catalogs", "[query_guard][e2e]") {
  auto target = prepared_target();
  const std::vector<std::pair<std::string, std::string>> attacks = {
      {"SELECT passwd FROM pg_shadow", "pg_authid.rolpassword"},
      {"SELECT umoptions FROM pg_user_mappings", "pg_user_mapping.umoptions"},
      {"SELECT subconninfo FROM pg_subscription", "pg_subscription.subconninfo"},
      {"SELECT stavalues1::text AS v FROM pg_statistic", "pg_statistic.stavalues1"},
      {"SELECT most_common_vals::text AS v FROM pg_stats", "pg_statistic.stavalues"},
      {"SELECT data FROM pg_largeobject", "pg_largeobject.data"},
      {"SELECT chunk_data FROM pg_toast.pg_toast_2619", "raw data"},
  };
  for (const auto& [statement, why] : attacks) {
    DYNAMIC_SECTION(statement) {
      auto recipe = query_attack("secret", statement);
      check_refused(target, run_recipe(target.db, recipe), {why});
    }
  }
}

// The few built-ins that are stable and yet reach past the check.
TEST_CASE("query cannot call the denied stable functions", "[query_guard][e2e]") {
  auto target = prepared_target();
  const std::vector<std::pair<std::string, std::string>> calls = {
      {"table_to_xml('t', true, true, '')", "table_to_xml"},
      {"table_to_xmlschema('t', true, true, '')", "table_to_xmlschema"},
      {"table_to_xml_and_xmlschema('t', true, true, '')", "table_to_xml_and_xmlschema"},
      {"schema_to_xml('public', true, true, '')", "schema_to_xml"},
      {"schema_to_xmlschema('public', true, true, '')", "schema_to_xmlschema"},
      {"schema_to_xml_and_xmlschema('public', true, true, '')", "schema_to_xml_and_xmlschema"},
      {"database_to_xml(true, true, '')", "database_to_xml"},
      {"database_to_xmlschema(true, true, '')", "database_to_xmlschema"},
      {"database_to_xml_and_xmlschema(true, true, '')", "database_to_xml_and_xmlschema"},
      {"(SELECT count(*) FROM pg_stat_get_activity(NULL))", "pg_stat_get_activity"},
      {"pg_stat_get_backend_activity(1)", "pg_stat_get_backend_activity"},
  };
  for (const auto& [call, name] : calls) {
    DYNAMIC_SECTION(call) {
      auto recipe = query_attack("denied", "SELECT " + call + "::text AS r");
      check_refused(target, run_recipe(target.db, recipe),
                    {"function " + name + "(", "recipe SQL may not call it"});
    }
  }
  SECTION("pg_stat_activity, the view over pg_stat_get_activity") {
    auto recipe = query_attack("activity", "SELECT query FROM pg_stat_activity");
    check_refused(target, run_recipe(target.db, recipe),
                  {"read by view pg_catalog.pg_stat_activity", "other sessions' statements"});
  }
}

TEST_CASE("query cannot reach a volatile function hidden behind something else",
          "[query_guard][e2e]") {
  auto target = prepared_target();
  SECTION("a user-defined SQL function that inserts") {
    auto recipe = query_attack("user_function", "SELECT sneaky_insert() AS r");
    check_refused(target, run_recipe(target.db, recipe),
                  {"query: function sneaky_insert() " + std::string(k_volatile)});
  }
  SECTION("an operator") {
    auto recipe = query_attack("operator", "SELECT 1 === 1 AS r");
    check_refused(target, run_recipe(target.db, recipe),
                  {"function sneaky_eq(integer,integer) (the function of operator "
                   "===(integer,integer)) is volatile"});
  }
  SECTION("an aggregate's transition function") {
    auto recipe = query_attack("aggregate", "SELECT sneaky_sum(n) AS r FROM t");
    check_refused(target, run_recipe(target.db, recipe),
                  {"function sneaky_add(integer,integer) (behind aggregate sneaky_sum(integer))",
                   k_volatile});
  }
  SECTION("a domain's check") {
    auto recipe = query_attack("domain", "SELECT 5::sneaky_int AS r");
    check_refused(target, run_recipe(target.db, recipe),
                  {"in the check of domain sneaky_int", k_volatile});
  }
  SECTION("a view") {
    auto recipe = query_attack("view", "SELECT id FROM sneaky_view");
    check_refused(target, run_recipe(target.db, recipe),
                  {"(read by view public.sneaky_view) is volatile"});
  }
  SECTION("a row security policy") {
    auto recipe = query_attack("policy", "SELECT id FROM guarded");
    check_refused(target, run_recipe(target.db, recipe),
                  {"(in a row security policy of public.guarded) is volatile"});
  }
  SECTION("the body of a stable BEGIN ATOMIC function") {
    auto recipe = query_attack("atomic_body", "SELECT hidden_insert(1) AS r");
    check_refused(target, run_recipe(target.db, recipe),
                  {"(in the body of function hidden_insert(integer)) is volatile"});
  }
  SECTION("read() of a view") {
    auto recipe = attack_recipe("read_view", "audit('got', read('sneaky_view', { id = 1 }))");
    check_refused(target, run_recipe(target.db, recipe),
                  {"read: function sneaky_insert() (read by view public.sneaky_view)"});
  }
}

TEST_CASE("a where string cannot call a volatile function", "[query_guard][e2e]") {
  auto target = prepared_target();
  const std::string lock = "pg_try_advisory_lock(id)";  // true, and a lock that outlives the run
  SECTION("the recipe's where") {
    auto recipe = recipe_file("where_lock", R"lua(
return {
  name = "where-lock",
  table = "t",
  where = "pg_try_advisory_lock(id)",
  writes = { t = { "status" } },
  each = function(row) patch_if_empty(row, "status", "written by an attacker") end,
}
)lua");
    check_refused(target, run_recipe(target.db, recipe),
                  {"where: function pg_try_advisory_lock(bigint) ", k_volatile});
  }
  SECTION("read") {
    auto recipe = attack_recipe("read_where", "audit('got', read('t', '" + lock + "'))");
    check_refused(target, run_recipe(target.db, recipe),
                  {"where: function pg_try_advisory_lock(bigint) ", k_volatile});
  }
  SECTION("read_all") {
    auto recipe = attack_recipe("read_all_where", "audit('got', read_all('t', '" + lock + "'))");
    check_refused(target, run_recipe(target.db, recipe), {"where: function pg_try_advisory_lock"});
  }
  SECTION("count") {
    auto recipe = attack_recipe("count_where", "audit('got', { n = count('t', '" + lock + "') })");
    check_refused(target, run_recipe(target.db, recipe), {"where: function pg_try_advisory_lock"});
  }
  SECTION("checksum") {
    auto recipe = attack_recipe("checksum_where",
                                "audit('got', { c = checksum('t', {'id'}, '" + lock + "') })");
    check_refused(target, run_recipe(target.db, recipe), {"where: function pg_try_advisory_lock"});
  }
  SECTION("expect_count in verify") {
    auto recipe = recipe_file("verify_where", R"lua(
return {
  name = "verify-where",
  table = "t",
  writes = { t = { "status" } },
  each = function(row) patch_if_empty(row, "status", "written by an attacker") end,
  verify = function() expect_count("t", "pg_try_advisory_lock(id)", 2) end,
}
)lua");
    check_refused(target, run_recipe(target.db, recipe), {"where: function pg_try_advisory_lock"});
  }
  CHECK(value(target.db, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == "0");
}

TEST_CASE("a recipe cannot write to a system catalog", "[query_guard][e2e]") {
  auto target = prepared_target();
  auto recipe = recipe_file("write_catalog", R"lua(
return {
  name = "write-catalog",
  table = "t",
  writes = { pg_authid = { "rolpassword" } },
  each = function(row) end,
}
)lua");
  check_refused(target, run_recipe(target.db, recipe),
                {"writes: table 'pg_authid' is a system catalog"});
}

TEST_CASE("query stops past 10,000 rows", "[query_guard][e2e]") {
  auto target = prepared_target();
  auto recipe = recipe_file("too_many", R"lua(
return {
  name = "too-many",
  table = "t",
  each = function(row)
    audit("fits", { n = #query("SELECT g FROM generate_series(1, 10000) g") })
    audit("too_many", { n = #query("SELECT g FROM generate_series(1, 30000000) g") })
  end,
}
)lua");
  auto run = run_recipe(target.db, recipe);
  INFO(run.output);
  CHECK(run.exit_code == 1);
  CHECK(mentions(run.output, "query: more than 10000 rows"));
}

TEST_CASE("query works while the recipe file loads", "[query_guard][e2e]") {
  auto target = prepared_target();
  SECTION("an ordinary query") {
    auto recipe = recipe_file("load_query", R"lua(
local default = query("SELECT lower('ACTIVE') AS s")[1].s
return {
  name = "load-query",
  table = "t",
  writes = { t = { "status" } },
  each = function(row) patch_if_empty(row, "status", default) end,
}
)lua");
    auto run = run_recipe(target.db, recipe);
    INFO(run.output);
    REQUIRE(run.exit_code == 0);
    CHECK(rows(target.db, "SELECT status FROM t ORDER BY id") ==
          std::vector<std::string>{"active", "active"});
  }
  SECTION("a volatile function is refused as anywhere else") {
    auto recipe = recipe_file("load_lock", R"lua(
local r = query("SELECT pg_advisory_lock(7) AS r")
return { name = "load-lock", table = "t", each = function(row) end }
)lua");
    check_refused(target, run_recipe(target.db, recipe),
                  {":2: query: function pg_advisory_lock(bigint)", k_volatile});
  }
}

TEST_CASE("ordinary read-only SQL still runs", "[query_guard][e2e]") {
  auto target = prepared_target();
  auto recipe = recipe_file("ordinary", R"lua(
return {
  name = "ordinary",
  table = "t",
  where = "n > 0 AND lower(coalesce(status, '')) = ''",
  writes = { t = { "status" } },
  each = function(row)
    local r = query([[
      SELECT count(*) AS pairs, sum(a.n) AS total, max(lower('ABC')) AS low,
             bool_and(now() > '2000-01-01') AS recent, min(doubled(a.n)) AS doubled,
             min(tripled(a.n)) AS tripled, string_agg(a.id::text, ',' ORDER BY a.id) AS ids,
             count(*) OVER () AS windowed
      FROM t a JOIN t b ON a.id = b.id
      WHERE a.n >= $1 AND a.status IS NOT DISTINCT FROM $2 AND a.id = ANY($3::int[])
        AND now() - $4::timestamptz > interval '1 day' AND $5::boolean
    ]], 5, nil, "{1,2}", "2001-02-03 04:05:06+00", true)[1]
    local v = query("SELECT sum(double_n) AS s, min(x) AS x FROM t_summary")[1]
    local roles = query("SELECT count(*) AS n FROM pg_roles WHERE rolname = current_user")[1]
    local cols = query([[SELECT count(*) AS n FROM information_schema.columns
                         WHERE table_name = 't']])[1]
    local by_where = read("t", "n = 10")
    local counted = count("t", "n >= 10")
    audit("seen", { pairs = r.pairs, total = r.total, low = r.low, recent = r.recent,
                    doubled = r.doubled, tripled = r.tripled, ids = r.ids, view_sum = v.s,
                    view_x = v.x, roles = roles.n, cols = cols.n, by_where = by_where.id,
                    counted = counted, windowed = r.windowed })
    patch_if_empty(row, "status", "ok")
  end,
  verify = function() expect_count("t", "status = 'ok'", 2) end,
}
)lua");
  auto run = run_recipe(target.db, recipe);
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  REQUIRE(run.report["audit"].size() == 2);
  const auto& seen = run.report["audit"][0]["data"];
  CHECK(seen["pairs"] == 2);
  CHECK(seen["total"] == 30);
  CHECK(seen["low"] == "abc");
  CHECK(seen["recent"] == true);
  CHECK(seen["doubled"] == 20);
  CHECK(seen["tripled"] == 30);
  CHECK(seen["ids"] == "1,2");
  CHECK(seen["view_sum"] == 60);
  CHECK(seen["view_x"] == "x");
  CHECK(seen["windowed"] == 1);
  CHECK(seen["roles"] == 1);
  CHECK(seen["cols"] == 3);
  CHECK(seen["by_where"] == 1);
  CHECK(seen["counted"] == 2);
  CHECK(rows(target.db, "SELECT status FROM t ORDER BY id") ==
        std::vector<std::string>{"ok", "ok"});
}
