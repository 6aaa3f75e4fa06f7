#include "host/recipe_scaffold.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "host/catalog.hpp"
#include "host/conninfo.hpp"
#include "host/database.hpp"
#include "host/errors.hpp"

namespace host {

namespace {

// PostgreSQL's first oid for objects a user creates: below it, built-in types.
constexpr unsigned k_first_user_oid = 16384;

// A Lua string literal for `text`.
std::string lua_quote(const std::string& text) {
  std::string quoted = "\"";
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      quoted += '\\';
      quoted += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      quoted += "\\" + std::to_string(c);
    } else {
      quoted += static_cast<char>(c);
    }
  }
  return quoted + "\"";
}

bool lua_identifier(const std::string& name) {
  static const char* const keywords[] = {"and",   "break", "do",       "else",   "elseif", "end",
                                         "false", "for",   "function", "if",     "in",     "local",
                                         "nil",   "not",   "or",       "repeat", "return", "then",
                                         "true",  "until", "while",    "goto"};
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  return std::none_of(std::begin(keywords), std::end(keywords),
                      [&](const char* k) { return name == k; });
}

// `status = EMPTY` as a table constructor entry.
std::string entry(const std::string& column, const std::string& value) {
  return (lua_identifier(column) ? column : "[" + lua_quote(column) + "]") + " = " + value;
}

std::string sql_identifier(const std::string& name) {
  std::string quoted = "\"";
  for (char c : name) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

std::string list(const std::vector<std::string>& names) {
  std::string text = "{ ";
  for (std::size_t i = 0; i < names.size(); ++i) text += (i ? ", " : "") + lua_quote(names[i]);
  return text + " }";
}

// `items` joined with ", " into lines of at most ~90 characters, each after `prefix`
// (the first after `first`): long column lists stay luacheck's line length.
std::string wrapped(const std::vector<std::string>& items, const std::string& first,
                    const std::string& prefix, const std::string& last) {
  std::string text, line = first;
  for (std::size_t i = 0; i < items.size(); ++i) {
    std::string item = items[i] + (i + 1 < items.size() ? "," : "");
    if (line.size() + item.size() + 1 > 90 && line != first && line != prefix) {
      text += line + "\n";
      line = prefix;
    }
    line += (line == first || line == prefix ? "" : " ") + item;
  }
  return text + line + last + "\n";
}

// The scan key the recipe will use: the primary key, else the first unique key.
std::vector<std::string> scan_key(const TableInfo& table) {
  if (!table.primary_key.empty()) return table.primary_key;
  return table.unique_keys.empty() ? std::vector<std::string>{} : table.unique_keys.front();
}

// The first column that is not part of the key, not generated, for the examples.
const Column* example_column(const TableInfo& table, const std::vector<std::string>& key) {
  for (const auto& column : table.columns)
    if (!column.generated && std::find(key.begin(), key.end(), column.name) == key.end())
      return &column;
  return nullptr;
}

// One comment line per column: name, type, and what the catalog says about it.
std::string column_comments(const TableInfo& table, const std::vector<std::string>& key) {
  std::size_t width = 0;
  for (const auto& column : table.columns) width = std::max(width, column.name.size());
  std::ostringstream out;
  for (const auto& column : table.columns) {
    out << "--   " << column.name << std::string(width - column.name.size() + 2, ' ')
        << column.type;
    if (column.not_null) out << "  NOT NULL";
    if (column.has_default && !column.generated) out << "  DEFAULT ...";
    if (column.generated) out << "  GENERATED (never written)";
    if (std::find(key.begin(), key.end(), column.name) != key.end()) out << "  (key)";
    out << "\n";
  }
  return out.str();
}

std::string check_name(const std::string& name) {
  if (name.empty() || name.size() > 200 || name.front() == '.') return "is not a recipe name";
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
      return "must match [a-z0-9._-]+";
  return "";
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file << text;
  if (!file) throw RecipeError(path + ": cannot write the file");
}

}  // namespace

std::string recipe_skeleton(const std::string& name, const std::string& table_name,
                            const TableInfo& table) {
  auto key = scan_key(table);
  const Column* example = example_column(table, key);
  std::string target = lua_identifier(table_name) ? table_name : "[" + lua_quote(table_name) + "]";
  std::ostringstream out;
  out << "-- " << name << ".lua: TODO say what this recipe fills, from what, and why.\n"
      << "--\n"
      << "-- Written by `host new recipe` from the live catalog. The source table "
      << table.display_name << ":\n"
      << column_comments(table, key) << "--\n"
      << "-- `writes` is empty: list exactly the columns this recipe fills (anything else is\n"
      << "-- refused). Check it with `host check " << name << ".lua`, test it with\n"
      << "-- `host test " << name << "_test.lua`.\n"
      << "return {\n"
      << "  name        = " << lua_quote(name) << ",\n"
      << "  version     = \"1\",\n"
      << "  description = \"TODO: what this recipe fills.\",\n"
      << "  table       = " << lua_quote(table_name) << ",\n";
  if (!key.empty())
    out << "  key         = " << list(key) << ",\n";
  else
    out << "  -- key     = { \"...\" },  -- the table has no primary or unique key: name one\n";
  std::vector<std::string> quoted_columns;
  for (const auto& column : table.column_names()) quoted_columns.push_back(lua_quote(column));
  out << wrapped(quoted_columns, "  -- columns  = { ", "  --   ", " },");
  if (example) {
    out << "  -- where    = { " << entry(example->name, "EMPTY")
        << " },  -- only rows left to fill\n"
        << "  writes      = {\n"
        << "    -- " << target << " = { " << lua_quote(example->name) << " },\n"
        << "  },\n";
  } else {
    out << "  writes      = {},\n";
  }
  out << "  commit      = \"atomic\",  -- or \"batch\": one transaction per batch, resumable\n"
      << "  each = function(row) -- luacheck: no unused args\n";
  if (example)
    out << "    -- patch_if_empty(row, " << lua_quote(example->name)
        << ", \"TODO\", { reason = \"TODO\" })\n";
  out << "  end,\n"
      << "  verify = function()\n";
  if (example)
    out << "    -- expect_count(" << lua_quote(table_name) << ", { "
        << entry(example->name, "EMPTY") << " }, 0)\n";
  out << "  end,\n"
      << "}\n";
  return out.str();
}

std::string test_skeleton(const std::string& name, const TableInfo& table) {
  auto key = scan_key(table);
  // qualified_name is "schema"."table", quoted: its parts, unquoted, quoted again here.
  auto parts = split_qualified_name(table.qualified_name);
  std::string qualified = sql_identifier(table.schema) + "." + sql_identifier(parts.back());

  std::ostringstream ddl;
  if (table.schema != "public")
    ddl << "    CREATE SCHEMA IF NOT EXISTS " << sql_identifier(table.schema) << ";\n";
  ddl << "    CREATE TABLE " << qualified << " (\n";
  std::vector<std::string> lines;
  std::vector<std::string> insert_columns;
  for (const auto& column : table.columns) {
    bool builtin = column.type_oid != 0 && column.type_oid < k_first_user_oid;
    std::string line = "      " + sql_identifier(column.name) + " " +
                       (builtin ? column.type : std::string("text"));
    if (column.not_null) line += " NOT NULL";
    if (!builtin) line += "  -- " + column.type + " in the live database";
    lines.push_back(line);
    if (!column.generated) insert_columns.push_back(column.name);
  }
  if (!key.empty()) {
    std::string pk = "      PRIMARY KEY (";
    for (std::size_t i = 0; i < key.size(); ++i) pk += (i ? ", " : "") + sql_identifier(key[i]);
    lines.push_back(pk + ")");
  }
  for (std::size_t i = 0; i < lines.size(); ++i) {
    // A trailing comment must come after the comma.
    std::string line = lines[i];
    std::string comment;
    auto at = line.find("  -- ");
    if (at != std::string::npos) {
      comment = line.substr(at);
      line = line.substr(0, at);
    }
    ddl << line << (i + 1 < lines.size() ? "," : "") << comment << "\n";
  }
  ddl << "    );\n";

  std::vector<std::string> columns, placeholders;
  for (std::size_t i = 0; i < insert_columns.size(); ++i) {
    columns.push_back(sql_identifier(insert_columns[i]));
    placeholders.push_back("$" + std::to_string(i + 1));
  }

  std::ostringstream out;
  out << "-- " << name << "_test.lua: `host test` runs this on a fresh, empty database\n"
      << "-- (tests/HOST_TEST_FORMAT.md). Written by `host new recipe`: add rows that show what\n"
      << "-- the recipe must fill and what it must leave alone, then assert both.\n"
      << "\n"
      << "local RECIPE = " << lua_quote(name + ".lua") << "\n"
      << "\n"
      << "local function schema()\n"
      << "  -- The source table as the live catalog described it (defaults, checks and\n"
      << "  -- foreign keys left out; types the fresh database lacks become text).\n"
      << "  sql([[\n"
      << ddl.str() << "  ]])\n"
      << "end\n"
      << "\n"
      << "test(" << lua_quote(name + ": the dry run tells the truth, a second run changes nothing")
      << ", function()\n"
      << "  schema()\n"
      << "  -- TODO: rows to fill and rows to leave alone, e.g.\n"
      << wrapped(columns, "  -- sql([[INSERT INTO " + qualified + " (", "  --   ", ")")
      << wrapped(placeholders, "  --      VALUES (", "  --        ", ")]], ...)")
      << "  local dry = run(RECIPE, { dry_run = true })\n"
      << "  eq(dry.exit, 0, dry.output)\n"
      << "  local r = run(RECIPE)\n"
      << "  eq(r.exit, 0, r.output)\n"
      << "  eq(r.report.stats.patched, dry.report.stats.patched, \"the dry run told the truth\")\n"
      << "  local again = run(RECIPE)\n"
      << "  eq(again.report.stats.patched, 0, \"a second run changes nothing\")\n"
      << "  eq(revert(r.report.run_id).exit, 0)\n"
      << "end)\n";
  return out.str();
}

std::vector<std::string> write_recipe_scaffold(const ScaffoldOptions& options) {
  if (auto problem = check_name(options.name); !problem.empty())
    throw UsageError("recipe name '" + options.name + "' " + problem);
  namespace fs = std::filesystem;
  fs::path folder = options.folder.empty() ? fs::path(".") : fs::path(options.folder);
  fs::path recipe_path = folder / (options.name + ".lua");
  fs::path test_path = folder / (options.name + "_test.lua");
  if (options.overwrite == Overwrite::no)
    for (const auto& path : {recipe_path, test_path})
      if (fs::exists(path))
        throw UsageError(path.string() + " already exists (add --force to overwrite it)");
  Database database(resolve_conninfo(options.db));
  Catalog catalog(database);
  const TableInfo& table = catalog.table(options.table);
  std::string recipe = recipe_skeleton(options.name, options.table, table);
  std::string test = test_skeleton(options.name, table);
  std::error_code error;
  fs::create_directories(folder, error);
  if (error) throw UsageError(folder.string() + ": cannot create the folder: " + error.message());
  write_text(recipe_path.string(), recipe);
  write_text(test_path.string(), test);
  return {recipe_path.string(), test_path.string()};
}

}  // namespace host
