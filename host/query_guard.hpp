#pragma once
// The guard of SQL text a recipe wrote (a query() statement, a `where` string) and of
// the relations a recipe names (read(), read_all(), its source table, the verify
// helpers, its `writes`). Recipe SQL may run only what cannot reach outside the run's
// transaction and may read no secret:
//   - every function it calls, directly, through an operator, an aggregate's support
//     functions, a view, a row-level security policy, a domain check or the body of
//     a BEGIN ATOMIC SQL function, is IMMUTABLE or STABLE (pg_proc.provolatile) and
//     not one of the few such built-ins that read tables named at run time or other
//     sessions' statements (k_denied_functions in query_guard.cpp);
//   - it reads no column that holds passwords or other tables' raw data
//     (pg_authid.rolpassword, pg_statistic.stavalues1..5, ...) and no TOAST table.
// The rule is checked on PostgreSQL's own analysis of the statement (see
// query_guard.cpp for how and why), never on the text.
#include <map>
#include <string>

#include "host/database.hpp"

namespace host {

struct TableInfo;

class QueryGuard {
 public:
  // Returns when `sql` (one statement, $1..$n unbound; their types are inferred as
  // when it runs) is allowed; throws RecipeError "<what>: function f(int) is
  // volatile: ..." naming what is refused and why, or DatabaseError when PostgreSQL
  // cannot parse it. Needs an open transaction (it analyses inside a savepoint that
  // it rolls back). Verdicts are cached per text for the guard's lifetime (one run).
  void check_sql(Database& database, const std::string& sql, const std::string& what);

  // The same rule for a relation read by name: a secret catalog (pg_authid, ...) is
  // refused whole, a view is checked through its definition. Cached per relation.
  void check_relation(Database& database, const TableInfo& table, const std::string& what);

  // Refuses (RecipeError) a write target in pg_catalog, information_schema or pg_toast.
  void check_writable(Database& database, const TableInfo& table);

 private:
  std::map<std::string, std::string> m_sql_verdicts;       // text -> refusal, "" = allowed
  std::map<std::string, std::string> m_relation_verdicts;  // qualified name -> refusal
};

// check_sql, then Database::exec_read_only: how recipe SQL is run.
pqxx::result exec_recipe_sql(Database& database, QueryGuard& guard, const std::string& sql,
                             const Params& params, const std::string& what);

}  // namespace host
