#include "bindings/verify_helpers.hpp"

#include <lua.hpp>

#include "bindings/lua_value.hpp"
#include "bindings/primitives.hpp"
#include "bindings/run_context.hpp"
#include "bindings/sandbox.hpp"
#include "host/catalog.hpp"
#include "host/database.hpp"
#include "host/errors.hpp"
#include "host/query_guard.hpp"
#include "host/sql_text.hpp"

namespace host {

namespace {

RunContext& context_of(lua_State* L) {
  return *static_cast<RunContext*>(lua_touserdata(L, lua_upvalueindex(1)));
}

template <typename Body>
int guarded(lua_State* L, Body body) {
  std::string message;
  {
    Sandbox::HostCall host_call(L);
    RunContext& context = context_of(L);
    try {
      return body(context);
    } catch (const DatabaseUnreachable& e) {
      context.fatal = std::current_exception();
      message = e.what();
    } catch (const std::exception& e) {
      message = e.what();
    }
  }
  raise_lua_error(L, message);
}

std::string string_arg(lua_State* L, int index, const char* what) {
  if (lua_type(L, index) != LUA_TSTRING) throw RecipeError(std::string(what) + " must be a string");
  return lua_tostring(L, index);
}

std::string string_field(lua_State* L, int index, const char* field, bool required) {
  lua_getfield(L, index, field);
  std::string value = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "";
  lua_pop(L, 1);
  if (required && value.empty())
    throw RecipeError(std::string("orphans: field '") + field + "' is required");
  return value;
}

// A table a helper reads, refused when it holds secrets (host/query_guard.hpp).
const TableInfo& checked_table(RunContext& context, const std::string& name, const char* what) {
  const TableInfo& table = context.catalog->table(name);
  context.query_guard.check_relation(*context.database, table, what);
  return table;
}

std::vector<std::string> columns_arg(lua_State* L, int index, const TableInfo& table) {
  std::vector<std::string> columns;
  if (lua_type(L, index) == LUA_TSTRING) {
    columns.push_back(lua_tostring(L, index));
  } else if (lua_istable(L, index)) {
    for (int i = 1;; ++i) {
      lua_rawgeti(L, index, i);
      if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        break;
      }
      columns.push_back(luaL_checkstring(L, -1));
      lua_pop(L, 1);
    }
  } else {
    columns = table.column_names();
  }
  for (const auto& c : columns) table.require_column(c);
  return columns;
}

std::string describe_filter(const Filter& filter) {
  std::string text;
  for (const auto& c : filter.conditions) {
    text += (text.empty() ? "" : ", ") + c.column + " = ";
    switch (c.kind) {
      case Condition::Kind::empty:
        text += "EMPTY";
        break;
      case Condition::Kind::not_empty:
        text += "NOT_EMPTY";
        break;
      case Condition::Kind::equals:
        text += c.values[0] ? "'" + *c.values[0] + "'" : "NULL";
        break;
      case Condition::Kind::in_list:
        text += "{" + std::to_string(c.values.size()) + " values}";
        break;
    }
  }
  if (filter.sql) text += (text.empty() ? "" : ", ") + *filter.sql;
  return text.empty() ? "" : " where {" + text + "}";
}

long long count_rows(RunContext& context, lua_State* L, const TableInfo& table, int where_index,
                     std::string* description) {
  Filter filter;
  std::string error;
  if (!lua_isnoneornil(L, where_index) && !lua_to_filter(L, where_index, filter, error))
    throw RecipeError(error);
  Params params;
  std::string sql = "SELECT count(*) FROM " + table.qualified_name + " t WHERE " +
                    render_filter(filter, table, "t", params);
  if (description) *description = table.display_name + describe_filter(filter);
  auto result = filter.sql
                    ? exec_recipe_sql(*context.database, context.query_guard, sql, params, "where")
                    : context.database->exec_read_only(sql, params);
  return result[0][0].as<long long>();
}

int expect(lua_State* L) {
  return guarded(L, [&](RunContext& context) {
    bool ok = lua_toboolean(L, 1);
    std::string message = lua_type(L, 2) == LUA_TSTRING || lua_type(L, 2) == LUA_TNUMBER
                              ? lua_tostring(L, 2)
                              : (lua_isnoneornil(L, 2) ? "expectation" : describe_lua_value(L, 2));
    context.checks.push_back({message, ok, ok ? "" : "failed"});
    lua_pushboolean(L, ok);
    return 1;
  });
}

int count(lua_State* L) {
  return guarded(L, [&](RunContext& context) {
    const TableInfo& table = checked_table(context, string_arg(L, 1, "count: table"), "count");
    lua_pushnumber(L, static_cast<double>(count_rows(context, L, table, 2, nullptr)));
    return 1;
  });
}

int expect_count(lua_State* L) {
  return guarded(L, [&](RunContext& context) {
    const TableInfo& table =
        checked_table(context, string_arg(L, 1, "expect_count: table"), "expect_count");
    if (!lua_isnumber(L, 3)) throw RecipeError("expect_count: n must be a number");
    long long expected = static_cast<long long>(lua_tonumber(L, 3));
    std::string description;
    long long found = count_rows(context, L, table, 2, &description);
    bool ok = found == expected;
    context.checks.push_back({"count of " + description + " is " + std::to_string(expected), ok,
                              "found " + std::to_string(found)});
    lua_pushboolean(L, ok);
    return 1;
  });
}

int orphans(lua_State* L) {
  return guarded(L, [&](RunContext& context) {
    if (!lua_istable(L, 1))
      throw RecipeError("orphans{ child =, fk =, parent =, key = } takes one table");
    const TableInfo& child = checked_table(context, string_field(L, 1, "child", true), "orphans");
    const TableInfo& parent = checked_table(context, string_field(L, 1, "parent", true), "orphans");
    std::string fk = string_field(L, 1, "fk", true);
    std::string key = string_field(L, 1, "key", false);
    if (key.empty()) {
      if (parent.primary_key.size() != 1)
        throw RecipeError("orphans: parent '" + parent.display_name + "' needs key =");
      key = parent.primary_key[0];
    }
    child.require_column(fk);
    parent.require_column(key);
    std::string sql = "SELECT count(*), (array_agg(c." + quote_ident(fk) + "::text ORDER BY c." +
                      quote_ident(fk) + "::text))[1:10] FROM " + child.qualified_name +
                      " c WHERE c." + quote_ident(fk) +
                      " IS NOT NULL AND NOT EXISTS (SELECT 1 FROM " + parent.qualified_name +
                      " p WHERE p." + quote_ident(key) + " = c." + quote_ident(fk) + ")";
    auto result = context.database->exec_read_only(sql, {});
    nlohmann::json finding = {
        {"child", child.display_name},           {"fk", fk},
        {"parent", parent.display_name},         {"key", key},
        {"count", result[0][0].as<long long>()}, {"sample", nlohmann::json::array()}};
    lua_createtable(L, 0, 2);
    lua_pushnumber(L, result[0][0].as<double>());
    lua_setfield(L, -2, "count");
    lua_newtable(L);
    if (!result[0][1].is_null()) {
      auto sample = result[0][1].as_array();
      int i = 1;
      for (auto item = sample.get_next(); item.first != pqxx::array_parser::juncture::done;
           item = sample.get_next()) {
        if (item.first == pqxx::array_parser::juncture::string_value) {
          lua_pushstring(L, item.second.c_str());
          lua_rawseti(L, -2, i++);
          finding["sample"].push_back(item.second);
        }
      }
    }
    lua_setfield(L, -2, "sample");
    context.orphan_findings.push_back(std::move(finding));
    return 1;
  });
}

int checksum(lua_State* L) {
  return guarded(L, [&](RunContext& context) {
    const TableInfo& table =
        checked_table(context, string_arg(L, 1, "checksum: table"), "checksum");
    auto columns = columns_arg(L, 2, table);
    Filter filter;
    std::string error;
    if (!lua_isnoneornil(L, 3) && !lua_to_filter(L, 3, filter, error)) throw RecipeError(error);
    Params params;
    std::string row = "ROW(" + column_list(columns, "t") + ")::text";
    std::string sql = "SELECT md5(coalesce(string_agg(r, E'\\n' ORDER BY r), '')) FROM (SELECT " +
                      row + " AS r FROM " + table.qualified_name + " t WHERE " +
                      render_filter(filter, table, "t", params) + ") x";
    auto result =
        filter.sql ? exec_recipe_sql(*context.database, context.query_guard, sql, params, "where")
                   : context.database->exec_read_only(sql, params);
    lua_pushstring(L, result[0][0].c_str());
    return 1;
  });
}

int same_rows(lua_State* L) {
  return guarded(L, [&](RunContext& context) {
    const TableInfo& a =
        checked_table(context, string_arg(L, 1, "same_rows: table_a"), "same_rows");
    const TableInfo& b =
        checked_table(context, string_arg(L, 2, "same_rows: table_b"), "same_rows");
    std::vector<std::string> key;
    if (lua_type(L, 3) == LUA_TSTRING)
      key.push_back(lua_tostring(L, 3));
    else
      key = columns_arg(L, 3, a);
    auto columns = columns_arg(L, 4, a);
    std::string join, a_row = "ROW(" + column_list(columns, "a") + ")",
                      b_row = "ROW(" + column_list(columns, "b") + ")", a_key, b_key;
    for (const auto& k : key) {
      a.require_column(k);
      b.require_column(k);
      join += (join.empty() ? "" : " AND ") + ("a." + quote_ident(k) + " = b." + quote_ident(k));
      a_key += (a_key.empty() ? "" : " || ',' || ") + ("a." + quote_ident(k) + "::text");
      b_key += (b_key.empty() ? "" : " || ',' || ") + ("b." + quote_ident(k) + "::text");
    }
    for (const auto& c : columns) b.require_column(c);
    std::string first_key_a = "a." + quote_ident(key[0]), first_key_b = "b." + quote_ident(key[0]);
    std::string sql =
        "SELECT count(*) FILTER (WHERE " + first_key_b + " IS NULL), count(*) FILTER (WHERE " +
        first_key_a + " IS NULL), count(*) FILTER (WHERE " + first_key_a + " IS NOT NULL AND " +
        first_key_b + " IS NOT NULL), (array_agg(coalesce(" + a_key + ", " + b_key +
        ") ORDER BY coalesce(" + a_key + ", " + b_key + ")))[1:5] FROM " + a.qualified_name +
        " a FULL JOIN " + b.qualified_name + " b ON " + join + " WHERE " + first_key_a +
        " IS NULL OR " + first_key_b + " IS NULL OR " + a_row + " IS DISTINCT FROM " + b_row;
    auto result = context.database->exec_read_only(sql, {});
    long long only_a = result[0][0].as<long long>(), only_b = result[0][1].as<long long>(),
              different = result[0][2].as<long long>();
    bool ok = only_a == 0 && only_b == 0 && different == 0;
    std::string detail = a.display_name + " vs " + b.display_name + ": " + std::to_string(only_a) +
                         " only in " + a.display_name + ", " + std::to_string(only_b) +
                         " only in " + b.display_name + ", " + std::to_string(different) +
                         " different";
    if (!ok && !result[0][3].is_null())
      detail += " (keys " + std::string(result[0][3].c_str()) + ")";
    lua_pushboolean(L, ok);
    lua_pushstring(L, detail.c_str());
    return 2;
  });
}

}  // namespace

void install_verify_helpers(Sandbox& sandbox, RunContext& context) {
  lua_State* L = sandbox.state();
  const std::pair<const char*, lua_CFunction> helpers[] = {
      {"expect", expect},   {"count", count},       {"expect_count", expect_count},
      {"orphans", orphans}, {"checksum", checksum}, {"same_rows", same_rows}};
  for (const auto& [name, fn] : helpers) {
    lua_pushlightuserdata(L, &context);
    lua_pushcclosure(L, fn, 1);
    sandbox.set_protected_global(name);
  }
}

}  // namespace host
