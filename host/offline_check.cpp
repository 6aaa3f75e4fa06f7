#include "host/offline_check.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <deque>
#include <filesystem>
#include <lua.hpp>
#include <set>

#include "bindings/module_loader.hpp"
#include "bindings/primitives.hpp"
#include "bindings/recipe.hpp"
#include "bindings/run_context.hpp"
#include "bindings/verify_helpers.hpp"
#include "host/errors.hpp"

namespace host {

namespace {

// The globals that reach the database. Offline they are replaced by a function
// that says so: a recipe calling one of them while its file loads cannot be
// checked without a database (inside each or verify they are never called here).
const char* const k_database_globals[] = {
    "read",      "read_all",         "query", "map_id",       "patch_if_empty", "patch_if",
    "fill_from", "insert_if_absent", "count", "expect_count", "orphans",        "checksum",
    "same_rows",
};

// Upvalue 1: the global's name. Raises; the message names the recipe line.
int needs_database(lua_State* L) {
  luaL_where(L, 1);
  lua_pushfstring(L,
                  "%s() needs a database, and `host check --offline` opens none: the recipe "
                  "calls it while its file loads; check it with `host check RECIPE --db ...`",
                  lua_tostring(L, lua_upvalueindex(1)));
  lua_concat(L, 2);
  return lua_error(L);
}

// Installs every recipe global as Run::load does (host/runner.cpp).
void install_recipe_globals(Sandbox& sandbox, RunContext& context, std::vector<std::string> folders,
                            LoadedModules* loaded) {
  install_primitives(sandbox, context);
  install_verify_helpers(sandbox, context);
  install_module_loader(sandbox, std::move(folders), loaded);
}

// The keys of the protected globals table (what the globals proxy reads through to).
std::set<std::string> protected_names(Sandbox& sandbox) {
  lua_State* L = sandbox.state();
  int base = lua_gettop(L);
  std::set<std::string> names;
  sandbox.push_globals();
  if (lua_getmetatable(L, -1)) {
    lua_getfield(L, -1, "__index");
    if (lua_istable(L, -1)) {
      int table = lua_gettop(L);
      lua_pushnil(L);
      while (lua_next(L, table)) {
        if (lua_type(L, -2) == LUA_TSTRING) {
          std::string name = lua_tostring(L, -2);
          names.insert(name);
          // A table of functions (log): its members are globals a recipe calls too.
          // Read-only tables are proxies: their members sit in the __index table.
          // _G is the globals table itself, not a table of functions.
          if (lua_istable(L, -1) && name != "_G") {
            if (lua_getmetatable(L, -1)) {
              lua_getfield(L, -1, "__index");
              lua_remove(L, -2);
              if (!lua_istable(L, -1)) {
                lua_pop(L, 1);
                lua_pushvalue(L, -1);
              }
            } else {
              lua_pushvalue(L, -1);
            }
            int members = lua_gettop(L);
            lua_pushnil(L);
            while (lua_next(L, members)) {
              if (lua_type(L, -2) == LUA_TSTRING && lua_isfunction(L, -1))
                names.insert(name + "." + lua_tostring(L, -2));
              lua_pop(L, 1);
            }
            lua_pop(L, 1);  // the members table
          }
        }
        lua_pop(L, 1);
      }
    }
  }
  lua_settop(L, base);
  return names;
}

// Problems of the recipe table that need no catalog to see.
void check_names(const Recipe& recipe, std::vector<std::string>& problems) {
  auto blank = [](const std::string& name) {
    return name.empty() ||
           std::all_of(name.begin(), name.end(), [](unsigned char c) { return std::isspace(c); });
  };
  for (const auto& key : recipe.key)
    if (blank(key)) problems.push_back(recipe.path + ": recipe field 'key' names an empty column");
  for (const auto& column : recipe.columns)
    if (blank(column))
      problems.push_back(recipe.path + ": recipe field 'columns' names an empty column");
  if (recipe.table && blank(*recipe.table))
    problems.push_back(recipe.path + ": recipe field 'table' is empty");
  if (recipe.input && blank(*recipe.input))
    problems.push_back(recipe.path + ": recipe field 'input' is empty");
  for (const auto& [table, columns] : recipe.writes) {
    std::string where = recipe.path + ": writes." + table;
    if (blank(table)) problems.push_back(recipe.path + ": 'writes' names an empty table");
    if (columns.empty())
      problems.push_back(where + " lists no columns (a list of column names, or \"*\")");
    std::set<std::string> seen;
    for (const auto& column : columns) {
      if (blank(column)) problems.push_back(where + " names an empty column");
      if (column == "*" && columns.size() > 1)
        problems.push_back(where + ": \"*\" stands alone, not in a list");
      if (!seen.insert(column).second) problems.push_back(where + " names '" + column + "' twice");
    }
  }
}

// Skips a long bracket ([[...]], [==[...]==]) starting at `at` (on its '['), counting
// lines; returns the position after it, or npos when `at` does not open one.
std::size_t skip_long_bracket(const std::string& s, std::size_t at, int& line,
                              std::string* content = nullptr) {
  std::size_t open = at + 1;
  while (open < s.size() && s[open] == '=') ++open;
  if (open >= s.size() || s[open] != '[') return std::string::npos;
  std::string close = "]" + std::string(open - at - 1, '=') + "]";
  std::size_t end = s.find(close, open + 1);
  if (end == std::string::npos) end = s.size();
  line += static_cast<int>(
      std::count(s.begin() + static_cast<long>(open), s.begin() + static_cast<long>(end), '\n'));
  if (content) *content = s.substr(open + 1, end - open - 1);
  return std::min(s.size(), end + close.size());
}

// Skips a quoted string starting at `at` (on its quote); returns the position after it.
std::size_t skip_quoted(const std::string& s, std::size_t at, int& line,
                        std::string* content = nullptr) {
  char quote = s[at];
  std::string text;
  std::size_t i = at + 1;
  for (; i < s.size() && s[i] != quote; ++i) {
    if (s[i] == '\n') {
      ++line;
      break;  // an unfinished string: Lua refuses it anyway
    }
    if (s[i] == '\\' && i + 1 < s.size()) ++i;
    text += s[i];
  }
  if (content) *content = text;
  return std::min(s.size(), i + 1);
}

}  // namespace

std::vector<std::pair<std::string, int>> literal_requires(const std::string& s) {
  std::vector<std::pair<std::string, int>> found;
  int line = 1;
  auto word_char = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  std::size_t i = 0;
  while (i < s.size()) {
    char c = s[i];
    if (c == '\n') {
      ++line;
      ++i;
    } else if (c == '-' && i + 1 < s.size() && s[i + 1] == '-') {
      std::size_t after = s[i + 2] == '[' ? skip_long_bracket(s, i + 2, line) : std::string::npos;
      if (after != std::string::npos) {
        i = after;
      } else {
        while (i < s.size() && s[i] != '\n') ++i;
      }
    } else if (c == '"' || c == '\'') {
      i = skip_quoted(s, i, line);
    } else if (c == '[' && skip_long_bracket(s, i, line) != std::string::npos) {
      int ignored = 0;
      i = skip_long_bracket(s, i, ignored);
    } else if (word_char(c)) {
      std::size_t start = i;
      while (i < s.size() && word_char(s[i])) ++i;
      bool member = start > 0 && (s[start - 1] == '.' || s[start - 1] == ':');
      if (member || s.compare(start, i - start, "require") != 0) continue;
      std::size_t j = i;
      while (j < s.size() && (s[j] == ' ' || s[j] == '\t')) ++j;
      if (j < s.size() && s[j] == '(') {
        ++j;
        while (j < s.size() && std::isspace(static_cast<unsigned char>(s[j]))) ++j;
      }
      int at_line = line;
      std::string name;
      int counted = line;
      if (j < s.size() && (s[j] == '"' || s[j] == '\'')) {
        skip_quoted(s, j, counted, &name);
      } else if (j < s.size() && s[j] == '[') {
        if (skip_long_bracket(s, j, counted, &name) == std::string::npos) continue;
      } else {
        continue;  // require(variable): nothing to follow statically
      }
      found.emplace_back(name, at_line);
    } else {
      ++i;
    }
  }
  return found;
}

OfflineCheckResult check_recipe_offline(const std::string& path,
                                        const OfflineCheckOptions& options) {
  if (!std::filesystem::is_regular_file(path)) throw UsageError(path + ": no such recipe file");
  OfflineCheckResult result;
  // Declared before the sandbox: the primitives hold a pointer to it.
  RunContext context;
  context.vars = options.vars;
  context.log = [](bool warning, const std::string& line) {
    if (warning)
      spdlog::warn("{}", line);
    else
      spdlog::info("{}", line);
  };
  LoadedModules loaded;
  Sandbox sandbox(options.limits);
  lua_State* L = sandbox.state();
  std::vector<std::string> folders;
  std::string folder = std::filesystem::path(path).parent_path().string();
  folders.push_back(folder.empty() ? "." : folder);
  for (const auto& lib : options.libs) folders.push_back(lib);
  folders.push_back(stdlib_folder());
  install_recipe_globals(sandbox, context, folders, &loaded);
  for (const char* name : k_database_globals) {
    lua_pushstring(L, name);
    lua_pushcclosure(L, needs_database, 1);
    sandbox.set_protected_global(name);
  }

  Recipe recipe;
  try {
    recipe = load_recipe(sandbox, path);
  } catch (const RecipeError& e) {
    result.problems.push_back(sandbox.restore_source_paths(e.what()));
    for (const auto& [name, module] : loaded) result.modules.push_back(name);
    return result;
  }
  check_names(recipe, result.problems);

  struct Wanted {
    std::string name, file;
    int line;
  };
  std::deque<Wanted> wanted;
  std::set<std::string> scanned, tried;
  auto scan = [&](const std::string& file, const std::string& source) {
    for (const auto& [name, line] : literal_requires(source)) wanted.push_back({name, file, line});
  };
  scan(path, recipe.source);
  for (;;) {
    for (const auto& [name, module] : loaded) {
      if (!scanned.insert(module.path).second) continue;
      try {
        scan(module.path, read_file(module.path));
      } catch (const RecipeError&) {
        // Not found or unreadable: its require already failed with a message.
      }
    }
    if (wanted.empty()) break;
    Wanted next = wanted.front();
    wanted.pop_front();
    if (loaded.count(next.name) || !tried.insert(next.name).second) continue;
    int base = lua_gettop(L);
    sandbox.push_globals();
    lua_getfield(L, -1, "require");
    lua_pushlstring(L, next.name.data(), next.name.size());
    sandbox.arm_deadline();
    int status = lua_pcall(L, 1, 1, 0);
    sandbox.disarm_deadline();
    if (status != 0) {
      std::string message = sandbox.limit_breached()         ? sandbox.breach_message()
                            : lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1)
                                                             : error_text(L, -1, next.file);
      result.problems.push_back(
          sandbox.restore_source_paths(next.file + ":" + std::to_string(next.line) +
                                       ": require \"" + next.name + "\": " + message));
    }
    lua_settop(L, base);
  }
  for (const auto& [name, module] : loaded) result.modules.push_back(name);
  return result;
}

std::vector<std::string> recipe_global_names() {
  std::set<std::string> baseline;
  {
    Sandbox bare;
    baseline = protected_names(bare);
  }
  RunContext context;
  Sandbox sandbox;
  install_recipe_globals(sandbox, context, {stdlib_folder()}, nullptr);
  std::vector<std::string> names;
  for (const auto& name : protected_names(sandbox))
    if (!baseline.count(name)) names.push_back(name);
  return names;
}

}  // namespace host
