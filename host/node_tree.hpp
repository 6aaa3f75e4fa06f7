#pragma once
// Reads PostgreSQL's stored form of an analysed query (pg_node_tree text: a view's
// rule, a SQL function's BEGIN ATOMIC body, a policy, a domain check) and lists what
// it would run and read. The guard of recipe SQL (query_guard.hpp) decides on that.
#include <map>
#include <set>
#include <string>

namespace host {

// The objects a node tree names. OIDs as PostgreSQL prints them.
struct NodeTreeRefs {
  std::set<unsigned> functions;  // called directly: FuncExpr, Aggref, WindowFunc, ...
  std::set<unsigned> operators;  // OpExpr and friends, sort and group operators
  std::set<unsigned> relations;  // range table entries
  std::set<unsigned> domains;    // CoerceToDomain: the domain's checks run
  // Columns read per relation (attribute numbers; 0 is the whole row), from the
  // range table's selectedCols.
  std::map<unsigned, std::set<int>> columns;
  bool next_value = false;  // a NextValueExpr: nextval() in disguise

  void merge(const NodeTreeRefs& other);
};

// Scans `text` token by token the way PostgreSQL's own reader (pg_strtok) splits it,
// so that no identifier or literal inside the tree can pose as a field. Unknown
// input yields fewer references, never an exception: callers treat the result as a
// list to check, and refuse what they cannot check.
NodeTreeRefs scan_node_tree(const std::string& text);

}  // namespace host
