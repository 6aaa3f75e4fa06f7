#include "bindings/recipe.hpp"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <lua.hpp>
#include <set>
#include <sstream>

#include "bindings/lua_value.hpp"
#include "bindings/primitives.hpp"
#include "bindings/sandbox.hpp"
#include "host/errors.hpp"
#include "host/file_hash.hpp"

namespace host {

namespace {

const std::set<std::string> k_known_fields = {
    "name",   "version",    "description", "table", "input",  "key",      "columns",   "where",
    "writes", "batch_size", "commit",      "each",  "verify", "on_error", "pause_when"};

std::optional<std::string> optional_string(lua_State* L, int recipe, const char* field,
                                           const std::string& file) {
  lua_getfield(L, recipe, field);
  std::optional<std::string> value;
  if (lua_type(L, -1) == LUA_TSTRING) {
    std::size_t length = 0;
    const char* text = lua_tolstring(L, -1, &length);
    value = std::string(text, length);  // whole: a NUL byte must not end it early
  } else if (lua_type(L, -1) == LUA_TNUMBER && std::string(field) == "version") {
    value = lua_tostring(L, -1);
  } else if (!lua_isnil(L, -1)) {
    lua_pop(L, 1);
    throw RecipeError(file + ": recipe field '" + field + "' must be a string");
  }
  lua_pop(L, 1);
  return value;
}

constexpr std::size_t k_max_name_length = 200;
constexpr long long k_max_batch_size = 1000000;  // as --batch-size

// Why `name` is not a recipe name ([a-z0-9._-]+, at most k_max_name_length
// characters), or "" when it is one. A plain loop: std::regex recurses per
// character and overflows the stack on long input.
std::string name_problem(const std::string& name) {
  if (name.empty()) return "must not be empty";
  if (name.size() > k_max_name_length)
    return "is " + std::to_string(name.size()) + " characters long (at most " +
           std::to_string(k_max_name_length) + ")";
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
      return "must match [a-z0-9._-]+";
  return "";
}

// `text` for a message: at most 60 bytes, with control characters shown as '?'.
std::string shown(const std::string& text) {
  std::string short_text = text.size() > 60 ? text.substr(0, 57) + "..." : text;
  for (char& c : short_text)
    if (static_cast<unsigned char>(c) < 0x20) c = '?';
  return short_text;
}

std::vector<std::string> name_list(lua_State* L, int index, const std::string& what) {
  std::vector<std::string> names;
  if (lua_type(L, index) == LUA_TSTRING) {
    names.push_back(lua_tostring(L, index));
    return names;
  }
  if (!lua_istable(L, index)) throw RecipeError(what + " must be a string or a list of strings");
  for (int i = 1;; ++i) {
    lua_rawgeti(L, index, i);
    if (lua_isnil(L, -1)) {
      lua_pop(L, 1);
      break;
    }
    if (lua_type(L, -1) != LUA_TSTRING) {
      lua_pop(L, 1);
      throw RecipeError(what + " must be a list of strings");
    }
    names.push_back(lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  return names;
}

}  // namespace

std::string read_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw RecipeError(path + ": cannot read the file");
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

std::string text_hash(const std::string& text) {
  ContentHash hash;
  hash.add(text.data(), text.size());
  return hash.hex();
}

Recipe load_recipe(Sandbox& sandbox, const std::string& path) {
  // A wrong path on the command line is a usage error (exit 2), not a recipe's.
  if (!std::filesystem::is_regular_file(path)) throw UsageError(path + ": no such recipe file");
  return load_recipe_text(sandbox, path, read_file(path));
}

Recipe load_recipe_text(Sandbox& sandbox, const std::string& path, std::string source) {
  lua_State* L = sandbox.state();
  Recipe recipe;
  recipe.path = path;
  recipe.directory = std::filesystem::path(path).parent_path().string();
  if (recipe.directory.empty()) recipe.directory = ".";
  recipe.source = std::move(source);
  recipe.hash = text_hash(recipe.source);

  int base = lua_gettop(L);
  sandbox.load_text(recipe.source, "@" + path);
  sandbox.arm_deadline();
  int status = lua_pcall(L, 0, 1, 0);
  sandbox.disarm_deadline();
  if (status != 0) {
    std::string message = error_text(L, -1, path);
    lua_settop(L, base);
    if (sandbox.limit_breached()) message = path + ": " + sandbox.breach_message();
    throw RecipeError(message);
  }
  if (!lua_istable(L, -1)) {
    std::string got = luaL_typename(L, -1);
    lua_settop(L, base);
    throw RecipeError(path + ": a recipe must return a table, got " + got);
  }
  int table = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, table)) {
    std::string field = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
    lua_pop(L, 1);
    if (!k_known_fields.count(field)) {
      lua_settop(L, base);
      throw RecipeError(path + ": unknown recipe field '" + shown(field) + "'");
    }
  }
  try {
    auto name = optional_string(L, table, "name", path);
    if (!name) throw RecipeError(path + ": recipe field 'name' is required");
    if (auto problem = name_problem(*name); !problem.empty())
      throw RecipeError(path + ": recipe name '" + shown(*name) + "' " + problem);
    recipe.name = *name;
    recipe.version = optional_string(L, table, "version", path).value_or("");
    recipe.description = optional_string(L, table, "description", path).value_or("");
    recipe.table = optional_string(L, table, "table", path);
    recipe.input = optional_string(L, table, "input", path);
    if (recipe.table.has_value() == recipe.input.has_value())
      throw RecipeError(path + ": a recipe needs exactly one row source: 'table' or 'input'");

    lua_getfield(L, table, "key");
    if (!lua_isnil(L, -1)) recipe.key = name_list(L, -1, path + ": recipe field 'key'");
    lua_pop(L, 1);
    lua_getfield(L, table, "columns");
    if (!lua_isnil(L, -1)) recipe.columns = name_list(L, -1, path + ": recipe field 'columns'");
    lua_pop(L, 1);

    lua_getfield(L, table, "where");
    if (!lua_isnil(L, -1)) {
      std::string error;
      if (!lua_to_filter(L, -1, recipe.where, error))
        throw RecipeError(path + ": recipe field 'where': " + error);
    }
    lua_pop(L, 1);

    lua_getfield(L, table, "writes");
    if (!lua_isnil(L, -1)) {
      if (!lua_istable(L, -1)) throw RecipeError(path + ": recipe field 'writes' must be a table");
      int writes = lua_gettop(L);
      lua_pushnil(L);
      while (lua_next(L, writes)) {
        if (lua_type(L, -2) != LUA_TSTRING)
          throw RecipeError(path + ": 'writes' must map table names to column lists");
        std::string target = lua_tostring(L, -2);
        std::vector<std::string> columns;
        if (lua_type(L, -1) == LUA_TSTRING && std::string(lua_tostring(L, -1)) == "*")
          columns = {"*"};
        else
          columns = name_list(L, -1, path + ": writes." + target);
        recipe.writes[target] = columns;
        lua_pop(L, 1);
      }
    }
    lua_pop(L, 1);

    lua_getfield(L, table, "batch_size");
    if (!lua_isnil(L, -1)) {
      // A number, not a string Lua would convert; whole; NaN fails every comparison.
      double size = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : 0;
      if (!(size >= 1 && size <= static_cast<double>(k_max_batch_size)) || size != std::floor(size))
        throw RecipeError(path + ": recipe field 'batch_size' must be a whole number from 1 to " +
                          std::to_string(k_max_batch_size) + " (got " +
                          shown(describe_lua_value(L, -1)) + ")");
      recipe.batch_size = static_cast<long long>(size);
    }
    lua_pop(L, 1);
    // Checked against the database (host/throttle.hpp) when the run starts, not here.
    recipe.pause_when = optional_string(L, table, "pause_when", path);
    if (recipe.pause_when && recipe.pause_when->find('\0') != std::string::npos)
      throw RecipeError(path + ": recipe field 'pause_when' must not hold a NUL byte");

    auto commit = optional_string(L, table, "commit", path);
    if (commit == std::optional<std::string>("atomic"))
      recipe.commit = CommitMode::atomic;
    else if (commit == std::optional<std::string>("batch"))
      recipe.commit = CommitMode::batch;
    else if (commit)
      throw RecipeError(path + ": recipe field 'commit' must be \"atomic\" or \"batch\"");

    auto on_error = optional_string(L, table, "on_error", path);
    if (on_error && *on_error != "skip" && *on_error != "fail")
      throw RecipeError(path + ": recipe field 'on_error' must be \"skip\" or \"fail\"");
    recipe.skip_failed_rows = on_error == std::optional<std::string>("skip");

    lua_getfield(L, table, "each");
    if (!lua_isfunction(L, -1))
      throw RecipeError(path + ": recipe field 'each' must be a function");
    recipe.each_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_getfield(L, table, "verify");
    if (lua_isnil(L, -1)) {
      lua_pop(L, 1);
    } else {
      if (!lua_isfunction(L, -1))
        throw RecipeError(path + ": recipe field 'verify' must be a function");
      recipe.verify_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
  } catch (...) {
    lua_settop(L, base);
    throw;
  }
  lua_settop(L, base);
  return recipe;
}

}  // namespace host
