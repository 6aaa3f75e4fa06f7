#include "bindings/module_loader.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <lua.hpp>
#include <sstream>

#include "bindings/recipe.hpp"
#include "bindings/sandbox.hpp"
#include "host/errors.hpp"
#include "host/shipped_files.hpp"

namespace host {

namespace {

const char* const k_loaded_registry = "host.loaded";

struct Loader {
  Sandbox* sandbox;
  std::vector<std::string> folders;
  LoadedModules* loaded;
};

bool valid_module_name(const std::string& name) {
  if (name.empty() || name.front() == '.' || name.back() == '.') return false;
  char previous = 0;
  for (char c : name) {
    bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
    if (!ok || (c == '.' && previous == '.')) return false;
    previous = c;
  }
  return true;
}

int require_module(lua_State* L) {
  auto* loader = static_cast<Loader*>(lua_touserdata(L, lua_upvalueindex(1)));
  std::string name = luaL_checkstring(L, 1);
  lua_getfield(L, LUA_REGISTRYINDEX, k_loaded_registry);
  lua_getfield(L, -1, name.c_str());
  if (!lua_isnil(L, -1)) return 1;
  lua_pop(L, 1);
  if (!valid_module_name(name)) return luaL_error(L, "invalid module name '%s'", name.c_str());
  std::string relative = name;
  for (char& c : relative)
    if (c == '.') c = '/';
  relative += ".lua";
  std::string path, searched, error;
  for (const auto& folder : loader->folders) {
    std::filesystem::path candidate = std::filesystem::path(folder) / relative;
    searched += (searched.empty() ? "" : ", ") + candidate.string();
    if (std::filesystem::is_regular_file(candidate)) {
      path = candidate.lexically_normal().string();
      break;
    }
  }
  if (path.empty())
    return luaL_error(L, "module '%s' not found (searched %s)", name.c_str(), searched.c_str());
  std::ifstream file(path, std::ios::binary);
  std::stringstream text;
  text << file.rdbuf();
  if (loader->loaded) (*loader->loaded)[name] = {path, text_hash(text.str())};
  try {
    loader->sandbox->load_text(text.str(), "@" + path);
  } catch (const RecipeError& e) {
    error = e.what();
  }
  if (!error.empty()) return luaL_error(L, "%s", error.c_str());
  // A placeholder breaks require cycles instead of recursing forever.
  lua_pushboolean(L, 1);
  lua_setfield(L, -3, name.c_str());
  lua_pushstring(L, name.c_str());
  lua_call(L, 1, 1);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_pushboolean(L, 1);
  }
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, name.c_str());
  return 1;
}

}  // namespace

std::string stdlib_folder() {
  if (const char* env = std::getenv("HOST_STDLIB"); env && *env) return env;
  return shipped_folder("stdlib");
}

void install_module_loader(Sandbox& sandbox, std::vector<std::string> folders,
                           LoadedModules* loaded) {
  lua_State* L = sandbox.state();
  lua_newtable(L);
  lua_setfield(L, LUA_REGISTRYINDEX, k_loaded_registry);
  auto* loader = static_cast<Loader*>(lua_newuserdata(L, sizeof(Loader)));
  new (loader) Loader{&sandbox, std::move(folders), loaded};
  // The userdata lives in the registry for the state's lifetime; its destructor runs via __gc.
  lua_newtable(L);
  lua_pushcfunction(L, [](lua_State* S) -> int {
    static_cast<Loader*>(lua_touserdata(S, 1))->~Loader();
    return 0;
  });
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -1);
  luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushcclosure(L, require_module, 1);
  sandbox.set_protected_global("require");
}

}  // namespace host
