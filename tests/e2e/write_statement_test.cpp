// End to end: the batch's UPDATE is built for what its cells share (one emptiness
// rule, one reason per column) and for what they do not. Both shapes must leave
// the same table and the same exact ledger, and revert must give back every old
// value, blanks included.
#include <catch2/catch.hpp>

#include "tests/e2e/e2e_helpers.hpp"

using namespace host::testing;
using namespace host::testing::e2e;

namespace {

// Per column and reason: the keys and old values the ledger holds, in key order.
std::vector<std::string> ledger_cells(const std::string& db, const std::string& run_id) {
  return rows(db,
              "SELECT column_name || ':' || coalesce(reason, '-') || ':' || "
              "string_agg((k.key ->> 0) || '=' || coalesce('[' || o.old || ']', 'NULL') || '>' || "
              "coalesce(n.new, 'NULL'), ' ' ORDER BY (k.key ->> 0)::int) "
              "FROM host_ledger.changes c, "
              "LATERAL jsonb_array_elements(c.keys) WITH ORDINALITY AS k(key, i), "
              "LATERAL unnest(c.old_values) WITH ORDINALITY AS o(old, j), "
              "LATERAL unnest(c.new_values) WITH ORDINALITY AS n(new, l) "
              "WHERE run_id = '" + run_id + "' AND i = j AND j = l "
              "GROUP BY column_name, reason ORDER BY 1");
}

}  // namespace

TEST_CASE("write statement: one column's cells with mixed empty rules and reasons",
          "[e2e][primitives]") {
  auto db = fresh_database();
  sql(db, R"sql(
CREATE TABLE t (id int PRIMARY KEY, status text, n int);
INSERT INTO t VALUES (1, NULL, NULL), (2, NULL, NULL), (3, '  ', NULL), (4, '  ', 4),
                     (5, '', NULL), (6, 'kept', NULL), (7, E'\t', NULL), (8, E'\t', 8);
)sql");
  std::string before = dump_user_tables(db);

  SECTION("mixed: the rule and the reason read per row") {
    auto recipe = recipe_file("mixed_rules", R"lua(
return {
  name = "mixed", table = "t", batch_size = 100,
  writes = { t = { "status", "n" } },
  each = function(row)
    local odd = row.id % 2 == 1
    patch_if_empty(row, "status", "s" .. row.id,
                   { empty = odd and "null" or "blank", reason = odd and "odd" or "even" })
    patch_if_empty(row, "n", row.id * 10, { empty = odd and "blank" or "null",
                                            confidence = odd and "medium" or "high" })
  end,
}
)lua");
    auto run = run_recipe(db, recipe, {"--min-confidence", "medium"});
    INFO(run.output);
    REQUIRE(run.exit_code == 0);
    // Odd rows: only NULL is empty, so the blanks of 3, 5 and 7 are kept.
    CHECK(rows(db, "SELECT id, '[' || coalesce(status, 'NULL') || ']', n FROM t ORDER BY id") ==
          std::vector<std::string>{"1|[s1]|10", "2|[s2]|20", "3|[  ]|30", "4|[s4]|4", "5|[]|50",
                                   "6|[kept]|60", "7|[\t]|70", "8|[s8]|8"});
    CHECK(run.stat("patched") == 10);
    CHECK(run.stat("protected") == 6);
    CHECK(ledger_cells(db, run.run_id) ==
          std::vector<std::string>{"n:-:1=NULL>10 2=NULL>20 3=NULL>30 5=NULL>50 6=NULL>60 "
                                   "7=NULL>70",
                                   "status:even:2=NULL>s2 4=[  ]>s4 8=[\t]>s8",
                                   "status:odd:1=NULL>s1"});
    CHECK(value(db, "SELECT string_agg(DISTINCT confidence, ',' ORDER BY confidence) FROM "
                    "host_ledger.changes WHERE column_name = 'n' AND run_id = '" +
                        run.run_id + "'") == "high,medium");
    auto reverted = run_host({"revert", run.run_id, "--db", db});
    INFO(reverted.output);
    REQUIRE(reverted.exit_code == 0);
    CHECK(dump_user_tables(db) == before);
  }

  SECTION("shared: one rule and one reason per column") {
    auto recipe = recipe_file("shared_rules", R"lua(
return {
  name = "shared", table = "t", batch_size = 100,
  writes = { t = { "status", "n" } },
  each = function(row)
    patch_if_empty(row, "status", "s" .. row.id, { reason = "default" })
    patch_if_empty(row, "n", row.id * 10, { empty = "null", reason = "tenfold" })
  end,
}
)lua");
    auto run = run_recipe(db, recipe);
    INFO(run.output);
    REQUIRE(run.exit_code == 0);
    CHECK(rows(db, "SELECT id, '[' || coalesce(status, 'NULL') || ']', n FROM t ORDER BY id") ==
          std::vector<std::string>{"1|[s1]|10", "2|[s2]|20", "3|[s3]|30", "4|[s4]|4", "5|[s5]|50",
                                   "6|[kept]|60", "7|[s7]|70", "8|[s8]|8"});
    CHECK(run.stat("patched") == 13);
    CHECK(run.stat("protected") == 3);
    CHECK(ledger_cells(db, run.run_id) ==
          std::vector<std::string>{"n:tenfold:1=NULL>10 2=NULL>20 3=NULL>30 5=NULL>50 6=NULL>60 "
                                   "7=NULL>70",
                                   "status:default:1=NULL>s1 2=NULL>s2 3=[  ]>s3 4=[  ]>s4 "
                                   "5=[]>s5 7=[\t]>s7 8=[\t]>s8"});
    auto reverted = run_host({"revert", run.run_id, "--db", db});
    INFO(reverted.output);
    REQUIRE(reverted.exit_code == 0);
    CHECK(dump_user_tables(db) == before);
  }
}
