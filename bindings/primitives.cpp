#include "bindings/primitives.hpp"

#include <algorithm>
#include <cstring>
#include <lua.hpp>

#include "bindings/lua_value.hpp"
#include "bindings/run_context.hpp"
#include "bindings/sandbox.hpp"
#include "host/catalog.hpp"
#include "host/database.hpp"
#include "host/errors.hpp"
#include "host/exact_fit.hpp"
#include "host/ledger.hpp"
#include "host/query_guard.hpp"
#include "host/retry_policy.hpp"
#include "host/sql_text.hpp"
#include "host/uuid5.hpp"

namespace host {

namespace {

// Distinct addresses make EMPTY and NOT_EMPTY unforgeable light userdata.
char k_empty_marker;
char k_not_empty_marker;
const char* const k_row_registry = "host.rows";
// What query() returns at most: past it the call is an error, as for read_all
// without opts.limit. (A single query() once took 1.1 GB for 30M rows.)
constexpr long long k_query_row_limit = k_read_all_default_limit;

RunContext& context_of(lua_State* L) {
  return *static_cast<RunContext*>(lua_touserdata(L, lua_upvalueindex(1)));
}

// Runs `body`; C++ failures become Lua errors raised outside any C++ scope, and
// failures that must end the run are also parked in context.fatal.
template <typename Body>
int guarded(lua_State* L, Body body) {
  std::string message;
  {
    Sandbox::HostCall host_call(L);
    RunContext& context = context_of(L);
    try {
      return body(context);
    } catch (const RecipeError& e) {
      message = e.what();
    } catch (const DatabaseError& e) {
      // A lock timeout, deadlock or statement timeout has aborted the batch's
      // transaction whatever the recipe does with the error: the batch is tried again.
      if (classify_failure(std::current_exception()) != Failure::fatal)
        context.fatal = std::current_exception();
      message = e.what();
    } catch (const DatabaseUnreachable& e) {
      context.fatal = std::current_exception();
      message = e.what();
    } catch (const std::exception& e) {
      message = e.what();
    }
  }
  raise_lua_error(L, message);
}

// The string at `index`, valid while it stays on the stack.
std::string_view check_string_view(lua_State* L, int index, const char* what) {
  if (lua_type(L, index) != LUA_TSTRING)
    throw RecipeError(std::string(what) + " must be a string, got " + luaL_typename(L, index));
  std::size_t length = 0;
  const char* text = lua_tolstring(L, index, &length);
  if (std::memchr(text, '\0', length))
    throw RecipeError(std::string(what) + " contains a NUL byte");
  return {text, length};
}

std::string check_string(lua_State* L, int index, const char* what) {
  return std::string(check_string_view(L, index, what));
}

// `what` + `name` + `after` names the value in the error ("value for column 'x'");
// the words are only put together for an error, not for every call.
Param to_param_or_throw(lua_State* L, int index, const char* what, const std::string& name,
                        const char* after = "'") {
  std::string error;
  auto value = lua_to_param(L, index, error);
  if (!value) throw RecipeError(what + name + after + ": " + error);
  return *value;
}

struct WriteOpts {
  Confidence confidence = Confidence::high;
  const std::string* reason = &k_no_reason;  // WriteQueue::reason
  EmptyRule empty = EmptyRule::blank;
  std::vector<std::string> key;
  std::string table;
};

std::vector<std::string> string_list(lua_State* L, int index, const char* what) {
  std::vector<std::string> list;
  if (lua_type(L, index) == LUA_TSTRING) {
    list.push_back(lua_tostring(L, index));
  } else if (lua_type(L, index) == LUA_TTABLE) {
    for (int i = 1;; ++i) {
      lua_rawgeti(L, index, i);
      if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        break;
      }
      if (lua_type(L, -1) != LUA_TSTRING) {
        lua_pop(L, 1);
        throw RecipeError(std::string(what) + " must be a list of column names");
      }
      list.push_back(lua_tostring(L, -1));
      lua_pop(L, 1);
    }
  } else if (!lua_isnil(L, index)) {
    throw RecipeError(std::string(what) + " must be a column name or a list of them");
  }
  return list;
}

WriteOpts parse_write_opts(lua_State* L, RunContext& context, int index) {
  WriteOpts opts;
  if (lua_isnoneornil(L, index)) return opts;
  if (!lua_istable(L, index)) throw RecipeError("opts must be a table");
  index = index < 0 ? lua_gettop(L) + index + 1 : index;
  lua_pushnil(L);
  while (lua_next(L, index)) {
    // Compared as C strings: this runs for every write of every row.
    const char* key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
    auto is = [&](const char* name) { return std::strcmp(key, name) == 0; };
    if (is("confidence")) {
      if (lua_type(L, -1) != LUA_TSTRING || !parse_confidence(lua_tostring(L, -1), opts.confidence))
        throw RecipeError("opts.confidence must be \"high\", \"medium\" or \"low\"");
    } else if (is("reason")) {
      opts.reason = &context.writes.reason(check_string_view(L, -1, "opts.reason"));
    } else if (is("empty")) {
      std::string rule = check_string(L, -1, "opts.empty");
      if (rule == "blank")
        opts.empty = EmptyRule::blank;
      else if (rule == "null")
        opts.empty = EmptyRule::null_only;
      else
        throw RecipeError("opts.empty must be \"blank\" or \"null\"");
    } else if (is("key")) {
      opts.key = string_list(L, -1, "opts.key");
    } else if (is("table")) {
      opts.table = check_string(L, -1, "opts.table");
    } else {
      throw RecipeError("unknown option '" + std::string(key) + "'");
    }
    lua_pop(L, 1);
  }
  return opts;
}

void refuse_rounding(const TableInfo& table, const Column& column, const Param& value) {
  if (!value) return;
  if (auto problem = rounding_problem(column, *value))
    throw RecipeError("cannot write to " + table.display_name + "." + column.name + ": " +
                      *problem);
}

// The column, once checked.
const Column& check_writable(RunContext& context, const TableInfo& table,
                             const std::string& column) {
  if (!context.writes_enabled) throw RecipeError("writes are not allowed here (only inside each)");
  // A recipe writes the same few columns row after row.
  for (const auto& seen : context.writable_seen)
    if (seen.table == &table && seen.name == column) return *seen.column;
  auto it = context.allowed_writes.find(table.qualified_name);
  if (it == context.allowed_writes.end())
    throw RecipeError("table '" + table.display_name + "' is not in the recipe's writes");
  if (!it->second.count("*") && !it->second.count(column))
    throw RecipeError("column '" + column + "' of table '" + table.display_name +
                      "' is not in the recipe's writes");
  const Column& found = table.require_column(column);
  if (found.generated)
    throw RecipeError("column '" + column + "' of table '" + table.display_name +
                      "' is generated: PostgreSQL computes it, nothing may write it");
  context.writable_seen.push_back({&table, column, &found});
  return found;
}

// The host-known origin of a row table: which table and key it came from.
// The origin of a row of this batch, or `named` filled in from opts.table and the
// row's key values. `own_row` is set when the row is the scanned row being processed.
const RowOrigin& origin_of(lua_State* L, RunContext& context, int row_index,
                           const WriteOpts& opts, RowOrigin& named, bool& own_row) {
  if (!lua_istable(L, row_index)) throw RecipeError("row must be a table");
  lua_getfield(L, LUA_REGISTRYINDEX, k_row_registry);
  lua_pushvalue(L, row_index);
  lua_rawget(L, -2);
  bool known = lua_isnumber(L, -1);
  std::size_t index = known ? static_cast<std::size_t>(lua_tonumber(L, -1)) : 0;
  lua_pop(L, 2);
  if (known && index < context.rows.size() && opts.table.empty()) {
    own_row = context.current_row < context.scanned_slots.size() &&
              context.scanned_slots[context.current_row] == index;
    return context.rows[index];
  }
  if (opts.table.empty())
    throw RecipeError(
        "row does not come from a table scan or read() of this batch; pass opts.table to name "
        "its table");
  RowOrigin& origin = named;
  origin.table = &context.catalog->table(opts.table);
  origin.key_columns =
      opts.key.empty() ? &origin.table->primary_key : &context.lasting_key(opts.key);
  if (origin.key_columns->empty())
    throw RecipeError("table '" + opts.table + "' has no primary key; pass opts.key");
  origin.table->require_row_identity(*origin.key_columns, "opts.key", KeyUse::match);
  for (const auto& column : *origin.key_columns) {
    lua_getfield(L, row_index, column.c_str());
    Param value = to_param_or_throw(L, -1, "key column '", column);
    lua_pop(L, 1);
    if (!value) throw RecipeError("row has no value for key column '" + column + "'");
    origin.key.push_back(value);
  }
  return origin;
}

bool lua_value_is_empty(lua_State* L, int index, const Column& column, EmptyRule rule) {
  if (lua_isnil(L, index)) return true;
  if (lua_type(L, index) != LUA_TSTRING || rule == EmptyRule::null_only || !column.is_text)
    return false;
  std::size_t length = 0;
  const char* text = lua_tolstring(L, index, &length);
  return std::all_of(text, text + length,
                     [](char c) { return std::isspace(static_cast<unsigned char>(c)); });
}

void add_review(RunContext& context, const std::string& table, nlohmann::json key,
                const std::string& column, nlohmann::json value, const std::string& confidence,
                const std::string& reason) {
  context.reviews.push_back({table, std::move(key), column, std::move(value), confidence, reason});
  ++context.stats.review;
}

QueuedWrite base_write(lua_State* L, RunContext& context, WriteOpts& opts) {
  QueuedWrite write;
  write.confidence = opts.confidence;
  write.reason = opts.reason;
  write.empty = opts.empty;
  write.row_index = context.current_row;
  lua_Debug frame;
  if (lua_getstack(L, 1, &frame) && lua_getinfo(L, "Sl", &frame) && frame.currentline > 0) {
    write.call_source = frame.source;
    write.call_line = frame.currentline;
  }
  write.row = context.current_identity;
  return write;
}

// patch_if_empty(row, column, value [, opts]) and patch_if(row, column, expected, value [, opts]).
int patch(lua_State* L, bool compare) {
  return guarded(L, [&](RunContext& context) {
    int value_index = compare ? 4 : 3;
    WriteOpts opts = parse_write_opts(L, context, value_index + 1);
    std::string column_name = check_string(L, 2, "column");
    bool own_row = false;
    RowOrigin named;
    const RowOrigin& origin = origin_of(L, context, 1, opts, named, own_row);
    const TableInfo& table = *origin.table;
    const Column& column = check_writable(context, table, column_name);
    if (std::find(origin.key_columns->begin(), origin.key_columns->end(), column_name) !=
        origin.key_columns->end())
      throw RecipeError("column '" + column_name + "' is part of the row's key");
    Param value = to_param_or_throw(L, value_index, "value for column '", column_name);
    refuse_rounding(table, column, value);
    Param expected;
    if (compare) expected = to_param_or_throw(L, 3, "expected value of '", column_name);

    lua_pushvalue(L, 2);  // the column's name, a string (check_string)
    lua_rawget(L, 1);  // no __index: Lua run from here would escape the watchdog
    int current = lua_gettop(L);
    bool refused = false;
    if (!compare) {
      refused = !lua_value_is_empty(L, current, column, opts.empty);
    } else if (!lua_isnil(L, current)) {
      std::string ignored;
      auto current_text = lua_to_param(L, current, ignored);
      refused = expected ? (current_text && *current_text && **current_text != *expected)
                         : !lua_value_is_empty(L, current, column, opts.empty);
    }
    lua_pop(L, 1);
    if (refused) {
      ++context.stats.protected_fields;
      ++context.protected_by_column[{table.display_name, column_name}];
      lua_pushboolean(L, 0);
      return 1;
    }
    if (!value) {  // writing NULL into an empty cell changes nothing
      lua_pushboolean(L, 0);
      return 1;
    }
    if (opts.confidence < context.min_confidence) {
      add_review(context, table.display_name, key_json(&table, *origin.key_columns, origin.key),
                 column_name, lua_to_json(L, value_index), confidence_name(opts.confidence),
                 *opts.reason);
      lua_pushboolean(L, 0);
      return 1;
    }
    QueuedWrite write = base_write(L, context, opts);
    write.kind = compare ? WriteKind::patch_if : WriteKind::patch_if_empty;
    write.table = &table;
    write.key_columns = origin.key_columns;
    write.key = origin.key;
    write.column = std::move(column_name);
    write.value = std::move(value);
    write.expected = std::move(expected);
    write.own_row = own_row;
    context.writes.push(std::move(write));
    lua_pushboolean(L, 1);
    return 1;
  });
}

int patch_if_empty(lua_State* L) { return patch(L, false); }
int patch_if(lua_State* L) { return patch(L, true); }

// insert_if_absent(table, values [, opts]) and fill_from(table, values [, opts]).
int insert(lua_State* L, WriteKind kind) {
  return guarded(L, [&](RunContext& context) {
    const TableInfo& table = context.catalog->table(check_string(L, 1, "table"));
    if (!lua_istable(L, 2)) throw RecipeError("values must be a table of column = value");
    WriteOpts opts = parse_write_opts(L, context, 3);
    std::vector<std::pair<std::string, Param>> values;
    lua_pushnil(L);
    while (lua_next(L, 2)) {
      if (lua_type(L, -2) != LUA_TSTRING) throw RecipeError("values must be keyed by column name");
      std::string column = lua_tostring(L, -2);
      const Column& checked = check_writable(context, table, column);
      values.emplace_back(column, to_param_or_throw(L, -1, "value for column '", column));
      refuse_rounding(table, checked, values.back().second);
      lua_pop(L, 1);
    }
    std::sort(values.begin(), values.end());
    std::vector<std::string> key = opts.key.empty() ? table.primary_key : opts.key;
    if (key.empty())
      throw RecipeError("table '" + table.display_name + "' has no primary key; pass opts.key");
    table.require_row_identity(key, opts.key.empty() ? "the primary key" : "opts.key",
                               KeyUse::match);
    Params key_values;
    for (const auto& column : key) {
      table.require_column(column);
      auto it = std::find_if(values.begin(), values.end(),
                             [&](const auto& pair) { return pair.first == column; });
      if (it == values.end() || !it->second)
        throw RecipeError("values lack key column '" + column + "' of '" + table.display_name +
                          "'");
      key_values.push_back(it->second);
    }
    if (opts.confidence < context.min_confidence) {
      add_review(context, table.display_name, key_json(&table, key, key_values), "",
                 lua_to_json(L, 2), confidence_name(opts.confidence), *opts.reason);
      lua_pushboolean(L, 0);
      return 1;
    }
    QueuedWrite write = base_write(L, context, opts);
    write.kind = kind;
    write.table = &table;
    write.key_columns = opts.key.empty() ? &table.primary_key : &context.lasting_key(opts.key);
    write.key = key_values;
    for (auto& [column, value] : values) {
      write.columns.push_back(column);
      write.values.push_back(value);
    }
    context.writes.push(std::move(write));
    lua_pushboolean(L, 1);
    return 1;
  });
}

int insert_if_absent(lua_State* L) { return insert(L, WriteKind::insert_if_absent); }
int fill_from(lua_State* L) { return insert(L, WriteKind::fill_from); }

ReadRequest parse_read(lua_State* L, RunContext& context, ReadRequest::Kind kind) {
  ReadRequest request;
  request.kind = kind;
  request.table = &context.catalog->table(check_string(L, 1, "table"));
  const char* what = kind == ReadRequest::Kind::first ? "read" : "read_all";
  context.query_guard.check_relation(*context.database, *request.table, what);
  std::string error;
  if (lua_isnoneornil(L, 2)) {
    // no filter: any row
  } else if (!lua_to_filter(L, 2, request.filter, error)) {
    throw RecipeError(error);
  }
  for (const auto& condition : request.filter.conditions)
    request.table->require_column(condition.column);
  if (request.filter.sql) request.guard = &context.query_guard;
  if (lua_istable(L, 3)) {
    lua_getfield(L, 3, "columns");
    request.columns = string_list(L, -1, "opts.columns");
    lua_pop(L, 1);
    if (!request.columns.empty())
      for (const auto& key : request.table->primary_key)
        if (std::find(request.columns.begin(), request.columns.end(), key) == request.columns.end())
          request.columns.push_back(key);
    lua_getfield(L, 3, "order_by");
    if (lua_type(L, -1) == LUA_TSTRING) {
      request.order_by.emplace_back(lua_tostring(L, -1), false);
    } else if (lua_istable(L, -1)) {
      auto parts = string_list(L, -1, "opts.order_by");
      if (parts.empty() || parts.size() > 2 ||
          (parts.size() == 2 && parts[1] != "asc" && parts[1] != "desc"))
        throw RecipeError("opts.order_by must be \"col\" or {\"col\", \"asc\"|\"desc\"}");
      request.order_by.emplace_back(parts[0], parts.size() == 2 && parts[1] == "desc");
    }
    lua_pop(L, 1);
    lua_getfield(L, 3, "limit");
    if (!lua_isnil(L, -1)) {
      // Checked before the conversion: NaN or 1e30 cast to an integer is undefined.
      double limit = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : -1;
      if (!(limit >= 1 && limit <= 1e9) ||
          limit != static_cast<double>(static_cast<long long>(limit)))
        throw RecipeError("read_all: opts.limit must be a whole number from 1 to 1000000000");
      request.limit = static_cast<long long>(limit);
    }
    lua_pop(L, 1);
  }
  for (const auto& [column, descending] : request.order_by) request.table->require_column(column);
  return request;
}

// The raw read: answers now, or parks the request and yields the row's coroutine.
int raw_read(lua_State* L, ReadRequest::Kind kind) {
  bool yield = false;
  int results = guarded(L, [&](RunContext& context) {
    ReadRequest request;
    try {
      request = parse_read(L, context, kind);
    } catch (const RecipeError& e) {
      lua_pushboolean(L, 0);
      lua_pushstring(L, e.what());
      return 2;
    }
    if (context.row_threads.count(L)) {
      PendingCall call;
      call.thread = L;
      call.kind = PendingCall::Kind::read;
      call.read = std::move(request);
      context.pending.push_back(std::move(call));
      yield = true;
      return 0;
    }
    PendingCall call;
    call.read = request;
    auto answers = answer_reads(*context.database, {&call.read});
    return push_read_answer(L, context, call, answers[0]);
  });
  if (yield) return lua_yield(L, 0);
  return results;
}

int raw_read_first(lua_State* L) { return raw_read(L, ReadRequest::Kind::first); }
int raw_read_all(lua_State* L) { return raw_read(L, ReadRequest::Kind::all); }

int raw_map_id(lua_State* L) {
  bool yield = false;
  int results = guarded(L, [&](RunContext& context) {
    std::string entity = check_string(L, 1, "entity");
    if (context.run_id.empty()) {
      // A mapping belongs to a run (and is kept or dropped with it).
      lua_pushboolean(L, 0);
      lua_pushstring(L,
                     "map_id: may be called while rows are processed (in each or verify), "
                     "not while the recipe file loads");
      return 2;
    }
    if (!is_simple_name(entity)) {
      lua_pushboolean(L, 0);
      lua_pushstring(L, ("map_id: entity must match [a-z0-9_]+, got '" + entity + "'").c_str());
      return 2;
    }
    if (lua_isnoneornil(L, 2)) {
      lua_pushboolean(L, 1);
      lua_pushnil(L);
      return 2;
    }
    if (lua_type(L, 2) != LUA_TSTRING && lua_type(L, 2) != LUA_TNUMBER) {
      lua_pushboolean(L, 0);
      lua_pushstring(L, "map_id: legacy id must be a string or a number");
      return 2;
    }
    std::string error;
    auto legacy_param = lua_to_param(L, 2, error);
    if (!legacy_param) {
      lua_pushboolean(L, 0);
      lua_pushstring(L, ("map_id: legacy id " + error).c_str());
      return 2;
    }
    std::string legacy = **legacy_param;
    // A UUID is one legacy id however it is spelled: stored in canonical form.
    if (auto canonical = canonical_uuid(legacy)) legacy = *canonical;
    auto cached = context.id_cache.find(entity + '\x1f' + legacy);
    if (cached != context.id_cache.end()) {
      lua_pushboolean(L, 1);
      lua_pushlstring(L, cached->second.data(), cached->second.size());
      return 2;
    }
    if (context.row_threads.count(L)) {
      PendingCall call;
      call.thread = L;
      call.kind = PendingCall::Kind::map_id;
      call.entity = entity;
      call.legacy_id = legacy;
      context.pending.push_back(std::move(call));
      yield = true;
      return 0;
    }
    auto ids = resolve_ids(*context.database, *context.ledger, context.run_id, entity, {legacy},
                           context.stats.ids_mapped);
    context.id_cache[entity + '\x1f' + legacy] = ids.at(legacy);
    lua_pushboolean(L, 1);
    lua_pushstring(L, ids.at(legacy).c_str());
    return 2;
  });
  if (yield) return lua_yield(L, 0);
  return results;
}

// Outside the run's transaction (while the recipe file loads) query() gets one of
// its own, always rolled back: the guard and the read-only savepoint need one.
class QueryTransaction {
 public:
  explicit QueryTransaction(Database& database)
      : m_database(database), m_own(!database.in_transaction()) {
    if (m_own) m_database.begin();
  }
  ~QueryTransaction() {
    if (!m_own) return;
    try {
      m_database.rollback();
    } catch (...) {
      // A lost connection: the server rolls back on its own, and the caller has
      // the error that broke it.
    }
  }
  QueryTransaction(const QueryTransaction&) = delete;
  QueryTransaction& operator=(const QueryTransaction&) = delete;

 private:
  Database& m_database;
  bool m_own;
};

int query(lua_State* L) {
  return guarded(L, [&](RunContext& context) {
    std::string sql = check_string(L, 1, "query: sql");
    while (!sql.empty() &&
           (std::isspace(static_cast<unsigned char>(sql.back())) || sql.back() == ';'))
      sql.pop_back();
    Params params;
    for (int i = 2; i <= lua_gettop(L); ++i)
      params.push_back(to_param_or_throw(L, i, "query parameter $", std::to_string(i - 1), ""));
    // As a subquery the text can only be a SELECT/VALUES: no COMMIT, no second
    // statement, no data-modifying WITH; the guard refuses what could reach outside
    // the transaction, and the read-only savepoint does the rest. One row past the
    // limit tells "too many" from "exactly the limit" with memory kept bounded.
    QueryTransaction transaction(*context.database);
    auto result = exec_recipe_sql(*context.database, context.query_guard,
                                  "SELECT * FROM (\n" + sql + "\n) AS host_query LIMIT " +
                                      std::to_string(k_query_row_limit + 1),
                                  params, "query");
    if (static_cast<long long>(result.size()) > k_query_row_limit)
      throw RecipeError("query: more than " + std::to_string(k_query_row_limit) +
                        " rows (narrow it, aggregate in SQL, or page with LIMIT/OFFSET)");
    lua_createtable(L, static_cast<int>(result.size()), 0);
    for (int r = 0; r < static_cast<int>(result.size()); ++r) {
      push_result_row(L, context, result, r, 0, nullptr, {});
      lua_rawseti(L, -2, r + 1);
    }
    return 1;
  });
}

int audit(lua_State* L) {
  return guarded(L, [&](RunContext& context) {
    std::string event = check_string(L, 1, "audit: event");
    nlohmann::json data = lua_isnoneornil(L, 2) ? nlohmann::json(nullptr) : lua_to_json(L, 2);
    context.audit.push_back({event, std::move(data), context.current_identity->key()});
    ++context.stats.audit_events;
    return 0;
  });
}

int review(lua_State* L) {
  return guarded(L, [&](RunContext& context) {
    std::string column = lua_isnoneornil(L, 2) ? "" : check_string(L, 2, "review: column");
    std::string reason = lua_isnoneornil(L, 4) ? "" : check_string(L, 4, "review: reason");
    std::string table;
    nlohmann::json key = context.current_identity->key();
    if (lua_istable(L, 1)) {
      lua_getfield(L, LUA_REGISTRYINDEX, k_row_registry);
      lua_pushvalue(L, 1);
      lua_rawget(L, -2);
      if (lua_isnumber(L, -1)) {
        const RowOrigin& origin = context.rows.at(static_cast<std::size_t>(lua_tonumber(L, -1)));
        table = origin.table->display_name;
        key = key_json(origin.table, *origin.key_columns, origin.key);
      }
      lua_pop(L, 2);
    }
    // A hand-made proposal: the lowest confidence, so that it reads like the others.
    add_review(context, table, key, column, lua_to_json(L, 3), "low", reason);
    return 0;
  });
}

int log_line(lua_State* L, bool warning) {
  return guarded(L, [&](RunContext& context) {
    std::string line;
    for (int i = 1; i <= lua_gettop(L); ++i) {
      if (i > 1) line += ' ';
      if (lua_type(L, i) == LUA_TSTRING || lua_type(L, i) == LUA_TNUMBER)
        line += lua_tostring(L, i);
      else if (lua_istable(L, i))
        line += lua_to_json(L, i).dump();
      else
        line += describe_lua_value(L, i);
    }
    if (context.log) context.log(warning, line);
    return 0;
  });
}

int log_info(lua_State* L) { return log_line(L, false); }
int log_warn(lua_State* L) { return log_line(L, true); }

// Builds a read-only proxy over the table on top of the stack (replaced by the proxy).
void make_read_only(lua_State* L, const char* what) {
  lua_newtable(L);
  lua_newtable(L);
  lua_pushvalue(L, -3);
  lua_setfield(L, -2, "__index");
  lua_pushstring(L, what);
  lua_pushcclosure(
      L,
      [](lua_State* S) -> int {
        return luaL_error(S, "%s is read-only", lua_tostring(S, lua_upvalueindex(1)));
      },
      1);
  lua_setfield(L, -2, "__newindex");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);
  mark_read_only(L, -1);
  lua_remove(L, -2);
}

// Wrappers that turn (false, message) from the raw calls into errors at the caller's line.
const char* const k_read_wrappers = R"(
local raw_read, raw_read_all, raw_map_id = ...
local error = error
return function(table_name, where, opts)
  local ok, value = raw_read(table_name, where, opts)
  if not ok then error(value, 2) end
  return value
end, function(table_name, where, opts)
  local ok, value = raw_read_all(table_name, where, opts)
  if not ok then error(value, 2) end
  return value
end, function(entity, legacy_id)
  local ok, value = raw_map_id(entity, legacy_id)
  if not ok then error(value, 2) end
  return value
end
)";

}  // namespace

bool lua_to_filter(lua_State* L, int index, Filter& filter, std::string& error) {
  index = index < 0 ? lua_gettop(L) + index + 1 : index;
  if (lua_type(L, index) == LUA_TSTRING) {
    filter.sql = lua_tostring(L, index);
    return true;
  }
  if (!lua_istable(L, index)) {
    error = "where must be a table or a SQL string";
    return false;
  }
  lua_pushnil(L);
  while (lua_next(L, index)) {
    if (lua_type(L, -2) != LUA_TSTRING) {
      lua_pop(L, 2);
      error = "where keys must be column names";
      return false;
    }
    Condition condition;
    condition.column = lua_tostring(L, -2);
    if (lua_touserdata(L, -1) == &k_empty_marker) {
      condition.kind = Condition::Kind::empty;
    } else if (lua_touserdata(L, -1) == &k_not_empty_marker) {
      condition.kind = Condition::Kind::not_empty;
    } else if (lua_istable(L, -1)) {
      condition.kind = Condition::Kind::in_list;
      int list = lua_gettop(L);
      for (int i = 1;; ++i) {
        lua_rawgeti(L, list, i);
        if (lua_isnil(L, -1)) {
          lua_pop(L, 1);
          break;
        }
        auto value = lua_to_param(L, -1, error);
        lua_pop(L, 1);
        if (!value) {
          lua_pop(L, 2);
          error = "where." + condition.column + ": " + error;
          return false;
        }
        condition.values.push_back(*value);
      }
    } else {
      auto value = lua_to_param(L, -1, error);
      if (!value) {
        lua_pop(L, 2);
        error = "where." + condition.column + ": " + error;
        return false;
      }
      condition.values.push_back(*value);
    }
    filter.conditions.push_back(std::move(condition));
    lua_pop(L, 1);
  }
  // Table iteration order is arbitrary; a stable order keeps batching keys stable.
  std::sort(filter.conditions.begin(), filter.conditions.end(),
            [](const Condition& a, const Condition& b) { return a.column < b.column; });
  return true;
}

void reset_row_registry(lua_State* L, RunContext& context) {
  // Sized for as many rows as the batch before: grown row by row, it would be
  // rehashed ten times a batch.
  int expected = static_cast<int>(std::min<std::size_t>(context.rows.size(), 1 << 16));
  context.rows.clear();
  lua_createtable(L, 0, expected);
  lua_newtable(L);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_setfield(L, LUA_REGISTRYINDEX, k_row_registry);
}

std::vector<int> key_field_numbers(const pqxx::result& result,
                                   const std::vector<std::string>& key_columns) {
  std::vector<int> fields;
  fields.reserve(key_columns.size());
  // Quoted: libpq folds an unquoted name to lower case.
  for (const auto& key : key_columns)
    fields.push_back(static_cast<int>(result.column_number(quote_ident(key))));
  return fields;
}

void push_result_row(lua_State* L, RunContext& context, const pqxx::result& result, int row,
                     int column_offset, const TableInfo* origin_table,
                     const std::vector<std::string>& key_columns,
                     const std::vector<int>* key_fields, std::vector<std::string>* skipped) {
  int columns = static_cast<int>(result.columns());
  lua_createtable(L, 0, columns - column_offset);
  bool remembered = origin_table && !key_columns.empty();
  Params key(remembered ? key_columns.size() : 0);
  // One row and one field object walk the row: each pqxx row or field made holds
  // shared pointers to the result, counted atomically, and a batch makes millions.
  pqxx::result::const_iterator tuple = result.begin();
  tuple += row;
  const auto end = tuple->end();
  for (auto field = tuple->begin(); field != end; ++field) {
    int c = static_cast<int>(field->num());
    if (remembered && key_fields)
      for (std::size_t k = 0; k < key.size(); ++k)
        if ((*key_fields)[k] == c && !field->is_null()) key[k] = field->c_str();
    if (c < column_offset) {
      if (skipped) skipped->push_back(field->c_str());
      continue;
    }
    if (field->is_null()) continue;
    push_pg_value(L, field->c_str(), field->size(), result.column_type(c));
    lua_setfield(L, -2, result.column_name(c));
  }
  if (!remembered) return;
  if (!key_fields)
    for (std::size_t k = 0; k < key_columns.size(); ++k) {
      const auto& field = field_named(*tuple, key_columns[k]);
      if (!field.is_null()) key[k] = field.c_str();
    }
  RowOrigin origin;
  origin.table = origin_table;
  origin.key_columns = &key_columns;
  origin.key = std::move(key);
  context.rows.push_back(std::move(origin));
  lua_getfield(L, LUA_REGISTRYINDEX, k_row_registry);
  lua_pushvalue(L, -2);
  lua_pushnumber(L, static_cast<double>(context.rows.size() - 1));
  lua_rawset(L, -3);
  lua_pop(L, 1);
}

int push_read_answer(lua_State* L, RunContext& context, const PendingCall& call,
                     const ReadAnswer& answer) {
  if (!answer.error.empty()) {
    lua_pushboolean(L, 0);
    lua_pushstring(L, answer.error.c_str());
    return 2;
  }
  lua_pushboolean(L, 1);
  const TableInfo* table = call.read.table;
  const auto& key = table->primary_key;
  if (call.read.kind == ReadRequest::Kind::first) {
    if (answer.rows.empty())
      lua_pushnil(L);
    else
      push_result_row(L, context, *answer.result, answer.rows[0], answer.column_offset, table, key);
    return 2;
  }
  lua_createtable(L, static_cast<int>(answer.rows.size()), 0);
  std::vector<int> key_fields = key_field_numbers(*answer.result, key);
  for (size_t i = 0; i < answer.rows.size(); ++i) {
    push_result_row(L, context, *answer.result, answer.rows[i], answer.column_offset, table, key,
                    &key_fields);
    lua_rawseti(L, -2, static_cast<int>(i + 1));
  }
  return 2;
}

void install_primitives(Sandbox& sandbox, RunContext& context) {
  lua_State* L = sandbox.state();
  reset_row_registry(L, context);
  auto set = [&](const char* name, lua_CFunction fn) {
    lua_pushlightuserdata(L, &context);
    lua_pushcclosure(L, fn, 1);
    sandbox.set_protected_global(name);
  };
  set("patch_if_empty", patch_if_empty);
  set("patch_if", patch_if);
  set("insert_if_absent", insert_if_absent);
  set("fill_from", fill_from);
  set("query", query);
  set("audit", audit);
  set("review", review);

  sandbox.load_text(k_read_wrappers, "=host");
  for (lua_CFunction raw : {raw_read_first, raw_read_all, raw_map_id}) {
    lua_pushlightuserdata(L, &context);
    lua_pushcclosure(L, raw, 1);
  }
  lua_call(L, 3, 3);
  sandbox.set_protected_global("map_id");
  sandbox.set_protected_global("read_all");
  sandbox.set_protected_global("read");

  lua_newtable(L);
  for (auto [name, fn] :
       {std::pair<const char*, lua_CFunction>{"info", log_info}, {"warn", log_warn}}) {
    lua_pushlightuserdata(L, &context);
    lua_pushcclosure(L, fn, 1);
    lua_setfield(L, -2, name);
  }
  make_read_only(L, "log");
  sandbox.set_protected_global("log");

  lua_newtable(L);
  for (const auto& [key, value] : context.vars) {
    lua_pushlstring(L, value.data(), value.size());
    lua_setfield(L, -2, key.c_str());
  }
  make_read_only(L, "vars");
  sandbox.set_protected_global("vars");

  lua_pushlightuserdata(L, &k_empty_marker);
  sandbox.set_protected_global("EMPTY");
  lua_pushlightuserdata(L, &k_not_empty_marker);
  sandbox.set_protected_global("NOT_EMPTY");
}

}  // namespace host
