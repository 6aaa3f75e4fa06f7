#pragma once
// A recipe file: loaded as text in the sandbox, its returned table checked
// field by field (RECIPE_API.md section 1).
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "host/filter.hpp"
#include "host/run_types.hpp"

namespace host {

class Sandbox;

struct Recipe {
  std::string path;       // as given on the command line
  std::string directory;  // its folder, searched by require
  std::string source;
  std::string hash;  // of the file text; resume refuses a changed recipe
  std::string name;
  std::string version;
  std::string description;
  std::optional<std::string> table;
  std::optional<std::string> input;
  std::vector<std::string> key;
  std::vector<std::string> columns;
  Filter where;
  std::map<std::string, std::vector<std::string>> writes;  // table -> columns, or {"*"}
  std::optional<long long> batch_size;
  std::optional<std::string> pause_when;  // SQL: no batch starts while it is true (section 10)
  std::optional<CommitMode> commit;
  bool skip_failed_rows = false;  // on_error = "skip"
  int each_ref = -2;              // registry references (LUA_NOREF until loaded)
  int verify_ref = -2;
};

// Reads `path` and runs it in `sandbox` (whose globals must already be installed);
// validates the returned table. Errors are RecipeError naming the file (and line).
Recipe load_recipe(Sandbox& sandbox, const std::string& path);

// As load_recipe, for `source` already read from `path` (named in messages; its
// folder is the recipe's directory). Needs no file.
Recipe load_recipe_text(Sandbox& sandbox, const std::string& path, std::string source);

// Reads a whole file; a RecipeError naming it when it cannot be read.
std::string read_file(const std::string& path);

// A short stable hash (FNV-1a, 64 bits, hex) of `text`.
std::string text_hash(const std::string& text);

}  // namespace host
