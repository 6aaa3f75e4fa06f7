// bindings/lua_value: values cross between PostgreSQL and Lua without being
// rounded or truncated (RECIPE_API.md section 1).
#include "bindings/lua_value.hpp"

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <lua.hpp>
#include <nlohmann/json.hpp>

using namespace host;

namespace {

constexpr unsigned k_bool = 16, k_int8 = 20, k_int2 = 21, k_int4 = 23, k_text = 25, k_float4 = 700,
                   k_float8 = 701, k_numeric = 1700, k_uuid = 2950, k_date = 1082,
                   k_timestamptz = 1184, k_jsonb = 3802;

struct LuaState {
  lua_State* L = luaL_newstate();
  ~LuaState() { lua_close(L); }
  operator lua_State*() const { return L; }
};

void push_text(lua_State* L, const char* text, unsigned oid) {
  push_pg_value(L, text, text ? std::strlen(text) : 0, oid);
}

std::string param_of(lua_State* L, int index) {
  std::string error;
  auto param = lua_to_param(L, index, error);
  REQUIRE(param);
  REQUIRE(*param);
  return **param;
}

// True when `text` reads back as exactly `value` (sign of zero included).
bool reads_back(const std::string& text, double value) {
  double parsed = std::strtod(text.c_str(), nullptr);
  if (std::isnan(value)) return std::isnan(parsed);
  return parsed == value && std::signbit(parsed) == std::signbit(value);
}

}  // namespace

TEST_CASE("format_number writes the shortest exact decimal", "[unit][lua_value]") {
  CHECK(format_number(0.1) == "0.1");
  CHECK(format_number(42) == "42");
  CHECK(format_number(-7) == "-7");
  CHECK(format_number(1.5) == "1.5");
  CHECK(format_number(1152921504606846976.0) == "1152921504606846976");  // 2^60, exactly
  CHECK(format_number(-0.0) == "0");
  CHECK(format_number(9007199254740992.0) == "9007199254740992");  // 2^53
  CHECK(format_number(-9007199254740992.0) == "-9007199254740992");
  CHECK(format_number(std::nan("")) == "NaN");
  CHECK(format_number(std::numeric_limits<double>::infinity()) == "Infinity");
  CHECK(format_number(-std::numeric_limits<double>::infinity()) == "-Infinity");
  // -0 is zero: "0" or "-0" both read back as zero in every numeric column type.
  std::string zero = format_number(-0.0);
  CHECK((zero == "0" || zero == "-0"));
}

TEST_CASE("format_number never rounds", "[unit][lua_value]") {
  for (double value : {0.1, 0.2 + 0.1, 1.0 / 3.0, 1e20, 1e21, 1e-7, 123456789.123456789,
                       9007199254740992.0 * 2, 18446744073709551616.0, 1e300, 5e-324,
                       std::numeric_limits<double>::max(), -2.5e-10, 3.141592653589793}) {
    std::string text = format_number(value);
    INFO(text);
    CHECK(std::strtod(text.c_str(), nullptr) == value);
  }
  // 1e20 is an integer too big for the %lld path: its text must still be exact.
  CHECK(reads_back(format_number(1e20), 1e20));
  CHECK(format_number(0.30000000000000004) == "0.30000000000000004");
}

TEST_CASE("push_pg_value maps PostgreSQL types to Lua as the contract says", "[unit][lua_value]") {
  LuaState L;
  SECTION("NULL is nil") {
    push_pg_value(L, nullptr, 0, k_text);
    CHECK(lua_isnil(L, -1));
    push_pg_value(L, nullptr, 0, k_int4);
    CHECK(lua_isnil(L, -1));
  }
  SECTION("bool is boolean") {
    push_text(L, "t", k_bool);
    REQUIRE(lua_type(L, -1) == LUA_TBOOLEAN);
    CHECK(lua_toboolean(L, -1));
    push_text(L, "f", k_bool);
    REQUIRE(lua_type(L, -1) == LUA_TBOOLEAN);
    CHECK_FALSE(lua_toboolean(L, -1));
  }
  SECTION("int2, int4, float4 and float8 are numbers") {
    push_text(L, "-32768", k_int2);
    REQUIRE(lua_type(L, -1) == LUA_TNUMBER);
    CHECK(lua_tonumber(L, -1) == -32768);
    push_text(L, "2147483647", k_int4);
    CHECK(lua_tonumber(L, -1) == 2147483647.0);
    push_text(L, "0.1", k_float8);
    CHECK(lua_tonumber(L, -1) == 0.1);
    push_text(L, "1.5", k_float4);
    CHECK(lua_tonumber(L, -1) == 1.5);
    push_text(L, "NaN", k_float8);
    CHECK(std::isnan(lua_tonumber(L, -1)));
    push_text(L, "-Infinity", k_float8);
    CHECK(lua_tonumber(L, -1) == -std::numeric_limits<double>::infinity());
  }
  SECTION("int8 is a number up to 2^53 and a string above") {
    push_text(L, "9007199254740992", k_int8);
    REQUIRE(lua_type(L, -1) == LUA_TNUMBER);
    CHECK(lua_tonumber(L, -1) == 9007199254740992.0);
    push_text(L, "-9007199254740992", k_int8);
    REQUIRE(lua_type(L, -1) == LUA_TNUMBER);
    push_text(L, "42", k_int8);
    REQUIRE(lua_type(L, -1) == LUA_TNUMBER);
    CHECK(lua_tonumber(L, -1) == 42);
    for (const char* big : {"9007199254740993", "-9007199254740993", "9223372036854775807",
                            "-9223372036854775807", "-9223372036854775808"}) {
      INFO(big);
      push_text(L, big, k_int8);
      REQUIRE(lua_type(L, -1) == LUA_TSTRING);
      CHECK(std::string(lua_tostring(L, -1)) == big);
    }
  }
  SECTION("numeric, text, uuid, dates, timestamps and jsonb stay exact text") {
    struct Case {
      const char* text;
      unsigned oid;
    };
    for (const Case& c :
         {Case{"12345678901234567890.123", k_numeric}, Case{"0.10", k_numeric},
          Case{"Zoë – café", k_text}, Case{"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", k_uuid},
          Case{"2024-02-29", k_date}, Case{"2024-01-02 03:04:05.123456+00", k_timestamptz},
          Case{"{\"a\": [1, 2.50]}", k_jsonb}}) {
      INFO(c.text);
      push_text(L, c.text, c.oid);
      REQUIRE(lua_type(L, -1) == LUA_TSTRING);
      CHECK(std::string(lua_tostring(L, -1)) == c.text);
    }
  }
  SECTION("text with an embedded NUL keeps its length") {
    const char text[] = {'a', '\0', 'b'};
    push_pg_value(L, text, 3, k_text);
    std::size_t length = 0;
    const char* pushed = lua_tolstring(L, -1, &length);
    CHECK(length == 3);
    CHECK(std::string(pushed, length) == std::string(text, 3));
  }
}

TEST_CASE("lua_to_param writes values exactly", "[unit][lua_value]") {
  LuaState L;
  std::string error;
  lua_pushnil(L);
  auto nil = lua_to_param(L, -1, error);
  REQUIRE(nil);
  CHECK_FALSE(*nil);

  lua_pushboolean(L, 1);
  CHECK(param_of(L, -1) == "true");
  lua_pushboolean(L, 0);
  CHECK(param_of(L, -1) == "false");
  lua_pushnumber(L, 0.1);
  CHECK(param_of(L, -1) == "0.1");
  lua_pushnumber(L, 300);
  CHECK(param_of(L, -1) == "300");
  lua_pushstring(L, "Zoë – café");
  CHECK(param_of(L, -1) == "Zoë – café");
  lua_pushstring(L, "9007199254740993");
  CHECK(param_of(L, -1) == "9007199254740993");

  luaL_dostring(L, "return { a = 1, b = { 'x', 'y' }, c = true }");
  auto json = nlohmann::json::parse(param_of(L, -1));
  CHECK(json == nlohmann::json{{"a", 1}, {"b", {"x", "y"}}, {"c", true}});

  lua_pushcfunction(L, [](lua_State*) { return 0; });
  error.clear();
  CHECK_FALSE(lua_to_param(L, -1, error));
  CHECK_FALSE(error.empty());
}

TEST_CASE("lua_to_json and push_json round-trip tables", "[unit][lua_value]") {
  LuaState L;
  nlohmann::json value = {
      {"name", "Zoë"}, {"list", {1, 2, 3}}, {"flag", false}, {"nested", {{"x", 1.5}}}};
  push_json(L, value);
  CHECK(lua_to_json(L, -1) == value);
  push_json(L, nullptr);
  CHECK(lua_isnil(L, -1));
  CHECK(lua_to_json(L, -1).is_null());
  luaL_dostring(L, "return {}");
  CHECK(lua_to_json(L, -1) == nlohmann::json::object());
  // Integers beyond 2^53 are not integers any more in Lua; they stay floating point.
  lua_pushnumber(L, 9007199254740992.0);
  CHECK(lua_to_json(L, -1) == 9007199254740992LL);
}

TEST_CASE("lua_to_param refuses a string holding a NUL byte instead of cutting it",
          "[unit][lua_value]") {
  LuaState L;
  lua_pushlstring(L, "a\0b", 3);
  std::string error;
  CHECK_FALSE(lua_to_param(L, -1, error));
  CHECK(error.find("NUL byte") != std::string::npos);
  luaL_dostring(L, "return { ['k\\0ey'] = 1 }");
  CHECK(lua_to_json(L, -1) == nlohmann::json{{std::string("k\0ey", 4), 1}});
}

TEST_CASE("push_json refuses a value nested too deeply with a C++ error, never a Lua panic",
          "[unit][lua_value]") {
  LuaState L;
  lua_pushliteral(L, "below");
  nlohmann::json deep = nlohmann::json::array();
  for (int i = 0; i < 30000; ++i) deep = nlohmann::json::array({std::move(deep)});
  CHECK_THROWS_WITH(push_json(L, deep), Catch::Contains("nested deeper than 200"));
  CHECK(lua_gettop(L) == 1);
  CHECK(std::string(lua_tostring(L, 1)) == "below");

  nlohmann::json at_limit = {{"leaf", 1}};
  for (int i = 1; i < k_max_json_depth; ++i) at_limit = nlohmann::json::array({at_limit});
  push_json(L, at_limit);
  CHECK(lua_gettop(L) == 2);
  CHECK_THROWS(push_json(L, nlohmann::json::array({at_limit})));
  CHECK(lua_gettop(L) == 2);
}

TEST_CASE("push_json keeps object keys holding a NUL byte whole", "[unit][lua_value]") {
  LuaState L;
  push_json(L, nlohmann::json{{std::string("a\0b", 3), 1}, {"a", 2}});
  lua_pushlstring(L, "a\0b", 3);
  lua_rawget(L, -2);
  CHECK(lua_tonumber(L, -1) == 1);
  lua_pop(L, 1);
  lua_getfield(L, -1, "a");
  CHECK(lua_tonumber(L, -1) == 2);
}

TEST_CASE("describe_lua_value names values for messages", "[unit][lua_value]") {
  LuaState L;
  lua_pushnil(L);
  CHECK(describe_lua_value(L, -1) == "nil");
  lua_pushnumber(L, 42);
  CHECK(describe_lua_value(L, -1) == "42");
  lua_pushstring(L, "abc");
  CHECK(describe_lua_value(L, -1) == "'abc'");
  lua_newtable(L);
  CHECK(describe_lua_value(L, -1) == "a table");
}
