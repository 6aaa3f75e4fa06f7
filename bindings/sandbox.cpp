#include "bindings/sandbox.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <lua.hpp>
#include <stdexcept>

#include "bindings/sandbox_policy.hpp"
#include "bindings/watchdog.hpp"
#include "host/errors.hpp"

namespace host {

namespace {

// Instructions between two looks at the clock: cheap, and a loop is stopped within microseconds.
constexpr int k_hook_instruction_count = 1000;

// Registry table whose keys are the read-only proxies rawset must refuse.
constexpr const char* k_read_only_tables = "host.read_only_tables";

int refuse_assignment(lua_State* L) {
  // Stack: proxy, key, value.
  lua_pushvalue(L, 2);
  lua_rawget(L, lua_upvalueindex(1));
  bool protected_name = !lua_isnil(L, -1);
  lua_pop(L, 1);
  if (protected_name) {
    const char* key = lua_tostring(L, 2);
    return luaL_error(L, "cannot replace the protected global '%s'", key ? key : "?");
  }
  lua_rawset(L, 1);
  return 0;
}

int refuse_library_change(lua_State* L) {
  const char* key = lua_tostring(L, 2);
  return luaL_error(L, "cannot modify a library table (key '%s')", key ? key : "?");
}

// rawset that cannot be pointed at the globals proxy or a read-only proxy
// (libraries, vars, log), where it would shadow what the proxy protects.
int guarded_rawset(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checkany(L, 2);
  luaL_checkany(L, 3);
  if (lua_rawequal(L, 1, lua_upvalueindex(1)))
    return luaL_error(L, "rawset on the globals table is not allowed");
  lua_getfield(L, LUA_REGISTRYINDEX, k_read_only_tables);
  lua_pushvalue(L, 1);
  lua_rawget(L, -2);
  if (lua_toboolean(L, -1)) return luaL_error(L, "rawset on a read-only table is not allowed");
  lua_settop(L, 3);
  lua_rawset(L, 1);
  return 1;
}

int report_limit_breached(lua_State* L) {
  void* self = nullptr;
  lua_getallocf(L, &self);
  lua_pushboolean(L, static_cast<Sandbox*>(self)->limit_breached());
  return 1;
}

// Replacements for functions that would let a recipe outlive its limits. pcall,
// xpcall and coroutine.resume re-raise once a limit is breached: otherwise
// `while true do pcall(function() while true do end end) end` would swallow the
// time-limit error forever. They are wrapped in Lua, not C, so that a primitive
// may still yield inside them. string.gsub with a function or table replacement
// recurses on the C stack, where deep nesting crashes the process instead of
// raising "stack overflow": its depth is capped.
constexpr const char* k_hardened_functions = R"lua(
local raw_pcall, raw_xpcall, raw_resume, raw_gsub, limit_breached, raise, type = ...
local function pass_on(ok, ...)
  if not ok and limit_breached() then raise((...), 0) end
  return ok, ...
end
local gsub_depth = 0
return function(f, ...) return pass_on(raw_pcall(f, ...)) end,
  function(f, handler, ...) return pass_on(raw_xpcall(f, handler, ...)) end,
  function(co, ...) return pass_on(raw_resume(co, ...)) end,
  function(s, pattern, replacement, n)
    local kind = type(replacement)
    if kind == "string" or kind == "number" then return raw_gsub(s, pattern, replacement, n) end
    -- Functions and tables (whose __index may call gsub again) are counted.
    if gsub_depth >= 16 then
      raise("string.gsub: replacements nested more than 16 deep", 2)
    end
    gsub_depth = gsub_depth + 1
    local ok, result, count = raw_pcall(raw_gsub, s, pattern, replacement, n)
    gsub_depth = gsub_depth - 1
    if not ok then
      -- gsub's own argument errors carry no position: give them the caller's line.
      if type(result) == "string" and not result:find("^[^%s:]+:%d+:") then raise(result, 2) end
      raise(result, 0)
    end
    return result, count
  end
)lua";

int throw_on_panic(lua_State* L) {
  const char* message = lua_tostring(L, -1);
  throw std::runtime_error(std::string("Lua panic: ") + (message ? message : "unknown error"));
}

}  // namespace

Sandbox::Sandbox(SandboxLimits limits) : m_limits(limits), m_watchdog(limits.time_per_call) {
  m_state = lua_newstate(&Sandbox::allocate, this);
  if (!m_state) throw std::runtime_error("cannot create a Lua state");
  lua_atpanic(m_state, throw_on_panic);
  // The JIT compiler would run loops as machine code where count hooks never fire.
  luaJIT_setmode(m_state, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
  install_policy();
  lua_sethook(m_state, &Sandbox::on_count_hook, LUA_MASKCOUNT, k_hook_instruction_count);
}

Sandbox::~Sandbox() {
  if (m_state) lua_close(m_state);
}

Sandbox::HostCall::HostCall(lua_State* state) {
  void* self = nullptr;
  lua_getallocf(state, &self);
  m_sandbox = static_cast<Sandbox*>(self);
  m_sandbox->m_watchdog.enter_host_call();
}

Sandbox::HostCall::~HostCall() { m_sandbox->m_watchdog.leave_host_call(); }

void mark_read_only(lua_State* L, int index) {
  if (index < 0) index = lua_gettop(L) + index + 1;
  lua_getfield(L, LUA_REGISTRYINDEX, k_read_only_tables);
  lua_pushvalue(L, index);
  lua_pushboolean(L, 1);
  lua_rawset(L, -3);
  lua_pop(L, 1);
}

void* Sandbox::allocate(void* self, void* block, std::size_t old_size, std::size_t new_size) {
  auto* sandbox = static_cast<Sandbox*>(self);
  if (new_size == 0) {
    std::free(block);
    sandbox->m_memory_in_use -= old_size;
    return nullptr;
  }
  if (new_size > old_size &&
      sandbox->m_memory_in_use + (new_size - old_size) > sandbox->m_limits.memory_bytes) {
    sandbox->m_out_of_memory = true;
    return nullptr;
  }
  void* moved = std::realloc(block, new_size);
  if (moved) sandbox->m_memory_in_use = sandbox->m_memory_in_use - old_size + new_size;
  return moved;
}

void Sandbox::on_count_hook(lua_State* L, lua_Debug*) {
  void* self = nullptr;
  lua_getallocf(L, &self);
  auto* sandbox = static_cast<Sandbox*>(self);
  // Growth stopped here, with room left, raises an ordinary error. Left to the
  // allocator's hard cap, a failed allocation deep inside LuaJIT (a table
  // resize in a coroutine) has crashed the error unwinder.
  const std::size_t soft_limit = sandbox->m_limits.memory_bytes / 8 * 7;
  if (sandbox->m_memory_in_use > soft_limit) lua_gc(L, LUA_GCCOLLECT, 0);  // garbage is not use
  if (sandbox->m_memory_in_use > soft_limit) {
    sandbox->m_out_of_memory = true;
    luaL_error(L, "memory limit of %d MiB exceeded",
               static_cast<int>(sandbox->m_limits.memory_bytes / (1024 * 1024)));
  }
  if (steady_now_ns() < sandbox->m_watchdog.deadline()) return;
  sandbox->m_timed_out = true;
  luaL_error(L, "time limit of %d ms exceeded (endless loop?)",
             static_cast<int>(sandbox->m_limits.time_per_call.count()));
}

void Sandbox::arm_deadline() {
  // A new call: a breach belongs to the call that made it (`host test` goes on
  // with its next test after one).
  m_timed_out = false;
  m_out_of_memory = false;
  m_watchdog.arm(
      steady_now_ns() +
      std::chrono::duration_cast<std::chrono::nanoseconds>(m_limits.time_per_call).count());
}

void Sandbox::disarm_deadline() { m_watchdog.disarm(); }

void Sandbox::set_abandon_handler(std::function<void(const std::string&)> handler) {
  m_watchdog.set_abandon_handler(std::move(handler));
}

void Sandbox::set_activity(const std::string& activity) { m_watchdog.set_activity(activity); }

std::string Sandbox::breach_message() const {
  if (m_timed_out)
    return "time limit of " + std::to_string(m_limits.time_per_call.count()) +
           " ms exceeded (endless loop?)";
  if (m_out_of_memory)
    return "memory limit of " + std::to_string(m_limits.memory_bytes / (1024 * 1024)) +
           " MiB exceeded";
  return "";
}

void Sandbox::install_policy() {
  lua_State* L = m_state;
  const std::pair<const char*, lua_CFunction> openers[] = {{"", luaopen_base},
                                                           {LUA_STRLIBNAME, luaopen_string},
                                                           {LUA_TABLIBNAME, luaopen_table},
                                                           {LUA_MATHLIBNAME, luaopen_math},
                                                           {LUA_BITLIBNAME, luaopen_bit}};
  for (const auto& [name, opener] : openers) {
    lua_pushcfunction(L, opener);
    lua_pushstring(L, name);
    lua_call(L, 1, 0);
  }
  lua_newtable(L);
  lua_setfield(L, LUA_REGISTRYINDEX, k_read_only_tables);
  install_hardened_functions();
  // Stack: protected (what the proxy reads through to).
  lua_newtable(L);
  int protected_index = lua_gettop(L);
  for (const auto& name : sandbox_policy::allowed_base_functions()) {
    lua_getglobal(L, name.c_str());
    lua_setfield(L, protected_index, name.c_str());
  }
  for (const auto& [library, members] : sandbox_policy::allowed_libraries()) {
    lua_getglobal(L, library.c_str());
    int real = lua_gettop(L);
    lua_newtable(L);
    int filtered = lua_gettop(L);
    for (const auto& member : members) {
      lua_getfield(L, real, member.c_str());
      lua_setfield(L, filtered, member.c_str());
    }
    if (library == LUA_STRLIBNAME) {
      // Methods on strings ("x"):rep() read through this metatable: point it at the
      // filtered table (no string.dump) and hide it from getmetatable.
      lua_pushliteral(L, "");
      lua_getmetatable(L, -1);
      lua_pushvalue(L, filtered);
      lua_setfield(L, -2, "__index");
      lua_pushboolean(L, 0);
      lua_setfield(L, -2, "__metatable");
      lua_pop(L, 2);
    }
    // A read-only proxy over the filtered table.
    lua_newtable(L);
    lua_newtable(L);
    lua_pushvalue(L, filtered);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, refuse_library_change);
    lua_setfield(L, -2, "__newindex");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    mark_read_only(L, -1);
    lua_setfield(L, protected_index, library.c_str());
    lua_settop(L, protected_index);
  }
  // The globals proxy.
  lua_newtable(L);
  int globals_index = lua_gettop(L);
  lua_newtable(L);
  lua_pushvalue(L, protected_index);
  lua_setfield(L, -2, "__index");
  lua_pushvalue(L, protected_index);
  lua_pushcclosure(L, refuse_assignment, 1);
  lua_setfield(L, -2, "__newindex");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, globals_index);
  lua_pushvalue(L, globals_index);
  lua_setfield(L, protected_index, "_G");
  lua_pushvalue(L, globals_index);
  lua_pushcclosure(L, guarded_rawset, 1);
  lua_setfield(L, protected_index, "rawset");

  lua_pushvalue(L, globals_index);
  lua_replace(L, LUA_GLOBALSINDEX);
  lua_pushvalue(L, globals_index);
  m_globals_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushvalue(L, protected_index);
  m_protected_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_settop(L, 0);
}

// Replaces pcall, xpcall, coroutine.resume and string.gsub in the real globals,
// before the allow list copies them (see k_hardened_functions).
void Sandbox::install_hardened_functions() {
  lua_State* L = m_state;
  if (luaL_loadbuffer(L, k_hardened_functions, std::strlen(k_hardened_functions), "=host") != 0)
    throw std::runtime_error("cannot load the hardened functions");
  lua_getglobal(L, "pcall");
  lua_getglobal(L, "xpcall");
  lua_getglobal(L, "coroutine");
  lua_getfield(L, -1, "resume");
  lua_remove(L, -2);
  lua_getglobal(L, "string");
  lua_getfield(L, -1, "gsub");
  lua_remove(L, -2);
  lua_pushcfunction(L, report_limit_breached);
  lua_getglobal(L, "error");
  lua_getglobal(L, "type");
  lua_call(L, 7, 4);
  lua_getglobal(L, "string");
  lua_pushvalue(L, -2);
  lua_setfield(L, -2, "gsub");
  lua_pop(L, 2);
  lua_getglobal(L, "coroutine");
  lua_pushvalue(L, -2);
  lua_setfield(L, -2, "resume");
  lua_pop(L, 2);
  lua_setglobal(L, "xpcall");
  lua_setglobal(L, "pcall");
}

void Sandbox::push_globals() { lua_rawgeti(m_state, LUA_REGISTRYINDEX, m_globals_ref); }

void Sandbox::set_protected_global(const std::string& name) {
  lua_rawgeti(m_state, LUA_REGISTRYINDEX, m_protected_ref);
  lua_insert(m_state, -2);
  lua_setfield(m_state, -2, name.c_str());
  lua_pop(m_state, 1);
}

std::string Sandbox::restore_source_paths(const std::string& message) const {
  std::string restored;
  std::size_t from = 0;
  for (auto dots = message.find("...", from); dots != std::string::npos;
       dots = message.find("...", from)) {
    auto colon = message.find(':', dots);
    std::string tail =
        message.substr(dots + 3, colon == std::string::npos ? colon : colon - dots - 3);
    restored += message.substr(from, dots - from);
    auto full =
        std::find_if(m_source_paths.begin(), m_source_paths.end(), [&](const std::string& p) {
          return !tail.empty() && p.size() > tail.size() &&
                 p.compare(p.size() - tail.size(), tail.size(), tail) == 0;
        });
    restored += full != m_source_paths.end() ? *full : "..." + tail;
    from = dots + 3 + tail.size();
  }
  return restored + message.substr(from);
}

void Sandbox::load_text(const std::string& code, const std::string& chunk_name) {
  if (chunk_name.size() > 1 && chunk_name[0] == '@' &&
      std::find(m_source_paths.begin(), m_source_paths.end(), chunk_name.substr(1)) ==
          m_source_paths.end())
    m_source_paths.push_back(chunk_name.substr(1));
  // The first file is the recipe; loaded before the watchdog thread starts.
  if (m_source_paths.size() == 1 && !m_watchdog.started()) m_watchdog.set_source(m_source_paths[0]);
  if (luaL_loadbufferx(m_state, code.data(), code.size(), chunk_name.c_str(), "t") != 0) {
    std::string message = lua_tostring(m_state, -1) ? lua_tostring(m_state, -1) : "load error";
    lua_pop(m_state, 1);
    if (message.find("attempt to load a binary chunk") != std::string::npos ||
        message.find("attempt to load chunk with wrong mode") != std::string::npos)
      message = chunk_name.substr(1) + ": bytecode is not accepted, only Lua source text";
    throw RecipeError(message);
  }
}

namespace {

// "file:line: ..." as Lua's error positions read (no regex: std::regex recurses
// per character and overflows the stack on long messages).
bool has_position(const std::string& message) {
  auto colon = message.find(':');
  if (colon == 0 || colon == std::string::npos) return false;
  for (std::size_t i = 0; i < colon; ++i)
    if (std::isspace(static_cast<unsigned char>(message[i]))) return false;
  std::size_t digits = colon + 1;
  while (digits < message.size() && std::isdigit(static_cast<unsigned char>(message[digits])))
    ++digits;
  return digits > colon + 1 && digits < message.size() && message[digits] == ':';
}

}  // namespace

std::string error_text(lua_State* L, int index, const std::string& source) {
  if (!lua_isstring(L, index))
    return source + ": error(" + luaL_typename(L, index) + " value) raised without a message";
  std::string message = lua_tostring(L, index);
  if (has_position(message) || message.rfind(source + ":", 0) == 0) return message;
  return source + ": " + message;
}

std::string current_position(lua_State* L) {
  lua_Debug frame;
  for (int level = 0; lua_getstack(L, level, &frame); ++level)
    // Chunks named "=..." are the host's own wrappers, not the recipe's code.
    if (lua_getinfo(L, "Sl", &frame) && frame.currentline > 0 && frame.source[0] != '=')
      return std::string(frame.short_src) + ":" + std::to_string(frame.currentline) + ":";
  return "";
}

void raise_lua_error(lua_State* L, const std::string& message) {
  luaL_where(L, 1);
  lua_pushlstring(L, message.data(), message.size());
  lua_concat(L, 2);
  lua_error(L);
  std::abort();  // lua_error does not return
}

}  // namespace host
