#include "bindings/lua_value.hpp"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <lua.hpp>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

namespace host {

namespace {

constexpr unsigned k_bool_oid = 16, k_int8_oid = 20, k_int2_oid = 21, k_int4_oid = 23,
                   k_float4_oid = 700, k_float8_oid = 701;
constexpr double k_max_exact_integer = 9007199254740992.0;  // 2^53

bool is_array(lua_State* L, int index, std::size_t& length) {
  length = lua_objlen(L, index);
  std::size_t count = 0;
  lua_pushnil(L);
  while (lua_next(L, index)) {
    lua_pop(L, 1);
    ++count;
    if (lua_type(L, -1) != LUA_TNUMBER) {
      lua_pop(L, 1);
      return false;
    }
  }
  return count == length;
}

}  // namespace

void push_pg_value(lua_State* L, const char* text, std::size_t length, unsigned type_oid) {
  if (!text) {
    lua_pushnil(L);
    return;
  }
  switch (type_oid) {
    case k_bool_oid:
      lua_pushboolean(L, text[0] == 't');
      return;
    case k_int2_oid:
    case k_int4_oid:
    case k_float4_oid:
    case k_float8_oid:
      lua_pushnumber(L, std::strtod(text, nullptr));
      return;
    case k_int8_oid: {
      long long value = std::strtoll(text, nullptr, 10);
      // Compared as a range: llabs(LLONG_MIN) is undefined behaviour.
      const auto limit = static_cast<long long>(k_max_exact_integer);
      if (value >= -limit && value <= limit)
        lua_pushnumber(L, static_cast<double>(value));
      else
        lua_pushlstring(L, text, length);
      return;
    }
    default:
      lua_pushlstring(L, text, length);
  }
}

std::string format_number(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "Infinity" : "-Infinity";
  if (value == std::floor(value) && std::fabs(value) < 9e18) {
    // Every value written goes through here; most are integers, which long long
    // holds exactly in this range (and -0 becomes 0).
    char buffer[24];
    auto end = std::to_chars(buffer, buffer + sizeof buffer, static_cast<long long>(value)).ptr;
    return std::string(buffer, end);
  }
  if (value == std::floor(value) && std::fabs(value) < 1e21) {
    // An integral double prints exactly with %.0f (2^60 as 1152921504606846976,
    // not 1.15292150460685e+18, which int8 would refuse).
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.0f", value);
    return std::string(buffer) == "-0" ? "0" : buffer;
  }
  char buffer[40];
  for (int precision = 15; precision <= 17; ++precision) {
    std::snprintf(buffer, sizeof buffer, "%.*g", precision, value);
    if (std::strtod(buffer, nullptr) == value) break;
  }
  return buffer;
}

std::optional<Param> lua_to_param(lua_State* L, int index, std::string& error) {
  switch (lua_type(L, index)) {
    case LUA_TNIL:
      return Param{};
    case LUA_TBOOLEAN:
      return Param{lua_toboolean(L, index) ? "true" : "false"};
    case LUA_TNUMBER:
      return Param{format_number(lua_tonumber(L, index))};
    case LUA_TSTRING: {
      std::size_t length = 0;
      const char* text = lua_tolstring(L, index, &length);
      // Parameters travel as C strings: "a\0b" would silently become "a".
      if (std::memchr(text, '\0', length)) {
        error = "contains a NUL byte (PostgreSQL text cannot hold one)";
        return std::nullopt;
      }
      return Param{std::string(text, length)};
    }
    case LUA_TTABLE:
      try {
        return Param{lua_to_json(L, index).dump()};
      } catch (const std::exception& e) {
        error = std::string("cannot write this table as JSON: ") + e.what();
        return std::nullopt;
      }
    default:
      error = std::string("cannot write a ") + luaL_typename(L, index) + " value";
      return std::nullopt;
  }
}

nlohmann::json lua_to_json(lua_State* L, int index) {
  if (index < 0) index = lua_gettop(L) + index + 1;
  switch (lua_type(L, index)) {
    case LUA_TNIL:
      return nullptr;
    case LUA_TBOOLEAN:
      return static_cast<bool>(lua_toboolean(L, index));
    case LUA_TNUMBER: {
      double value = lua_tonumber(L, index);
      if (value == std::floor(value) && std::fabs(value) <= k_max_exact_integer)
        return static_cast<long long>(value);
      return value;
    }
    case LUA_TSTRING: {
      std::size_t length = 0;
      const char* text = lua_tolstring(L, index, &length);
      return std::string(text, length);
    }
    case LUA_TTABLE: {
      if (!lua_checkstack(L, 4)) throw std::runtime_error("table nested too deeply");
      std::size_t length = 0;
      if (is_array(L, index, length) && length > 0) {
        auto array = nlohmann::json::array();
        for (std::size_t i = 1; i <= length; ++i) {
          lua_rawgeti(L, index, static_cast<int>(i));
          array.push_back(lua_to_json(L, -1));
          lua_pop(L, 1);
        }
        return array;
      }
      auto object = nlohmann::json::object();
      lua_pushnil(L);
      while (lua_next(L, index)) {
        std::string key;
        if (lua_type(L, -2) == LUA_TSTRING) {
          std::size_t length = 0;
          const char* text = lua_tolstring(L, -2, &length);
          key.assign(text, length);
        } else if (lua_type(L, -2) == LUA_TNUMBER)
          key = format_number(lua_tonumber(L, -2));
        else
          throw std::runtime_error("table keys must be strings or numbers");
        object[key] = lua_to_json(L, -1);
        lua_pop(L, 1);
      }
      return object;
    }
    case LUA_TLIGHTUSERDATA:
      throw std::runtime_error("EMPTY/NOT_EMPTY are filter markers, not values");
    default:
      throw std::runtime_error(std::string("cannot represent a ") + luaL_typename(L, index) +
                               " value");
  }
}

namespace {

// push_json's recursion, `depth` the nesting level of `value` (the root's is 1): a C++ exception
// (never a Lua error) when the value is nested past k_max_json_depth or the Lua stack cannot grow,
// so no value can panic Lua.
void push_json_at(lua_State* L, const nlohmann::json& value, int depth) {
  if (value.is_structured() && depth > k_max_json_depth)
    throw std::runtime_error("JSON value nested deeper than " + std::to_string(k_max_json_depth) +
                             " levels");
  if (!lua_checkstack(L, 3)) throw std::runtime_error("JSON value nested too deeply for Lua");
  switch (value.type()) {
    case nlohmann::json::value_t::null:
    case nlohmann::json::value_t::discarded:
      lua_pushnil(L);
      break;
    case nlohmann::json::value_t::boolean:
      lua_pushboolean(L, value.get<bool>());
      break;
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned: {
      // Like int8 from the database: a number while exact, else its digits.
      // (Compared as integers: as a double, 2^53 + 1 already reads as 2^53.)
      constexpr std::int64_t limit = std::int64_t{1} << 53;
      bool exact = value.is_number_unsigned()
                       ? value.get<std::uint64_t>() <= static_cast<std::uint64_t>(limit)
                       : value.get<std::int64_t>() >= -limit && value.get<std::int64_t>() <= limit;
      if (exact) {
        lua_pushnumber(L, value.get<double>());
      } else {
        std::string digits = value.dump();
        lua_pushlstring(L, digits.data(), digits.size());
      }
      break;
    }
    case nlohmann::json::value_t::number_float:
      lua_pushnumber(L, value.get<double>());
      break;
    case nlohmann::json::value_t::string: {
      const auto& text = value.get_ref<const std::string&>();
      lua_pushlstring(L, text.data(), text.size());
      break;
    }
    case nlohmann::json::value_t::array: {
      lua_createtable(L, static_cast<int>(value.size()), 0);
      int i = 1;
      for (const auto& element : value) {
        push_json_at(L, element, depth + 1);
        lua_rawseti(L, -2, i++);
      }
      break;
    }
    case nlohmann::json::value_t::object: {
      lua_createtable(L, 0, static_cast<int>(value.size()));
      for (auto it = value.begin(); it != value.end(); ++it) {
        // Pushed with its length: a key holding a NUL byte is kept whole.
        lua_pushlstring(L, it.key().data(), it.key().size());
        push_json_at(L, it.value(), depth + 1);
        lua_rawset(L, -3);
      }
      break;
    }
    case nlohmann::json::value_t::binary:
      lua_pushnil(L);
      break;
  }
}

}  // namespace

void push_json(lua_State* L, const nlohmann::json& value) {
  int top = lua_gettop(L);
  try {
    push_json_at(L, value, 1);
  } catch (...) {
    lua_settop(L, top);
    throw;
  }
}

std::string describe_lua_value(lua_State* L, int index) {
  switch (lua_type(L, index)) {
    case LUA_TNIL:
      return "nil";
    case LUA_TNUMBER:
      return format_number(lua_tonumber(L, index));
    case LUA_TBOOLEAN:
      return lua_toboolean(L, index) ? "true" : "false";
    case LUA_TSTRING: {
      std::string text = lua_tostring(L, index);
      if (text.size() > 60) text = text.substr(0, 57) + "...";
      return "'" + text + "'";
    }
    default:
      return std::string("a ") + luaL_typename(L, index);
  }
}

}  // namespace host
