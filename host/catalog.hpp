#pragma once
// What the live database says a table looks like: columns, types, keys.
// Every identifier a recipe names is checked here before it reaches SQL.
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace host {

class Database;

struct Column {
  std::string name;
  std::string type;       // format_type with modifiers, for messages: "character varying(20)"
  std::string cast_type;  // type without modifiers, for casts of bound text: "character varying"
  // The type values are stored as, domains resolved to their base: "numeric(10,2)".
  std::string storage_type;
  unsigned type_oid = 0;
  bool is_text = false;  // string category: a blank value counts as empty
  bool not_null = false;
  bool has_default = false;
  // Declared with a collation of its own: it orders differently from a bare
  // value of its type.
  bool own_collation = false;
  // GENERATED ALWAYS AS (...) STORED: PostgreSQL computes it, nothing may write it.
  bool generated = false;
  // The type has an `=` operator (json, xml and point do not): guards and revert
  // compare typed values where it has, and the canonical text form where not.
  bool has_equality = true;
};

// What a key is for: walking the table, or finding the row that given values name.
enum class KeyUse { scan, match };

struct TableInfo {
  std::string display_name;    // as the recipe wrote it, for messages
  std::string qualified_name;  // "schema"."table", quoted, for SQL
  std::string schema;          // unquoted
  std::string oid;             // pg_class oid as text: a table's identity across renames
  char relkind = 'r';
  // A plain table with inheritance children: a scan of it reads the children too,
  // and its unique indexes do not cover their rows.
  bool has_children = false;
  std::vector<Column> columns;
  std::vector<std::string> primary_key;
  // Valid, immediate, non-partial unique indexes on plain columns, primary key included.
  std::vector<std::vector<std::string>> unique_keys;

  // nullptr when the table has no such column.
  const Column* column(const std::string& name) const;
  // The column, or a RecipeError naming the table and the column.
  const Column& require_column(const std::string& name) const;
  std::vector<std::string> column_names() const;
  bool is_unique_key(const std::vector<std::string>& columns) const;
  // Throws a RecipeError saying why unless `columns` identify at most one row for
  // sure: the primary key or a unique index, and no inheritance child beyond the
  // index's reach. A scan key must also be NOT NULL (a keyset scan never reaches
  // rows with a NULL key); a match key need not, since the values it is matched
  // with are refused when NULL. `what` names the use ("scan key").
  void require_row_identity(const std::vector<std::string>& columns, const std::string& what,
                            KeyUse use) const;
};

// Caches table descriptions for one run; tables do not change shape under a run.
class Catalog {
 public:
  explicit Catalog(Database& database) : m_database(database) {}
  // The table, or a RecipeError ("table 'x' does not exist").
  const TableInfo& table(const std::string& name);
  // nullptr when absent.
  const TableInfo* find_table(const std::string& name);

 private:
  Database& m_database;
  std::map<std::string, std::unique_ptr<TableInfo>> m_tables;
};

// Splits "schema.table" (either part may be double-quoted) into its parts; a
// RecipeError for anything that is not one or two identifiers.
std::vector<std::string> split_qualified_name(const std::string& name);

}  // namespace host
