// Fuzzes value conversion (bindings/lua_value): PostgreSQL text values of each
// type into Lua and back out as parameters, and JSON values into Lua and back.
// The first byte picks the case; the rest is the value.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <lua.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "bindings/lua_value.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace {

constexpr unsigned k_int8_oid = 20, k_float8_oid = 701;
// The first byte names the type (readable corpus files): b bool, 8 int8, 2 int2,
// 4 int4, t text, r float4, d float8, n numeric, D date, u uuid, J jsonb,
// T timestamptz; j is a JSON value for push_json; any other byte picks by value.
constexpr std::pair<char, unsigned> k_types[] = {
    {'b', 16},  {'8', 20},   {'2', 21},   {'4', 23},   {'t', 25},   {'r', 700},
    {'d', 701}, {'n', 1700}, {'D', 1082}, {'u', 2950}, {'J', 3802}, {'T', 1184}};
constexpr std::size_t k_type_count = sizeof k_types / sizeof k_types[0];

unsigned type_of(char selector) {
  for (const auto& [name, oid] : k_types)
    if (name == selector) return oid;
  return k_types[static_cast<unsigned char>(selector) % k_type_count].second;
}

// int8's output form: what the server sends (no sign '+', no leading zeros, no spaces).
bool canonical_integer(const std::string& text) {
  std::size_t i = text[0] == '-' ? 1 : 0;
  if (i >= text.size() || (text[i] == '0' && text.size() > i + 1)) return false;
  for (; i < text.size(); ++i)
    if (text[i] < '0' || text[i] > '9') return false;
  return text != "-0" && text.size() <= 20;
}

// Everything a primitive does with a Lua value it is handed: bind it, describe it.
void write_back(lua_State* L) {
  std::string error;
  auto param = host::lua_to_param(L, -1, error);
  FUZZ_CHECK(param.has_value() != !error.empty(), "lua_to_param: neither value nor error");
  if (param && *param)
    FUZZ_CHECK(std::memchr((*param)->data(), '\0', (*param)->size()) == nullptr,
               "a parameter holds a NUL byte");
  if (lua_type(L, -1) == LUA_TNUMBER) {
    double number = lua_tonumber(L, -1);
    // Numbers are written exactly: the text reads back as the same double.
    FUZZ_CHECK(param && *param, "a number was not written");
    double back = std::strtod((*param)->c_str(), nullptr);
    FUZZ_CHECK(std::isnan(number) ? std::isnan(back) : back == number,
               "a number was not written exactly");
  }
  host::describe_lua_value(L, -1);
}

void pg_value(lua_State* L, unsigned oid, std::string text) {
  // Text from libpq ends at its terminating NUL and holds none before it.
  text = text.substr(0, text.find('\0'));
  host::push_pg_value(L, text.c_str(), text.size(), oid);
  if (oid == k_int8_oid && canonical_integer(text) && lua_type(L, -1) == LUA_TNUMBER) {
    // An int8 arrives exactly: as a number within 2^53, as its digits beyond.
    std::string error;
    auto param = host::lua_to_param(L, -1, error);
    FUZZ_CHECK(param && *param && **param == text, "an int8 did not round-trip");
  }
  if (oid == k_float8_oid && lua_type(L, -1) == LUA_TNUMBER) {
    double number = lua_tonumber(L, -1);
    FUZZ_CHECK(
        std::isnan(number) || std::strtod(host::format_number(number).c_str(), nullptr) == number,
        "format_number does not read back");
  }
  write_back(L);
  if (lua_type(L, -1) != LUA_TLIGHTUSERDATA) host::lua_to_json(L, -1);
}

void json_value(lua_State* L, const std::string& text) {
  auto value = nlohmann::json::parse(text, nullptr, false);
  if (value.is_discarded()) return;
  int top = lua_gettop(L);
  try {
    host::push_json(L, value);
  } catch (const std::runtime_error&) {
    // Too deep: refused with the stack as it was.
    FUZZ_CHECK(lua_gettop(L) == top, "push_json left values after refusing");
    return;
  }
  FUZZ_CHECK(lua_gettop(L) == top + 1, "push_json pushed not exactly one value");
  write_back(L);
  try {
    host::lua_to_json(L, -1).dump();
  } catch (const std::runtime_error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static lua_State* L = luaL_newstate();
  if (size == 0) return 0;
  std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] == 'j')
    json_value(L, text);
  else
    pg_value(L, type_of(static_cast<char>(data[0])), text);
  lua_settop(L, 0);
  return 0;
}
