#include "host/catalog.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "host/database.hpp"
#include "host/errors.hpp"
#include "host/sql_text.hpp"

namespace host {

const Column* TableInfo::column(const std::string& name) const {
  for (const auto& c : columns)
    if (c.name == name) return &c;
  return nullptr;
}

const Column& TableInfo::require_column(const std::string& name) const {
  if (const Column* c = column(name)) return *c;
  throw RecipeError("column '" + name + "' does not exist in table '" + display_name + "'");
}

std::vector<std::string> TableInfo::column_names() const {
  std::vector<std::string> names;
  for (const auto& c : columns) names.push_back(c.name);
  return names;
}

bool TableInfo::is_unique_key(const std::vector<std::string>& key) const {
  auto sorted = key;
  std::sort(sorted.begin(), sorted.end());
  for (auto unique : unique_keys) {
    std::sort(unique.begin(), unique.end());
    if (unique == sorted) return true;
  }
  return false;
}

void TableInfo::require_row_identity(const std::vector<std::string>& key, const std::string& what,
                                     KeyUse use) const {
  std::string names;
  for (const auto& column : key) names += (names.empty() ? "" : ", ") + column;
  for (const auto& column : key)
    if (!require_column(column).not_null && use == KeyUse::scan)
      throw RecipeError(what + " (" + names + ") of '" + display_name + "' is refused: column '" +
                        column +
                        "' may be NULL, and rows with a NULL key can be neither scanned nor "
                        "matched; declare it NOT NULL or use the primary key");
  if (!is_unique_key(key))
    throw RecipeError(what + " (" + names + ") of '" + display_name +
                      "' is refused: no primary key or unique index covers exactly these "
                      "columns, so one key could match several rows; add a unique index or use "
                      "the primary key");
  if (has_children)
    throw RecipeError(what + " (" + names + ") of '" + display_name +
                      "' is refused: the table has inheritance children, whose rows its unique "
                      "indexes do not cover; name each child table instead");
}

std::vector<std::string> split_qualified_name(const std::string& name) {
  std::vector<std::string> parts;
  std::string current;
  bool quoted = false, was_quoted = false;
  auto finish = [&] {
    if (current.empty()) throw RecipeError("invalid table name '" + name + "'");
    parts.push_back(current);
    current.clear();
    was_quoted = false;
  };
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    if (quoted) {
      if (c == '"' && i + 1 < name.size() && name[i + 1] == '"') {
        current += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        current += c;
      }
    } else if (c == '"' && current.empty() && !was_quoted) {
      quoted = was_quoted = true;
    } else if (c == '.') {
      finish();
    } else if (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '$' ||
               static_cast<unsigned char>(c) >= 0x80) {
      if (was_quoted) throw RecipeError("invalid table name '" + name + "'");
      current += c;
    } else {
      throw RecipeError("invalid table name '" + name + "'");
    }
  }
  if (quoted) throw RecipeError("invalid table name '" + name + "'");
  finish();
  if (parts.size() > 2) throw RecipeError("invalid table name '" + name + "'");
  return parts;
}

const TableInfo* Catalog::find_table(const std::string& name) {
  if (auto it = m_tables.find(name); it != m_tables.end()) return it->second.get();
  auto parts = split_qualified_name(name);
  std::string regclass_text;
  for (const auto& part : parts) {
    if (!regclass_text.empty()) regclass_text += '.';
    regclass_text += quote_ident(part);
  }
  auto found = m_database.exec(
      "SELECT c.oid::bigint, quote_ident(n.nspname) || '.' || quote_ident(c.relname), "
      "n.nspname, c.relkind, c.relkind = 'r' AND c.relhassubclass "
      "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
      "WHERE c.oid = to_regclass($1) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')",
      {regclass_text});
  if (found.empty()) return nullptr;
  auto info = std::make_unique<TableInfo>();
  info->display_name = name;
  info->qualified_name = found[0][1].c_str();
  info->schema = found[0][2].c_str();
  info->relkind = found[0][3].c_str()[0];
  info->has_children = std::string(found[0][4].c_str()) == "t";
  std::string oid = found[0][0].c_str();
  info->oid = oid;

  auto columns = m_database.exec(
      "SELECT a.attname, format_type(a.atttypid, a.atttypmod), "
      // Without its modifier "character" means char(1) and "bit" bit(1): casting a
      // value to them would cut it. bpchar and varbit take the value whole and
      // leave the length check to the assignment.
      "       CASE base.oid WHEN 'bpchar'::regtype THEN 'pg_catalog.bpchar' "
      "                     WHEN 'bit'::regtype THEN 'pg_catalog.varbit' "
      "                     WHEN '_bpchar'::regtype THEN 'pg_catalog.bpchar[]' "
      "                     WHEN '_bit'::regtype THEN 'pg_catalog.varbit[]' "
      "                     ELSE format_type(base.oid, NULL) END, "
      "       a.atttypid::bigint, "
      "       base.typcategory = 'S', "
      "       a.attnotnull, a.atthasdef OR a.attidentity <> '', "
      "       a.attcollation <> t.typcollation, "
      "       format_type(base.oid, CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod "
      "END), "
      "       a.attgenerated <> '', "
      // An `=` whose operands take the base type as it is, or through a binary
      // coercion (varchar uses text's), or through the polymorphic array, enum and
      // range operators.
      "       EXISTS (SELECT 1 FROM pg_operator o WHERE o.oprname = '=' AND o.oprleft = o.oprright "
      "AND (o.oprleft = base.oid "
      "OR EXISTS (SELECT 1 FROM pg_cast k WHERE k.castsource = base.oid AND k.casttarget = "
      "o.oprleft AND k.castmethod = 'b' AND k.castcontext = 'i') "
      "OR (o.oprleft = 'anyarray'::regtype AND base.typcategory = 'A') "
      "OR (o.oprleft = 'anyenum'::regtype AND base.typtype = 'e') "
      "OR (o.oprleft = 'anyrange'::regtype AND base.typtype = 'r') "
      "OR (o.oprleft = 'anymultirange'::regtype AND base.typtype = 'm') "
      "OR (o.oprleft = 'record'::regtype AND base.typtype = 'c'))) "
      "FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
      "JOIN pg_type base ON base.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END "
      "WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
      {oid});
  for (const auto& row : columns) {
    Column c;
    c.name = row[0].c_str();
    c.type = row[1].c_str();
    c.cast_type = row[2].c_str();
    c.type_oid = row[3].as<unsigned>();
    c.is_text = std::string(row[4].c_str()) == "t";
    c.not_null = std::string(row[5].c_str()) == "t";
    c.has_default = std::string(row[6].c_str()) == "t";
    c.own_collation = std::string(row[7].c_str()) == "t";
    c.storage_type = row[8].c_str();
    c.generated = std::string(row[9].c_str()) == "t";
    c.has_equality = std::string(row[10].c_str()) == "t";
    info->columns.push_back(std::move(c));
  }
  auto keys = m_database.exec(
      "SELECT i.indisprimary, array_to_json(ARRAY(SELECT a.attname FROM unnest(i.indkey::int2[]) "
      "WITH ORDINALITY k(attnum, ord) JOIN pg_attribute a ON a.attrelid = i.indrelid AND "
      "a.attnum = k.attnum ORDER BY k.ord))::text "
      "FROM pg_index i WHERE i.indrelid = $1::oid AND i.indisunique AND i.indpred IS NULL "
      "AND i.indexprs IS NULL AND i.indisvalid AND i.indimmediate ORDER BY NOT i.indisprimary, "
      "i.indexrelid",
      {oid});
  for (const auto& row : keys) {
    auto key = nlohmann::json::parse(row[1].c_str()).get<std::vector<std::string>>();
    if (std::string(row[0].c_str()) == "t") info->primary_key = key;
    info->unique_keys.push_back(key);
  }
  auto* raw = info.get();
  m_tables[name] = std::move(info);
  return raw;
}

const TableInfo& Catalog::table(const std::string& name) {
  if (const TableInfo* info = find_table(name)) return *info;
  throw RecipeError("table '" + name + "' does not exist");
}

}  // namespace host
