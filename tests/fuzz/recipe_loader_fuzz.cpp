// Fuzzes recipe loading (bindings/recipe): any text run as a recipe file in the
// sandbox, its returned table validated. The sandbox has what Run::load installs
// (primitives, verify helpers, require over stdlib/) but no database: the
// globals that would reach one are replaced by functions that raise an error.
#include <cstddef>
#include <cstdint>
#include <lua.hpp>
#include <string>

#include "bindings/module_loader.hpp"
#include "bindings/primitives.hpp"
#include "bindings/recipe.hpp"
#include "bindings/run_context.hpp"
#include "bindings/sandbox.hpp"
#include "bindings/verify_helpers.hpp"
#include "host/errors.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace {

constexpr const char* k_path = "fuzz/recipe.lua";

// Every global whose C function reaches the database, catalog or ledger.
constexpr const char* k_database_globals[] = {
    "patch_if_empty", "patch_if", "insert_if_absent", "fill_from", "query",
    "review",         "read",     "read_all",         "map_id",    "count",
    "expect_count",   "orphans",  "checksum",         "same_rows"};

int needs_database(lua_State* L) {
  return luaL_error(L, "%s needs a database (none in this fuzz target)",
                    lua_tostring(L, lua_upvalueindex(1)));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // Small limits: a fuzzed endless loop costs 50 ms, not 10 s.
  host::SandboxLimits limits;
  limits.memory_bytes = 32u * 1024 * 1024;
  limits.time_per_call = std::chrono::milliseconds(50);
  host::Sandbox sandbox(limits);
  host::RunContext context;
  context.vars = {{"since", "2024-01-01"}};
  host::install_primitives(sandbox, context);
  host::install_verify_helpers(sandbox, context);
  host::install_module_loader(sandbox, {host::stdlib_folder()});
  lua_State* L = sandbox.state();
  for (const char* name : k_database_globals) {
    lua_pushstring(L, name);
    lua_pushcclosure(L, needs_database, 1);
    sandbox.set_protected_global(name);
  }
  int top = lua_gettop(L);
  try {
    host::Recipe recipe = host::load_recipe_text(
        sandbox, k_path, std::string(reinterpret_cast<const char*>(data), size));
    FUZZ_CHECK(!recipe.name.empty(), "a recipe without a name was accepted");
    FUZZ_CHECK(recipe.table.has_value() != recipe.input.has_value(), "not exactly one row source");
    lua_rawgeti(L, LUA_REGISTRYINDEX, recipe.each_ref);
    FUZZ_CHECK(lua_isfunction(L, -1), "each is not a function");
    lua_pop(L, 1);
  } catch (const host::RecipeError& e) {
    // "Errors are RecipeError naming the file (and line)."
    FUZZ_CHECK(std::string(e.what()).rfind(k_path, 0) == 0, "an error does not name the recipe");
  }
  FUZZ_CHECK(lua_gettop(L) == top, "load_recipe left values on the stack");
  return 0;
}
