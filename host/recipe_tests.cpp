#include "host/recipe_tests.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <lua.hpp>
#include <memory>
#include <nlohmann/json.hpp>

#include "bindings/lua_value.hpp"
#include "bindings/module_loader.hpp"
#include "bindings/primitives.hpp"
#include "bindings/recipe.hpp"
#include "bindings/run_context.hpp"
#include "bindings/sandbox.hpp"
#include "host/database.hpp"
#include "host/errors.hpp"
#include "host/process.hpp"
#include "host/temp_cluster.hpp"

namespace host {

namespace {

namespace fs = std::filesystem;

struct TestFileContext {
  TempCluster* cluster = nullptr;
  std::string folder;
  std::string conninfo;
  std::string executable;
  std::string scratch;  // folder for report files
  bool verbose = false;
  std::unique_ptr<Database> database;
  RunContext rows_context;  // only for converting result rows
  int report_counter = 0;
};

TestFileContext& context_of(lua_State* L) {
  return *static_cast<TestFileContext*>(lua_touserdata(L, lua_upvalueindex(1)));
}

std::string resolve(const TestFileContext& context, const std::string& path) {
  fs::path p(path);
  return p.is_absolute() ? path : (fs::path(context.folder) / p).lexically_normal().string();
}

// Recipe files, inputs (NAME=PATH) and folders are named relative to the test
// file: an argument that names an existing path there is rewritten to it.
std::string resolve_argument(const TestFileContext& context, const std::string& arg) {
  auto exists_here = [&](const std::string& path) {
    std::error_code ignored;
    return !path.empty() && !fs::path(path).is_absolute() &&
           fs::exists(fs::path(context.folder) / path, ignored);
  };
  if (arg.empty() || arg[0] == '-') return arg;
  if (exists_here(arg)) return resolve(context, arg);
  auto equals = arg.find('=');
  if (equals != std::string::npos && exists_here(arg.substr(equals + 1)))
    return arg.substr(0, equals + 1) + resolve(context, arg.substr(equals + 1));
  return arg;
}

template <typename Body>
int guarded(lua_State* L, Body body) {
  std::string message;
  try {
    Sandbox::HostCall host_call(L);
    return body(context_of(L));
  } catch (const std::exception& e) {
    message = e.what();
  }
  raise_lua_error(L, message);
}

Database& database_of(TestFileContext& context) {
  if (!context.database) context.database = std::make_unique<Database>(context.conninfo);
  return *context.database;
}

int test_declare(lua_State* L) {
  luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_getfield(L, LUA_REGISTRYINDEX, "host.tests");
  lua_createtable(L, 2, 0);
  lua_pushvalue(L, 1);
  lua_rawseti(L, -2, 1);
  lua_pushvalue(L, 2);
  lua_rawseti(L, -2, 2);
  lua_rawseti(L, -2, static_cast<int>(lua_objlen(L, -2)) + 1);
  return 0;
}

int test_fixture(lua_State* L) {
  return guarded(L, [&](TestFileContext& context) {
    for (int i = 1; i <= lua_gettop(L); ++i) {
      std::string path = resolve(context, luaL_checkstring(L, i));
      std::string sql = read_file(path);
      try {
        database_of(context).exec(sql);
      } catch (const DatabaseError& e) {
        throw std::runtime_error("fixture " + path + ": " + e.what());
      }
    }
    return 0;
  });
}

int test_sql(lua_State* L) {
  return guarded(L, [&](TestFileContext& context) {
    std::string sql = luaL_checkstring(L, 1);
    Params params;
    for (int i = 2; i <= lua_gettop(L); ++i) {
      std::string error;
      auto value = lua_to_param(L, i, error);
      if (!value) throw std::runtime_error(error);
      params.push_back(*value);
    }
    auto result =
        params.empty() ? database_of(context).exec(sql) : database_of(context).exec(sql, params);
    lua_createtable(L, static_cast<int>(result.size()), 0);
    for (int r = 0; r < static_cast<int>(result.size()); ++r) {
      push_result_row(L, context.rows_context, result, r, 0, nullptr, {});
      lua_rawseti(L, -2, r + 1);
    }
    return 1;
  });
}

void push_process_result(lua_State* L, const ProcessResult& result) {
  lua_createtable(L, 0, 4);
  lua_pushnumber(L, result.exit_code);
  lua_setfield(L, -2, "exit");
  lua_pushlstring(L, result.output.data(), result.output.size());
  lua_setfield(L, -2, "output");
}

std::string slurp(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return "";
  return std::string(std::istreambuf_iterator<char>(file), {});
}

void close_database(TestFileContext& context) { context.database.reset(); }

int test_run(lua_State* L) {
  return guarded(L, [&](TestFileContext& context) {
    std::string recipe = resolve(context, luaL_checkstring(L, 1));
    std::string base = context.scratch + "/report" + std::to_string(++context.report_counter);
    std::vector<std::string> argv = {context.executable, "run",      recipe,         "--db",
                                     context.conninfo,   "--report", base + ".json", "--report",
                                     base + ".md",       "--quiet"};
    if (lua_istable(L, 2)) {
      auto flag = [&](const char* field, const char* option) {
        lua_getfield(L, 2, field);
        if (lua_toboolean(L, -1)) argv.push_back(option);
        lua_pop(L, 1);
      };
      auto value = [&](const char* field, const char* option) {
        lua_getfield(L, 2, field);
        if (lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER) {
          argv.push_back(option);
          argv.push_back(lua_tostring(L, -1));
        }
        lua_pop(L, 1);
      };
      auto pairs = [&](const char* field, const char* option, bool paths) {
        lua_getfield(L, 2, field);
        if (lua_istable(L, -1)) {
          lua_pushnil(L);
          while (lua_next(L, -2)) {
            // lua_tostring would turn a number key into a string and break lua_next.
            if (lua_type(L, -2) != LUA_TSTRING || !lua_isstring(L, -1))
              throw std::runtime_error(std::string("run: ") + field +
                                       " must map names to strings, as { name = \"value\" }");
            std::string k = lua_tostring(L, -2), v = lua_tostring(L, -1);
            argv.push_back(option);
            argv.push_back(k + "=" + (paths ? resolve(context, v) : v));
            lua_pop(L, 1);
          }
        }
        lua_pop(L, 1);
      };
      flag("dry_run", "--dry-run");
      value("min_confidence", "--min-confidence");
      value("commit", "--commit");
      value("batch_size", "--batch-size");
      value("limit", "--limit");
      pairs("inputs", "--input", true);
      pairs("vars", "--var", false);
      lua_getfield(L, 2, "libs");
      if (lua_istable(L, -1))
        for (int i = 1; i <= static_cast<int>(lua_objlen(L, -1)); ++i) {
          lua_rawgeti(L, -1, i);
          argv.push_back("--lib");
          argv.push_back(resolve(context, lua_tostring(L, -1)));
          lua_pop(L, 1);
        }
      lua_pop(L, 1);
    }
    close_database(context);  // a recipe may need locks the test connection holds
    auto result = run_process(argv);
    push_process_result(L, result);
    std::string json = slurp(base + ".json");
    if (!json.empty()) {
      try {
        push_json(L, nlohmann::json::parse(json));
        lua_setfield(L, -2, "report");
      } catch (const nlohmann::json::exception&) {
      }
    }
    std::string markdown = slurp(base + ".md");
    lua_pushlstring(L, markdown.data(), markdown.size());
    lua_setfield(L, -2, "markdown");
    return 1;
  });
}

int test_revert(lua_State* L) {
  return guarded(L, [&](TestFileContext& context) {
    std::vector<std::string> argv = {context.executable, "revert", luaL_checkstring(L, 1), "--db",
                                     context.conninfo};
    if (lua_istable(L, 2)) {
      lua_getfield(L, 2, "dry_run");
      if (lua_toboolean(L, -1)) argv.push_back("--dry-run");
      lua_pop(L, 1);
    }
    close_database(context);
    push_process_result(L, run_process(argv));
    return 1;
  });
}

int test_host(lua_State* L) {
  return guarded(L, [&](TestFileContext& context) {
    luaL_checktype(L, 1, LUA_TTABLE);
    std::vector<std::string> argv = {context.executable};
    for (int i = 1; i <= static_cast<int>(lua_objlen(L, 1)); ++i) {
      lua_rawgeti(L, 1, i);
      std::string arg = lua_tostring(L, -1) ? lua_tostring(L, -1) : "";
      lua_pop(L, 1);
      // The subcommand and --var values are never paths.
      bool after_var = argv.size() > 1 && argv.back() == "--var";
      argv.push_back(i == 1 || after_var ? arg : resolve_argument(context, arg));
    }
    argv.push_back("--db");
    argv.push_back(context.conninfo);
    close_database(context);
    push_process_result(L, run_process(argv));
    return 1;
  });
}

// Deep equality, with a description of the first difference.
bool deep_equal(lua_State* L, int a, int b, std::string& where) {
  if (lua_type(L, a) != lua_type(L, b)) return false;
  if (lua_type(L, a) != LUA_TTABLE) return lua_equal(L, a, b);
  for (int pass = 0; pass < 2; ++pass) {
    int from = pass == 0 ? a : b, to = pass == 0 ? b : a;
    lua_pushnil(L);
    while (lua_next(L, from)) {
      lua_pushvalue(L, -2);
      lua_gettable(L, to);
      bool same =
          pass == 1 ? !lua_isnil(L, -1) : deep_equal(L, lua_gettop(L) - 1, lua_gettop(L), where);
      if (!same) {
        std::string key = lua_type(L, -3) == LUA_TSTRING || lua_type(L, -3) == LUA_TNUMBER
                              ? lua_tostring(L, -3)
                              : "?";
        where = "[" + key + "]" + where;
        lua_pop(L, 3);
        return false;
      }
      lua_pop(L, 2);
    }
  }
  return true;
}

std::string render(lua_State* L, int index) {
  if (lua_istable(L, index)) {
    try {
      return lua_to_json(L, index).dump();
    } catch (const std::exception&) {
      return "a table";
    }
  }
  return describe_lua_value(L, index);
}

int test_eq(lua_State* L) {
  lua_settop(L, 3);
  std::string where;
  if (deep_equal(L, 1, 2, where)) return 0;
  std::string message = "expected " + render(L, 2) + ", got " + render(L, 1) +
                        (where.empty() ? "" : " (differs at " + where + ")");
  if (lua_type(L, 3) == LUA_TSTRING) message = std::string(lua_tostring(L, 3)) + ": " + message;
  luaL_where(L, 1);
  lua_pushstring(L, message.c_str());
  lua_concat(L, 2);
  return lua_error(L);
}

int test_expect(lua_State* L) {
  if (lua_toboolean(L, 1)) return 0;
  luaL_where(L, 1);
  lua_pushstring(L, lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "expectation failed");
  lua_concat(L, 2);
  return lua_error(L);
}

int test_show(lua_State* L) {
  if (context_of(L).verbose) std::cout << luaL_checkstring(L, 1) << std::endl;
  return 0;
}

std::vector<std::string> find_test_files(const std::vector<std::string>& paths) {
  std::vector<std::string> files;
  for (const auto& path : paths) {
    if (fs::is_regular_file(path)) {
      files.push_back(path);
    } else if (fs::is_directory(path)) {
      std::vector<std::string> found;
      for (const auto& entry : fs::recursive_directory_iterator(path)) {
        std::string name = entry.path().filename().string();
        if (entry.is_regular_file() && name.size() > 9 &&
            name.compare(name.size() - 9, 9, "_test.lua") == 0)
          found.push_back(entry.path().string());
      }
      std::sort(found.begin(), found.end());
      files.insert(files.end(), found.begin(), found.end());
    } else {
      throw UsageError("no such test file or folder: " + path);
    }
  }
  return files;
}

}  // namespace

int run_recipe_tests(const RecipeTestOptions& options) {
  auto files = find_test_files(options.paths);
  if (files.empty()) throw UsageError("no *_test.lua files found");
  TempCluster cluster;
  char scratch_pattern[] = "/tmp/host-test-XXXXXX";
  if (!mkdtemp(scratch_pattern)) throw std::runtime_error("cannot create a temporary folder");
  std::string scratch = scratch_pattern;
  int passed = 0, failed = 0, database_counter = 0;
  for (const auto& file : files) {
    TestFileContext context;
    context.cluster = &cluster;
    context.folder = fs::path(file).parent_path().string();
    if (context.folder.empty()) context.folder = ".";
    context.executable = current_executable();
    context.scratch = scratch;
    context.verbose = options.verbose;
    SandboxLimits limits;
    limits.time_per_call = std::chrono::milliseconds(600000);
    Sandbox sandbox(limits);
    sandbox.set_abandon_handler([&cluster](const std::string&) { cluster.remove(); });
    lua_State* L = sandbox.state();
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, "host.tests");
    const std::pair<const char*, lua_CFunction> globals[] = {
        {"test", test_declare}, {"fixture", test_fixture}, {"sql", test_sql},
        {"run", test_run},      {"revert", test_revert},   {"host", test_host},
        {"eq", test_eq},        {"expect", test_expect},   {"show", test_show}};
    for (const auto& [name, fn] : globals) {
      lua_pushlightuserdata(L, &context);
      lua_pushcclosure(L, fn, 1);
      sandbox.set_protected_global(name);
    }
    install_module_loader(sandbox, {context.folder, stdlib_folder()});
    try {
      sandbox.load_text(read_file(file), "@" + file);
    } catch (const RecipeError& e) {
      std::cout << "FAIL " << file << ": " << e.what() << std::endl;
      ++failed;
      continue;
    }
    if (lua_pcall(L, 0, 0, 0) != 0) {
      std::cout << "FAIL " << file << ": " << lua_tostring(L, -1) << std::endl;
      lua_pop(L, 1);
      ++failed;
      continue;
    }
    lua_getfield(L, LUA_REGISTRYINDEX, "host.tests");
    int tests = lua_gettop(L);
    int count = static_cast<int>(lua_objlen(L, tests));
    for (int i = 1; i <= count; ++i) {
      lua_rawgeti(L, tests, i);
      lua_rawgeti(L, -1, 1);
      std::string name = lua_tostring(L, -1);
      lua_pop(L, 1);
      lua_rawgeti(L, -1, 2);
      std::string database = "test_" + std::to_string(++database_counter);
      context.conninfo = cluster.create_database(database);
      sandbox.arm_deadline();
      int status = lua_pcall(L, 0, 0, 0);
      sandbox.disarm_deadline();
      close_database(context);
      if (status == 0) {
        ++passed;
        std::cout << "ok   " << file << ": " << name << std::endl;
      } else {
        ++failed;
        std::cout << "FAIL " << file << ": " << name << "\n     "
                  << (lua_tostring(L, -1) ? lua_tostring(L, -1) : "error") << std::endl;
        lua_pop(L, 1);
      }
      lua_pop(L, 1);
    }
    lua_settop(L, 0);
  }
  std::error_code ignored;
  fs::remove_all(scratch, ignored);
  std::cout << passed << " passed, " << failed << " failed" << std::endl;
  return failed;
}

}  // namespace host
