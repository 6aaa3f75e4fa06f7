// bindings/sandbox: a fresh locked-down state, a memory cap whose breach is
// flagged, and a deadline that pcall cannot swallow.
#include "bindings/sandbox.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <lua.hpp>
#include <set>
#include <thread>

#include "bindings/sandbox_policy.hpp"
#include "host/errors.hpp"

using namespace host;

namespace {

// Runs `code` in the sandbox; the pcall status, results left on the stack.
int run(Sandbox& sandbox, const std::string& code, int results = LUA_MULTRET) {
  sandbox.load_text(code, "=test");
  return lua_pcall(sandbox.state(), 0, results, 0);
}

std::string top_string(lua_State* L) {
  const char* text = lua_tostring(L, -1);
  return text ? text : "";
}

}  // namespace

TEST_CASE("a fresh sandbox sees exactly the allow-listed globals", "[unit][sandbox]") {
  Sandbox sandbox;
  lua_State* L = sandbox.state();
  // The globals proxy reads through to the protected table: list that table's keys.
  sandbox.push_globals();
  REQUIRE(lua_getmetatable(L, -1));
  lua_getfield(L, -1, "__index");
  REQUIRE(lua_istable(L, -1));
  std::set<std::string> seen;
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    lua_pop(L, 1);
    seen.insert(lua_tostring(L, -1));
  }
  lua_settop(L, 0);
  std::set<std::string> expected = {"_G", "rawset"};
  for (const auto& name : sandbox_policy::allowed_base_functions()) expected.insert(name);
  for (const auto& [library, members] : sandbox_policy::allowed_libraries())
    expected.insert(library);
  CHECK(seen == expected);

  // And what a chunk sees agrees: nothing dangerous.
  REQUIRE(run(sandbox,
              "local names = {'io', 'os', 'debug', 'package', 'ffi', 'jit', 'load', "
              "'loadstring', 'loadfile', 'dofile', 'getfenv', 'setfenv', 'newproxy', "
              "'collectgarbage', 'print', 'module', 'require', 'gcinfo'} "
              "local present = {} "
              "for _, n in ipairs(names) do if _G[n] ~= nil then present[#present + 1] = n end end "
              "if string.dump ~= nil then present[#present + 1] = 'string.dump' end "
              "return table.concat(present, ',')",
              1) == 0);
  CHECK(top_string(L) == "");
}

TEST_CASE("library tables are filtered and read-only; string methods work", "[unit][sandbox]") {
  Sandbox sandbox;
  lua_State* L = sandbox.state();
  REQUIRE(run(sandbox, "return ('ab'):rep(3), string.upper('x'), math.floor(2.5)", 3) == 0);
  CHECK(std::string(lua_tostring(L, -3)) == "ababab");
  CHECK(std::string(lua_tostring(L, -2)) == "X");
  CHECK(lua_tonumber(L, -1) == 2);
  lua_settop(L, 0);
  CHECK(run(sandbox, "string.rep = nil") != 0);
  lua_settop(L, 0);
  CHECK(run(sandbox, "math.pi = 3") != 0);
  lua_settop(L, 0);
  REQUIRE(run(sandbox, "return getmetatable('')", 1) == 0);
  CHECK_FALSE(lua_toboolean(L, -1));
  lua_settop(L, 0);
  REQUIRE(run(sandbox, "return ('x').dump", 1) == 0);
  CHECK(lua_isnil(L, -1));
}

TEST_CASE("two sandboxes share nothing", "[unit][sandbox]") {
  Sandbox first;
  REQUIRE(run(first, "leak = 42") == 0);
  Sandbox second;
  REQUIRE(run(second, "return leak", 1) == 0);
  CHECK(lua_isnil(second.state(), -1));
}

TEST_CASE("protected globals cannot be replaced", "[unit][sandbox]") {
  Sandbox sandbox;
  lua_State* L = sandbox.state();
  lua_pushnumber(L, 7);
  sandbox.set_protected_global("answer");
  REQUIRE(run(sandbox, "return answer", 1) == 0);
  CHECK(lua_tonumber(L, -1) == 7);
  lua_settop(L, 0);
  CHECK(run(sandbox, "answer = 8") != 0);
  CHECK(top_string(L).find("protected") != std::string::npos);
  lua_settop(L, 0);
  CHECK(run(sandbox, "rawset(_G, 'answer', 9)") != 0);
  lua_settop(L, 0);
  REQUIRE(run(sandbox, "mine = 1 return mine", 1) == 0);  // ordinary globals are fine
  CHECK(lua_tonumber(L, -1) == 1);
}

TEST_CASE("load_text accepts source only and names the chunk in syntax errors", "[unit][sandbox]") {
  Sandbox sandbox;
  try {
    sandbox.load_text("return {\n  name = \n", "@recipes/broken.lua");
    FAIL("a syntax error must throw");
  } catch (const RecipeError& e) {
    CHECK(std::string(e.what()).find("recipes/broken.lua:") != std::string::npos);
  }
  CHECK(lua_gettop(sandbox.state()) == 0);
  std::string bytecode = "\x1bLJ\x02\x00";
  CHECK_THROWS_AS(sandbox.load_text(bytecode, "@evil.luac"), RecipeError);
}

TEST_CASE("the memory cap: pcall cannot swallow the breach, which is flagged", "[unit][sandbox]") {
  SandboxLimits limits;
  limits.memory_bytes = 16u * 1024 * 1024;
  Sandbox sandbox(limits);
  lua_State* L = sandbox.state();
  CHECK_FALSE(sandbox.limit_breached());
  SECTION("pcall passes the error on instead of returning false") {
    REQUIRE(run(sandbox,
                "local ok, err = pcall(function() "
                "  local t = {} for i = 1, 1e8 do t[i] = string.rep('x', 64) .. i end "
                "end) "
                "return 'swallowed'",
                1) != 0);
    CHECK(top_string(L).find("memory") != std::string::npos);
    CHECK(sandbox.limit_breached());
    CHECK(sandbox.breach_message().find("memory limit") != std::string::npos);
    CHECK(sandbox.memory_in_use() <= limits.memory_bytes);
  }
  SECTION("gradual growth: an ordinary error from the hook, before the hard cap") {
    int status = run(sandbox, "local t = {} for i = 1, 1e8 do t[i] = {i, i, i} end");
    CHECK(status == LUA_ERRRUN);
    CHECK(top_string(L).find("memory limit of 16 MiB exceeded") != std::string::npos);
    CHECK(sandbox.limit_breached());
    CHECK(sandbox.memory_in_use() <= limits.memory_bytes);
  }
  SECTION("one huge allocation: the hard cap, LUA_ERRMEM") {
    int status = run(sandbox, "local s = string.rep('x', 64 * 1024 * 1024)");
    CHECK(status == LUA_ERRMEM);
    CHECK(sandbox.limit_breached());
  }
}

TEST_CASE("the deadline stops endless loops, even under pcall", "[unit][sandbox]") {
  SandboxLimits limits;
  limits.time_per_call = std::chrono::milliseconds(200);
  // Each case runs in a child process, so that a deadline that fails to fire is
  // reported as a failure instead of hanging the suite.
  auto timed = [&](const std::string& code) {
    INFO(code);
    pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      int flags = 0;
      try {
        Sandbox sandbox(limits);
        sandbox.arm_deadline();
        auto start = std::chrono::steady_clock::now();
        int status = run(sandbox, code);
        auto elapsed = std::chrono::steady_clock::now() - start;
        sandbox.disarm_deadline();
        if (status == 0) flags |= 1;
        if (!sandbox.limit_breached()) flags |= 2;
        if (sandbox.breach_message().find("time limit") == std::string::npos) flags |= 4;
        if (elapsed >= std::chrono::seconds(8)) flags |= 8;
      } catch (...) {
        flags |= 16;
      }
      _exit(flags);
    }
    int wait_status = 0;
    bool finished = false;
    for (int waited_ms = 0; waited_ms < 10000; waited_ms += 20) {
      if (waitpid(child, &wait_status, WNOHANG) == child) {
        finished = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (!finished) {
      kill(child, SIGKILL);
      waitpid(child, &wait_status, 0);
    }
    // false: the loop was still running 10 s after a 200 ms deadline (the margin is
    // for a loaded machine; it costs nothing when the deadline works)
    CHECK(finished);
    if (!finished) return;
    REQUIRE(WIFEXITED(wait_status));
    int flags = WEXITSTATUS(wait_status);
    CHECK((flags & 1) == 0);   // the call failed
    CHECK((flags & 2) == 0);   // and the breach is flagged
    CHECK((flags & 4) == 0);   // with a message naming the time limit
    CHECK((flags & 8) == 0);   // promptly
    CHECK((flags & 16) == 0);  // without a C++ exception
  };
  SECTION("a plain loop") { timed("while true do end"); }
  SECTION("a loop that swallows the error with pcall") {
    timed("while true do pcall(function() while true do end end) end");
  }
  SECTION("a loop that swallows the error with xpcall") {
    timed("while true do xpcall(function() while true do end end, function(e) return e end) end");
  }
  SECTION("a loop in a coroutine") {
    timed("local f = coroutine.wrap(function() while true do end end) f()");
  }
  SECTION("a loop calling library functions") {
    timed("for i = 1, math.huge do local s = ('x'):rep(10) end");
  }
}

TEST_CASE("without a breach the sandbox runs normally and is not flagged", "[unit][sandbox]") {
  SandboxLimits limits;
  limits.time_per_call = std::chrono::milliseconds(2000);
  Sandbox sandbox(limits);
  sandbox.arm_deadline();
  REQUIRE(run(sandbox, "local s = 0 for i = 1, 100000 do s = s + i end return s", 1) == 0);
  sandbox.disarm_deadline();
  CHECK(lua_tonumber(sandbox.state(), -1) == 5000050000.0);
  CHECK_FALSE(sandbox.limit_breached());
  CHECK(sandbox.breach_message().empty());
}
