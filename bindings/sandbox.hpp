#pragma once
// A fresh, locked-down LuaJIT state for one recipe run: only the allow-listed
// libraries (bindings/sandbox_policy.cpp), text-only chunks, the JIT compiler
// off so that the instruction-count hook always fires, a deadline per call
// that pcall cannot swallow, and a capped allocator.
#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "bindings/watchdog.hpp"

struct lua_State;
struct lua_Debug;

namespace host {

struct SandboxLimits {
  std::size_t memory_bytes = 512u * 1024 * 1024;
  std::chrono::milliseconds time_per_call{10000};
};

class Sandbox {
 public:
  explicit Sandbox(SandboxLimits limits = {});
  ~Sandbox();
  Sandbox(const Sandbox&) = delete;
  Sandbox& operator=(const Sandbox&) = delete;

  lua_State* state() const { return m_state; }

  // Compiles `code` as text (never bytecode) under `chunk_name` ("@path" for
  // files) and pushes the function, whose environment is the sandbox globals.
  // A syntax error is a RecipeError naming file and line; nothing is pushed then.
  void load_text(const std::string& code, const std::string& chunk_name);

  // Lua shortens long file names in messages to "...<tail>": this puts back the
  // full path of every file loaded through load_text.
  std::string restore_source_paths(const std::string& message) const;

  // Pushes the globals table recipes see (a proxy that refuses to replace primitives).
  void push_globals();
  // Makes `name` a protected global: the value on top of the stack (popped).
  void set_protected_global(const std::string& name);

  // Starts the time budget of one call into Lua; the hook raises an error past it,
  // and what the hook cannot reach is left to the watchdog (bindings/watchdog.hpp).
  void arm_deadline();
  void disarm_deadline();
  // The call waited `waited` for the host, not for the recipe: not counted.
  void postpone_deadline(std::chrono::nanoseconds waited) { m_watchdog.postpone(waited.count()); }
  // What the next calls work on ("row id=5"), for the watchdog's message.
  void set_activity(const std::string& activity);
  // Run by the watchdog (on its own thread, the Lua thread stuck) with the error
  // message before the process ends: writes what can be written without Lua.
  void set_abandon_handler(std::function<void(const std::string&)> handler);

  // Marks a call into the host (a primitive): the watchdog leaves it alone.
  class HostCall {
   public:
    explicit HostCall(lua_State* state);
    ~HostCall();
    HostCall(const HostCall&) = delete;
    HostCall& operator=(const HostCall&) = delete;

   private:
    Sandbox* m_sandbox;
  };

  // After an error: was it (or anything swallowed before it) a limit breach?
  bool limit_breached() const { return m_timed_out || m_out_of_memory; }
  // A one-line description of the breached limit, or "".
  std::string breach_message() const;
  std::size_t memory_in_use() const { return m_memory_in_use; }

 private:
  static void* allocate(void* self, void* block, std::size_t old_size, std::size_t new_size);
  static void on_count_hook(lua_State* state, lua_Debug* debug);
  void install_policy();
  void install_hardened_functions();

  SandboxLimits m_limits;
  Watchdog m_watchdog;
  lua_State* m_state = nullptr;
  std::size_t m_memory_in_use = 0;
  bool m_timed_out = false;
  bool m_out_of_memory = false;
  std::vector<std::string> m_source_paths;
  int m_globals_ref = 0;
  int m_protected_ref = 0;
};

// The error value at `index` as one message that names where it came from:
// Lua's "file:line:" when it has one, else `source` (the recipe file) is put in
// front, also of non-string error values.
std::string error_text(lua_State* state, int index, const std::string& source);

// "file:line:" of the innermost Lua function active in `state`, or "".
std::string current_position(lua_State* state);

// Makes rawset refuse the table at `index` (a read-only proxy).
void mark_read_only(lua_State* state, int index);

// Raises a Lua error with `message`, prefixed by the position of the first Lua
// frame that called into C, so the recipe line is named. Never returns.
[[noreturn]] void raise_lua_error(lua_State* state, const std::string& message);

}  // namespace host
