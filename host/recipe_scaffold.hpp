#pragma once
// `host new recipe NAME --table T`: a recipe skeleton and its test skeleton,
// written from what the live catalog says about the table.
#include <optional>
#include <string>
#include <vector>

namespace host {

struct TableInfo;

enum class Overwrite { no, yes };

struct ScaffoldOptions {
  std::string name;    // the recipe name, [a-z0-9._-]+; also the file names
  std::string table;   // as the recipe will name it (schema-qualified allowed)
  std::string folder;  // where the files go (created when missing)
  std::optional<std::string> db;
  Overwrite overwrite = Overwrite::no;
};

// The two files' text for `table`, as the scaffold writes them.
std::string recipe_skeleton(const std::string& name, const std::string& table_name,
                            const TableInfo& table);
std::string test_skeleton(const std::string& name, const TableInfo& table);

// Reads the table from the database and writes FOLDER/NAME.lua and
// FOLDER/NAME_test.lua; returns their paths. UsageError for a bad name or an
// existing file (unless overwrite), RecipeError for an unknown table,
// DatabaseUnreachable when the database cannot be reached.
std::vector<std::string> write_recipe_scaffold(const ScaffoldOptions& options);

}  // namespace host
