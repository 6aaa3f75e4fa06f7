#pragma once
// The globals of RECIPE_API.md section 2, bound to a RunContext.
#include <string>

#include <vector>

#include <pqxx/result>

#include "host/filter.hpp"
#include "host/read_batcher.hpp"

struct lua_State;

namespace host {

class Sandbox;
struct RunContext;
struct TableInfo;
struct PendingCall;

// Installs every primitive (and EMPTY/NOT_EMPTY, vars, log) as protected globals.
// `context` must outlive the sandbox's use.
void install_primitives(Sandbox& sandbox, RunContext& context);

// Converts the `where` value at `index` (a table of column -> value/EMPTY/NOT_EMPTY/array,
// or a SQL string) into a Filter. Returns false and sets `error` when malformed.
bool lua_to_filter(lua_State* L, int index, Filter& filter, std::string& error);

// Starts a new batch: forgets the row tables of the previous one.
void reset_row_registry(lua_State* L, RunContext& context);

// Pushes a row table for row `row` of `result` (skipping `column_offset` columns).
// When `origin_table` is given, the row is remembered as writable through the
// table's key columns `key_columns` (which must be among the result's columns).
// `key_fields`, when given, are the key columns' field numbers in `result`
// (key_field_numbers), found once for all its rows. `skipped`, when given,
// receives the text of the `column_offset` columns skipped.
void push_result_row(lua_State* L, RunContext& context, const pqxx::result& result, int row,
                     int column_offset, const TableInfo* origin_table,
                     const std::vector<std::string>& key_columns,
                     const std::vector<int>* key_fields = nullptr,
                     std::vector<std::string>* skipped = nullptr);
std::vector<int> key_field_numbers(const pqxx::result& result,
                                   const std::vector<std::string>& key_columns);

// Pushes the answer of a resolved pending call in the (ok, value) shape the
// Lua-side wrappers expect; returns the number of values pushed.
int push_read_answer(lua_State* L, RunContext& context, const PendingCall& call,
                     const ReadAnswer& answer);

}  // namespace host
