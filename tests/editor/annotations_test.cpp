// The editor support (editor/) against the code: the LuaLS annotations and the
// luacheck standard name every global the host registers for a recipe, and every
// function each stdlib module exports, so that the two cannot drift apart.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <lua.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "bindings/module_loader.hpp"
#include "bindings/sandbox.hpp"
#include "host/offline_check.hpp"

namespace {

std::string source_file(const std::string& relative) {
  std::ifstream file(std::string(HOST_SOURCE_DIR) + "/" + relative);
  REQUIRE(file);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

bool mentions(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Declared in a meta file as a function or as a value: `function log.info(` or `\nvars = `.
// `require` is left to LuaLS's own (it resolves modules): a comment describes it.
bool annotated(const std::string& meta, const std::string& name) {
  if (name == "require") return mentions(meta, "\n-- require(name): ");
  return mentions(meta, "\nfunction " + name + "(") || mentions(meta, "\n" + name + " = ");
}

// The keys of the table stdlib module `name` returns, loaded as a recipe would load it.
std::set<std::string> module_exports(const std::string& name) {
  host::Sandbox sandbox;
  host::install_module_loader(sandbox, {host::stdlib_folder()});
  lua_State* L = sandbox.state();
  sandbox.load_text("return require(...)", "=test");
  lua_pushstring(L, name.c_str());
  REQUIRE(lua_pcall(L, 1, 1, 0) == 0);
  REQUIRE(lua_istable(L, -1));
  std::set<std::string> keys;
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) == LUA_TSTRING) keys.insert(lua_tostring(L, -1));
  }
  lua_settop(L, 0);
  return keys;
}

}  // namespace

TEST_CASE("the LuaLS annotations name every global the host registers", "[unit][editor]") {
  auto globals = host::recipe_global_names();
  // The list comes from the code; a few it must hold, to show it is the real one.
  for (const char* name : {"read", "patch_if_empty", "map_id", "log", "log.info", "log.warn",
                           "vars", "EMPTY", "NOT_EMPTY", "require", "expect", "same_rows"})
    CHECK(std::find(globals.begin(), globals.end(), name) != globals.end());

  const std::string meta = source_file("editor/library/host.d.lua");
  REQUIRE(meta.rfind("---@meta", 0) == 0);
  for (const auto& name : globals) {
    INFO("global " << name);
    CHECK(annotated(meta, name));
  }
  // And nothing documented that the host does not register.
  std::regex declared(R"(\nfunction ([A-Za-z_][A-Za-z0-9_.]*)\()");
  for (std::sregex_iterator it(meta.begin(), meta.end(), declared), end; it != end; ++it) {
    std::string name = (*it)[1];
    INFO("annotated " << name);
    CHECK(std::find(globals.begin(), globals.end(), name) != globals.end());
  }
}

TEST_CASE("the recipe table's fields are annotated as a class", "[unit][editor]") {
  const std::string meta = source_file("editor/library/host.d.lua");
  for (const char* field :
       {"name", "version", "description", "table", "input", "key", "columns", "where", "writes",
        "batch_size", "pause_when", "commit", "on_error", "each", "verify"}) {
    INFO("field " << field);
    CHECK(std::regex_search(meta, std::regex("---@field " + std::string(field) + "\\??[ ]")));
  }
  CHECK(mentions(meta, "---@class host.Recipe"));
}

TEST_CASE("the stdlib annotations name every function each module exports", "[unit][editor]") {
  for (const auto& entry : std::filesystem::directory_iterator(host::stdlib_folder())) {
    if (entry.path().extension() != ".lua") continue;
    std::string name = entry.path().stem().string();
    INFO("module " << name);
    std::string meta = source_file("editor/library/" + name + ".d.lua");
    CHECK(meta.rfind("---@meta " + name + "\n", 0) == 0);
    for (const auto& key : module_exports(name)) {
      INFO("function " << name << "." << key);
      CHECK(annotated(meta, name + "." + key));
    }
  }
}

TEST_CASE("the luacheck standard names every global the host registers", "[unit][editor]") {
  const std::string std_file = source_file("editor/luacheck_std.lua");
  for (const auto& name : host::recipe_global_names()) {
    INFO("global " << name);
    auto dot = name.find('.');
    if (dot == std::string::npos) {
      CHECK((mentions(std_file, "\"" + name + "\"") || mentions(std_file, " " + name + " = {")));
    } else {
      CHECK(mentions(std_file, name.substr(0, dot) + " = { fields = {"));
      CHECK(mentions(std_file, "\"" + name.substr(dot + 1) + "\""));
    }
  }
}
