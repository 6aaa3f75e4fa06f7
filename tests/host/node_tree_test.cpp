// Unit tests of the node tree scanner (host/node_tree.hpp) on trees as PostgreSQL 15
// prints them.
#include "host/node_tree.hpp"

#include <catch2/catch.hpp>

using host::scan_node_tree;

TEST_CASE("the scanner finds functions, operators, relations and columns", "[query_guard]") {
  // SELECT t.x, lower($2), count(*) OVER (), row_to_json(a) FROM t, pg_authid a
  // WHERE t.id > $1 ORDER BY 1 (abridged).
  auto refs = scan_node_tree(
      "(({QUERY :commandType 1 :rtable ({RANGETBLENTRY :alias <> :eref {ALIAS :aliasname t "
      ":colnames (\"id\" \"x\")} :rtekind 0 :relid 16384 :relkind r :selectedCols (b 8 9) "
      ":insertedCols (b)} {RANGETBLENTRY :eref {ALIAS :aliasname a :colnames (\"oid\")} "
      ":rtekind 0 :relid 1260 :relkind r :selectedCols (b 7)}) :jointree {FROMEXPR :quals "
      "{OPEXPR :opno 521 :opfuncid 147 :args ({VAR :varno 1 :varattno 1 :location 177})}} "
      ":targetList ({TARGETENTRY :expr {FUNCEXPR :funcid 870 :args <>}} {TARGETENTRY :expr "
      "{WINDOWFUNC :winfnoid 2803}} {TARGETENTRY :expr {COERCETODOMAIN :arg {CONST :consttype "
      "23 :constvalue 4 [ 5 0 0 0 0 0 0 0 ]} :resulttype 16490}}) :sortClause ({SORTGROUPCLAUSE "
      ":eqop 98 :sortop 664}) :windowClause ({WINDOWCLAUSE :startInRangeFunc 0}) "
      "{ROWCOMPAREEXPR :opnos (o 97 96)}}))");
  CHECK(refs.functions == std::set<unsigned>{870, 2803});
  CHECK(refs.operators == std::set<unsigned>{96, 97, 98, 521, 664});
  CHECK(refs.relations == std::set<unsigned>{1260, 16384});
  CHECK(refs.domains == std::set<unsigned>{16490});
  CHECK(refs.columns.at(16384) == std::set<int>{1, 2});
  CHECK(refs.columns.at(1260) == std::set<int>{0});  // the whole row
  CHECK_FALSE(refs.next_value);
}

TEST_CASE("names inside a tree cannot pose as fields", "[query_guard]") {
  // Aliases and column names are printed with spaces, parentheses and braces
  // escaped: one token each, never a field followed by a number.
  auto refs = scan_node_tree(
      "({QUERY :rtable ({RANGETBLENTRY :eref {ALIAS :aliasname :funcid\\ 2624 :colnames "
      "(\":relid\\ 1\" \"\\{FUNCEXPR\\ :funcid\\ 7\\}\")} :rtekind 1 :relid 0}) "
      ":targetList ({TARGETENTRY :resname :funcid :ressortgroupref 0})})");
  CHECK(refs.functions.empty());
  CHECK(refs.relations.empty());
}

TEST_CASE("a NextValueExpr is reported", "[query_guard]") {
  CHECK(scan_node_tree("({NEXTVALUEEXPR :seqid 16400 :typeId 20})").next_value);
}
