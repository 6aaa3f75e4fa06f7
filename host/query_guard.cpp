#include "host/query_guard.hpp"

#include <set>
#include <vector>

#include "host/catalog.hpp"
#include "host/errors.hpp"
#include "host/node_tree.hpp"

// How the statement is analysed, and why this way.
//
// PostgreSQL does the parsing: the statement is PREPAREd (which infers the types
// of $1..$n exactly as when it runs), then created as the BEGIN ATOMIC body of a
// temporary SQL function in a savepoint that is rolled back. PostgreSQL stores such
// a body as its analysed query tree (pg_proc.prosqlbody), and that tree names every
// function, operator, relation and column by OID. host/node_tree.cpp lists them;
// the catalogs say what each is. Nothing of the statement runs.
//
// Not pg_depend, although PostgreSQL 14 records the dependencies of such a body
// there: it records none on pinned objects, that is on every built-in function and
// system catalog (pg_advisory_lock, pg_read_file, pg_authid are all missing), which
// are the very objects to refuse. Not EXPLAIN: it plans, and planning already calls
// immutable functions on constants and stable ones for estimates, and its output is
// deparsed text, not OIDs.
//
// What is followed: views (their rules, recursively), row-level security policies,
// domain checks (CoerceToDomain), aggregates' support functions, operators' functions
// and the bodies of BEGIN ATOMIC SQL functions. What is trusted: the declared
// volatility of functions whose body is not a stored tree (PL/pgSQL, C, SQL given
// as a string) and operator classes' support functions and type I/O functions (only
// superusers can create those). A database role with few rights (README) covers
// what this trust leaves open.

namespace host {

namespace {

const char* const k_savepoint = "host_query_guard";
const char* const k_probe = "host_query_guard_probe";

// Built-in functions that are not volatile, yet reach past this check: what they
// read is named only at run time, or is other sessions' work. Matched by name in
// pg_catalog, every overload.
struct DeniedFunction {
  const char* name;
  const char* why;
};
const char* const k_runtime_tables = "reads tables named at run time, past this check";
const char* const k_other_sessions = "shows other sessions' statements, which can hold passwords";
const DeniedFunction k_denied_functions[] = {
    {"table_to_xml", k_runtime_tables},
    {"table_to_xmlschema", k_runtime_tables},
    {"table_to_xml_and_xmlschema", k_runtime_tables},
    {"schema_to_xml", k_runtime_tables},
    {"schema_to_xmlschema", k_runtime_tables},
    {"schema_to_xml_and_xmlschema", k_runtime_tables},
    {"database_to_xml", k_runtime_tables},
    {"database_to_xmlschema", k_runtime_tables},
    {"database_to_xml_and_xmlschema", k_runtime_tables},
    {"pg_stat_get_activity", k_other_sessions},
    {"pg_stat_get_backend_activity", k_other_sessions},
};

// Columns of pg_catalog relations that hold secrets or other tables' raw data.
// Reading the rest of these relations is fine (pg_roles reads pg_authid, say).
struct SecretColumn {
  const char* relation;
  const char* column;
  const char* holds;
};
const char* const k_samples = "sample values of other tables' columns";
const SecretColumn k_secret_columns[] = {
    {"pg_authid", "rolpassword", "password hashes"},
    {"pg_user_mapping", "umoptions", "user mapping options, passwords among them"},
    {"pg_subscription", "subconninfo", "connection strings, passwords among them"},
    {"pg_statistic", "stavalues1", k_samples},
    {"pg_statistic", "stavalues2", k_samples},
    {"pg_statistic", "stavalues3", k_samples},
    {"pg_statistic", "stavalues4", k_samples},
    {"pg_statistic", "stavalues5", k_samples},
    {"pg_statistic_ext_data", "stxdmcv", k_samples},
    {"pg_statistic_ext_data", "stxdexpr", k_samples},
    {"pg_largeobject", "data", "the contents of large objects"},
};
// A read() of these by name reads every column: refused whole.
const char* const k_secret_hint =
    " (pg_roles lists roles without their passwords)";  // for pg_authid

std::string oid_array(const std::set<unsigned>& oids) {
  std::string text = "{";
  for (unsigned oid : oids) text += (text.size() > 1 ? "," : "") + std::to_string(oid);
  return text + "}";
}

std::string via(const std::string& origin) { return origin.empty() ? "" : " (" + origin + ")"; }

bool is_true(const pqxx::field& field) { return std::string(field.c_str()) == "t"; }

// One analysis: a work list of objects to look up, each with how it was reached
// (for the message). Throws RecipeError at the first refusal.
class Analysis {
 public:
  Analysis(Database& database, std::string what) : m_database(database), m_what(std::move(what)) {}

  void add_tree(const std::string& tree, const std::string& origin, bool stored_only = false) {
    NodeTreeRefs refs = scan_node_tree(tree);
    for (const auto& [relation, attributes] : refs.columns)
      for (int attribute : attributes) check_column(relation, attribute, origin);
    for (unsigned oid : refs.relations) queue(m_relations, m_seen_relations, oid, origin);
    if (stored_only) return;  // a materialized view's query does not run when it is read
    if (refs.next_value) refuse("nextval" + via(origin) + " changes a sequence");
    for (unsigned oid : refs.functions) queue(m_functions, m_seen_functions, oid, origin);
    for (unsigned oid : refs.operators) queue(m_operators, m_seen_operators, oid, origin);
    for (unsigned oid : refs.domains) queue(m_domains, m_seen_domains, oid, origin);
  }

  void add_relation(unsigned oid) { queue(m_relations, m_seen_relations, oid, ""); }

  void finish() {
    while (!m_functions.empty() || !m_operators.empty() || !m_relations.empty() ||
           !m_domains.empty()) {
      check_operators();
      check_functions();
      check_relations();
      check_domains();
    }
  }

 private:
  using WorkList = std::map<unsigned, std::string>;  // oid -> how it was reached

  static void queue(WorkList& list, std::set<unsigned>& seen, unsigned oid,
                    const std::string& origin) {
    if (seen.insert(oid).second) list.emplace(oid, origin);
  }

  [[noreturn]] void refuse(const std::string& message) {
    throw RecipeError(m_what + ": " + message);
  }

  static std::set<unsigned> keys(const WorkList& list) {
    std::set<unsigned> oids;
    for (const auto& entry : list) oids.insert(entry.first);
    return oids;
  }

  void check_operators() {
    if (m_operators.empty()) return;
    WorkList batch = std::move(m_operators);
    m_operators.clear();
    auto rows = m_database.exec(
        "SELECT o.oid::bigint, o.oid::regoperator::text, o.oprcode::oid::bigint "
        "FROM pg_operator o WHERE o.oid = ANY($1::oid[])",
        {oid_array(keys(batch))});
    if (rows.size() != batch.size()) refuse("an operator it uses is not in pg_operator");
    for (const auto& row : rows) {
      const std::string& origin = batch.at(row[0].as<unsigned>());
      unsigned code = row[2].as<unsigned>();
      if (code == 0) refuse("operator " + std::string(row[1].c_str()) + " has no function");
      queue(m_functions, m_seen_functions, code,
            "the function of operator " + std::string(row[1].c_str()) +
                (origin.empty() ? "" : ", " + origin));
    }
  }

  void check_functions() {
    if (m_functions.empty()) return;
    WorkList batch = std::move(m_functions);
    m_functions.clear();
    auto rows = m_database.exec(
        "SELECT p.oid::bigint, p.oid::regprocedure::text, p.provolatile, "
        "       n.nspname = 'pg_catalog', p.proname, coalesce(p.prosqlbody::text, ''), "
        "       coalesce(array_to_string(ARRAY[a.aggtransfn, a.aggfinalfn, a.aggcombinefn, "
        "         a.aggserialfn, a.aggdeserialfn, a.aggmtransfn, a.aggminvtransfn, "
        "         a.aggmfinalfn]::oid[], ','), '') "
        "FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        "LEFT JOIN pg_aggregate a ON a.aggfnoid = p.oid WHERE p.oid = ANY($1::oid[])",
        {oid_array(keys(batch))});
    if (rows.size() != batch.size()) refuse("a function it calls is not in pg_proc");
    for (const auto& row : rows) {
      const std::string& origin = batch.at(row[0].as<unsigned>());
      std::string name = row[1].c_str();
      std::string volatility = row[2].c_str();
      if (volatility != "i" && volatility != "s")
        refuse("function " + name + via(origin) +
               " is volatile: recipe SQL may call only immutable or stable functions");
      if (is_true(row[3]))
        for (const auto& denied : k_denied_functions)
          if (row[4].c_str() == std::string(denied.name))
            refuse("function " + name + via(origin) + " " + denied.why +
                   ": recipe SQL may not call it");
      std::string body = row[5].c_str();
      if (!body.empty()) add_tree(body, "in the body of function " + name);
      // An aggregate's own volatility means nothing (CREATE AGGREGATE does not set
      // it): its support functions are what runs.
      std::string support = row[6].c_str();
      for (std::size_t at = 0; at < support.size();) {
        std::size_t end = support.find(',', at);
        if (end == std::string::npos) end = support.size();
        unsigned oid = static_cast<unsigned>(std::stoul(support.substr(at, end - at)));
        if (oid != 0) queue(m_functions, m_seen_functions, oid, "behind aggregate " + name);
        at = end + 1;
      }
    }
  }

  void check_relations() {
    if (m_relations.empty()) return;
    WorkList batch = std::move(m_relations);
    m_relations.clear();
    auto rows = m_database.exec(
        "SELECT c.oid::bigint, quote_ident(n.nspname) || '.' || quote_ident(c.relname), "
        "       c.relkind, c.relrowsecurity, "
        "       coalesce((SELECT string_agg(r.ev_action::text, ' ') FROM pg_rewrite r "
        "                 WHERE r.ev_class = c.oid AND r.ev_type = '1'), ''), "
        "       coalesce((SELECT string_agg(p.polqual::text, ' ') FROM pg_policy p "
        "                 WHERE p.polrelid = c.oid AND p.polqual IS NOT NULL), '') "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.oid = ANY($1::oid[])",
        {oid_array(keys(batch))});
    if (rows.size() != batch.size()) refuse("a relation it reads is not in pg_class");
    for (const auto& row : rows) {
      const std::string& origin = batch.at(row[0].as<unsigned>());
      std::string name = row[1].c_str();
      std::string kind = row[2].c_str();
      if (kind == "t")
        refuse("relation " + name + via(origin) +
               " holds another table's raw data: recipe SQL may not read it");
      std::string rules = row[4].c_str();
      if (kind == "v") add_tree(rules, "read by view " + name);
      if (kind == "m") add_tree(rules, "stored by materialized view " + name, true);
      if (is_true(row[3])) add_tree(row[5].c_str(), "in a row security policy of " + name);
    }
  }

  void check_domains() {
    if (m_domains.empty()) return;
    WorkList batch = std::move(m_domains);
    m_domains.clear();
    // A domain over a domain runs the checks of both.
    auto rows = m_database.exec(
        "WITH RECURSIVE d(oid, top) AS ("
        "  SELECT u, u FROM unnest($1::oid[]) AS u"
        "  UNION SELECT t.typbasetype, d.top FROM pg_type t JOIN d ON t.oid = d.oid "
        "  WHERE t.typtype = 'd') "
        "SELECT d.top::bigint, format_type(d.oid, NULL), "
        "       coalesce((SELECT string_agg(c.conbin::text, ' ') FROM pg_constraint c "
        "                 WHERE c.contypid = d.oid AND c.conbin IS NOT NULL), '') FROM d",
        {oid_array(keys(batch))});
    for (const auto& row : rows) {
      std::string checks = row[2].c_str();
      if (!checks.empty())
        add_tree(checks, "in the check of domain " + std::string(row[1].c_str()));
    }
  }

  void check_column(unsigned relation, int attribute, const std::string& origin) {
    load_secrets();
    auto secrets = m_secrets.find(relation);
    if (secrets == m_secrets.end()) return;
    const auto& [table, columns] = secrets->second;
    if (attribute == 0) {
      const auto& first = columns.begin()->second;
      refuse("a whole row of " + table + via(origin) + " includes " + first.first +
             ", which holds " + first.second + ": recipe SQL may not read it");
    }
    auto column = columns.find(attribute);
    if (column != columns.end())
      refuse("column " + table + "." + column->second.first + via(origin) + " holds " +
             column->second.second + ": recipe SQL may not read it");
  }

  void load_secrets() {
    if (m_secrets_loaded) return;
    m_secrets_loaded = true;
    std::string relations = "{", columns = "{";
    for (const auto& secret : k_secret_columns) {
      relations += std::string(relations.size() > 1 ? "," : "") + secret.relation;
      columns += std::string(columns.size() > 1 ? "," : "") + secret.column;
    }
    auto rows = m_database.exec(
        "SELECT c.oid::bigint, 'pg_catalog.' || c.relname, a.attnum, a.attname "
        "FROM unnest($1::text[], $2::text[]) AS s(rel, col) "
        "JOIN pg_class c ON c.relname = s.rel AND c.relnamespace = 'pg_catalog'::regnamespace "
        "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = s.col",
        {relations + "}", columns + "}"});
    for (const auto& row : rows) {
      auto& entry = m_secrets[row[0].as<unsigned>()];
      entry.first = row[1].c_str();
      std::string column = row[3].c_str();
      for (const auto& secret : k_secret_columns)
        if (entry.first == std::string("pg_catalog.") + secret.relation && column == secret.column)
          entry.second[row[2].as<int>()] = {column, secret.holds};
    }
  }

  Database& m_database;
  std::string m_what;
  WorkList m_functions, m_operators, m_relations, m_domains;
  std::set<unsigned> m_seen_functions, m_seen_operators, m_seen_relations, m_seen_domains;
  // relation oid -> (qualified name, attnum -> (column, what it holds))
  std::map<unsigned, std::pair<std::string, std::map<int, std::pair<std::string, std::string>>>>
      m_secrets;
  bool m_secrets_loaded = false;
};

// The analysed tree of `sql`, from the BEGIN ATOMIC body of a temporary function.
std::string query_tree(Database& database, const std::string& sql, const std::string& what) {
  database.savepoint(k_savepoint);
  bool prepared = false;
  try {
    // Both statements go through the extended protocol, one statement each: a text
    // that closes the wrapping or adds a statement fails to PREPARE.
    database.exec(std::string("PREPARE ") + k_probe + " AS " + sql, Params{});
    prepared = true;
    auto types = database.exec(
        "SELECT coalesce(array_to_string(ARRAY(SELECT CASE WHEN u = 'unknown'::regtype "
        "THEN 'text' ELSE format_type(u, NULL) END FROM unnest(parameter_types::oid[]) WITH "
        "ORDINALITY AS x(u, o) ORDER BY o), ', '), '') FROM pg_prepared_statements "
        "WHERE name = $1",
        {std::string(k_probe)});
    database.exec(std::string("DEALLOCATE ") + k_probe, Params{});
    prepared = false;
    try {
      database.exec(std::string("CREATE FUNCTION pg_temp.") + k_probe + "(" +
                        types.at(0).at(0).c_str() + ") RETURNS void LANGUAGE sql BEGIN ATOMIC " +
                        sql + "; END",
                    Params{});
    } catch (const DatabaseError& e) {
      throw RecipeError(what + ": cannot check the SQL (" + e.what() +
                        "); the host's role needs the TEMPORARY privilege on the database");
    }
    auto tree = database.exec(
        "SELECT prosqlbody::text FROM pg_proc WHERE proname = $1 "
        "AND pronamespace = pg_my_temp_schema()",
        {std::string(k_probe)});
    std::string text = tree.at(0).at(0).c_str();
    database.rollback_to(k_savepoint);
    database.release(k_savepoint);
    return text;
  } catch (...) {
    database.rollback_to(k_savepoint);
    database.release(k_savepoint);
    if (prepared) database.exec(std::string("DEALLOCATE ") + k_probe, Params{});
    throw;
  }
}

// oid, "schema"."name" and namespace of a relation the catalog already found.
pqxx::row relation_row(Database& database, const TableInfo& table) {
  auto rows = database.exec(
      "SELECT c.oid::bigint, n.nspname, c.relname, c.relkind FROM pg_class c "
      "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass($1)",
      {table.qualified_name});
  if (rows.empty()) throw RecipeError("table '" + table.display_name + "' does not exist");
  return rows[0];
}

}  // namespace

void QueryGuard::check_sql(Database& database, const std::string& sql, const std::string& what) {
  std::string key = what + '\x1f' + sql;
  if (auto it = m_sql_verdicts.find(key); it != m_sql_verdicts.end()) {
    if (!it->second.empty()) throw RecipeError(it->second);
    return;
  }
  std::string tree = query_tree(database, sql, what);
  std::string verdict;
  try {
    Analysis analysis(database, what);
    analysis.add_tree(tree, "");
    analysis.finish();
  } catch (const RecipeError& e) {
    verdict = e.what();
  }
  m_sql_verdicts[key] = verdict;
  if (!verdict.empty()) throw RecipeError(verdict);
}

void QueryGuard::check_relation(Database& database, const TableInfo& table,
                                const std::string& what) {
  std::string key = what + '\x1f' + table.qualified_name;
  if (auto it = m_relation_verdicts.find(key); it != m_relation_verdicts.end()) {
    if (!it->second.empty()) throw RecipeError(it->second);
    return;
  }
  std::string verdict;
  try {
    auto row = relation_row(database, table);
    if (std::string(row[1].c_str()) == "pg_catalog")
      for (const auto& secret : k_secret_columns)
        if (row[2].c_str() == std::string(secret.relation))
          throw RecipeError(what + ": table pg_catalog." + secret.relation + " holds " +
                            secret.holds + ": recipes may not read it" +
                            (std::string(secret.relation) == "pg_authid" ? k_secret_hint : ""));
    Analysis analysis(database, what);
    analysis.add_relation(row[0].as<unsigned>());
    analysis.finish();
  } catch (const RecipeError& e) {
    verdict = e.what();
  }
  m_relation_verdicts[key] = verdict;
  if (!verdict.empty()) throw RecipeError(verdict);
}

void QueryGuard::check_writable(Database& database, const TableInfo& table) {
  auto row = relation_row(database, table);
  std::string schema = row[1].c_str();
  if (schema == "pg_catalog" || schema == "information_schema" || schema == "pg_toast" ||
      std::string(row[3].c_str()) == "t")
    throw RecipeError("writes: table '" + table.display_name + "' is a system catalog (" + schema +
                      "." + row[2].c_str() + "): recipes may not write to it");
}

pqxx::result exec_recipe_sql(Database& database, QueryGuard& guard, const std::string& sql,
                             const Params& params, const std::string& what) {
  guard.check_sql(database, sql, what);
  return database.exec_read_only(sql, params);
}

}  // namespace host
