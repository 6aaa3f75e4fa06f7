#pragma once
// Values crossing between PostgreSQL and Lua, as RECIPE_API.md section 1 maps them.
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>

#include "host/database.hpp"

struct lua_State;

namespace host {

// Pushes the Lua value of a PostgreSQL value given in text form (`text` null = SQL NULL
// = nil). bool -> boolean; int2/int4/float4/float8 -> number; int8 -> number when
// |v| <= 2^53 else string; everything else -> string. Pushes exactly one value.
void push_pg_value(lua_State* L, const char* text, std::size_t length, unsigned type_oid);

// The text to bind for the Lua value at `index` (nil -> NULL). Numbers are written
// exactly (shortest form that reads back the same), booleans as true/false, tables
// as JSON. Returns nullopt and sets `error` for values that cannot be written,
// among them a string holding a NUL byte (a parameter would end there).
std::optional<Param> lua_to_param(lua_State* L, int index, std::string& error);

// The Lua value at `index` as JSON (nil -> null; arrays and objects by shape).
nlohmann::json lua_to_json(lua_State* L, int index);
// Deepest nesting of arrays and objects push_json takes (and JSON Lines input holds).
constexpr int k_max_json_depth = 200;

// Pushes a JSON value as Lua (null -> nil, objects and arrays -> tables): exactly one
// value. A value nested deeper than k_max_json_depth, or one the Lua stack cannot
// hold, throws std::runtime_error with the stack as it was (never a Lua error).
void push_json(lua_State* L, const nlohmann::json& value);

// Exact decimal text of a Lua number.
std::string format_number(double value);

// Short description of the value at `index` for error messages: 'text', 42, nil, a table.
std::string describe_lua_value(lua_State* L, int index);

}  // namespace host
