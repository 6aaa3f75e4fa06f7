// End to end: one test per sandbox attack (DESIGN.md "Sandbox", RECIPE_API.md
// sections 2, 5, 6 and 8), driven through the built `host` binary against a fresh
// database. Every attack recipe first queues an ordinary write and then attacks:
// a refused attack must stop the run (exit 1, one clear line naming the recipe
// file), leave files, tables, sequences and the ledger exactly as they were, and
// the host process must survive to say so.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "host/process.hpp"
#include "tests/e2e/e2e_helpers.hpp"

using namespace host::testing;
using namespace host::testing::e2e;

namespace {

// Attack recipes put the attack on this line (see attack_recipe).
constexpr int k_attack_line = 7;

// Generous bounds: a host that stops runaways itself finishes in well under a second.
// A host that does not is killed at the bound, so a miss fails a test, never hangs the suite.
constexpr int k_bound_seconds = 60;
constexpr int k_runaway_bound_seconds = 15;
// `timeout` exits with this when it had to kill the host.
constexpr int k_killed_at_bound = 124;

const char* const k_target_schema = R"sql(
CREATE TABLE t (id int PRIMARY KEY, status text, note text);
INSERT INTO t VALUES (1, NULL, NULL), (2, NULL, 'kept');
CREATE TABLE victim (id int PRIMARY KEY, v text);
INSERT INTO victim VALUES (1, 'original');
CREATE SEQUENCE victim_seq;
CREATE TABLE write_log (n int);
CREATE FUNCTION log_a_write() RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO write_log VALUES (1);
  RETURN 1;
END $$;
)sql";

// A database seeded with k_target_schema, its state before the attack, and a file
// path that no attack may create.
struct Target {
  std::string db;
  std::string tables_before;
  std::string sequence_before;
  std::string marker;
};

std::string sequence_state(const std::string& db) {
  return value(db, "SELECT last_value || '|' || is_called FROM victim_seq");
}

Target prepared_target() {
  Target target;
  target.db = fresh_database();
  sql(target.db, k_target_schema);
  target.tables_before = dump_user_tables(target.db);
  target.sequence_before = sequence_state(target.db);
  target.marker = scratch_folder() + "/marker_" + next_suffix();
  return target;
}

// Like run_recipe, but under coreutils `timeout`, so a runaway the host fails to stop
// shows up as exit code 124 instead of a hung test suite.
HostRun run_bounded(const std::string& db, const std::string& recipe,
                    const std::vector<std::string>& extra = {},
                    int bound_seconds = k_bound_seconds) {
  std::string report = scratch_folder() + "/report_" + next_suffix() + ".json";
  std::vector<std::string> argv = {
      "timeout", "-k", "5", std::to_string(bound_seconds), HOST_BINARY, "run", recipe, "--db", db};
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.insert(argv.end(), {"--report", report, "--quiet"});
  auto result = host::run_process(argv);
  HostRun run;
  run.exit_code = result.exit_code;
  run.output = result.output;
  if (std::filesystem::exists(report)) run.report = read_json(report);
  run.run_id =
      run.report.is_object() && run.report.contains("run_id") && run.report["run_id"].is_string()
          ? run.report["run_id"].get<std::string>()
          : run_id_in(run.output);
  return run;
}

// A run with small limits: 1 s of Lua per call (a loaded machine may stall a call that
// much; less would fail a recipe before its first row) and 32 MiB. Memory bombs get more
// time, so that it is the memory limit that stops them.
enum class Limit { time, memory };

HostRun run_runaway(const std::string& db, const std::string& recipe, Limit limit = Limit::time) {
  std::string timeout_ms = limit == Limit::time ? "1000" : "5000";
  return run_bounded(db, recipe, {"--timeout-ms", timeout_ms, "--memory-mb", "32"},
                     k_runaway_bound_seconds);
}

// A recipe that queues a write to t.status for its row, then runs `attack` (which
// starts on k_attack_line). If the attack is refused, the queued write must never land.
std::string attack_recipe(const std::string& stem, const std::string& attack) {
  return recipe_file(stem,
                     "return {\n"
                     "  name = \"attack-" +
                         stem +
                         "\",\n"
                         "  table = \"t\",\n"
                         "  writes = { t = { \"status\" } },\n"
                         "  each = function(row)\n"
                         "    patch_if_empty(row, \"status\", \"written by an attacker\")\n" +
                         attack +
                         "\n"
                         "  end,\n"
                         "}\n");
}

// A recipe whose `prelude` (starting on line 1) runs while the recipe file is loaded.
std::string load_time_recipe(const std::string& stem, const std::string& prelude) {
  return recipe_file(stem, prelude +
                               "\n"
                               "return {\n"
                               "  name = \"attack-" +
                               stem +
                               "\",\n"
                               "  table = \"t\",\n"
                               "  writes = { t = { \"status\" } },\n"
                               "  each = function(row)\n"
                               "    patch_if_empty(row, \"status\", \"written by an attacker\")\n"
                               "  end,\n"
                               "}\n");
}

// Writes `content` into the folder of `recipe`, where `require` looks first.
void write_beside(const std::string& recipe, const std::string& name, const std::string& content) {
  auto path = std::filesystem::path(recipe).parent_path() / name;
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file << content;
}

// How a refused attack must end.
struct Refusal {
  std::string where;    // "stem.lua:7", or "stem.lua" where no line applies
  std::string row_key;  // "id=1", or "" when no row was being processed
  std::string why;      // a word the message must contain besides paths, or ""
};

void check_nothing_happened(const Target& target, const HostRun& run) {
  CHECK(dump_user_tables(target.db) == target.tables_before);
  CHECK(sequence_state(target.db) == target.sequence_before);
  CHECK(ledger_rows(target.db, "changes") == 0);
  auto status = ledger_status(target.db, run.run_id);
  INFO("ledger status of the run: " << status);
  CHECK((status == "failed" || status == "<none>"));
  CHECK_FALSE(std::filesystem::exists(target.marker));
}

void check_refused(const Target& target, const HostRun& run, const Refusal& expected) {
  INFO("host output:\n" << run.output);
  INFO((run.exit_code == k_killed_at_bound
            ? std::string("the host hung: killed at the test's bound")
            : "host exit code " + std::to_string(run.exit_code)));
  CHECK(run.exit_code == 1);
  auto lines = message_lines(run.output);
  CHECK(lines.size() == 1);
  CHECK((!lines.empty() && lines.front().rfind("host: ", 0) == 0));
  CHECK(mentions(run.output, expected.where));
  if (!expected.row_key.empty()) CHECK(mentions(run.output, expected.row_key));
  if (!expected.why.empty()) CHECK(mentions(without_paths(run.output), expected.why));
  if (run.report.is_object()) CHECK(run.report["status"] == "failed");
  check_nothing_happened(target, run);
}

std::string at_attack_line(const std::string& stem) {
  return stem + ".lua:" + std::to_string(k_attack_line);
}

std::string lua_string(const std::string& text) { return "[[" + text + "]]"; }

}  // namespace

TEST_CASE("io.open and io.write cannot touch files or the terminal", "[sandbox][e2e]") {
  auto target = prepared_target();
  SECTION("io.open for writing") {
    auto recipe = attack_recipe(
        "io_open", "    io.open(" + lua_string(target.marker) + ", 'w'):write('pwned')");
    check_refused(target, run_bounded(target.db, recipe),
                  {at_attack_line("io_open"), "id=1", "io"});
  }
  SECTION("io.write to standard output") {
    auto recipe = attack_recipe("io_write", "    io.write('pwned-by-io-write')");
    auto run = run_bounded(target.db, recipe);
    CHECK_FALSE(mentions(run.output, "pwned-by-io-write"));
    check_refused(target, run, {at_attack_line("io_write"), "id=1", "io"});
  }
  SECTION("io.lines reading a file") {
    auto recipe = attack_recipe("io_lines", "    for line in io.lines('/etc/passwd') do end");
    check_refused(target, run_bounded(target.db, recipe),
                  {at_attack_line("io_lines"), "id=1", "io"});
  }
}

TEST_CASE("os.execute cannot run a command", "[sandbox][e2e]") {
  auto target = prepared_target();
  auto recipe =
      attack_recipe("os_execute", "    os.execute('touch ' .. " + lua_string(target.marker) + ")");
  check_refused(target, run_bounded(target.db, recipe),
                {at_attack_line("os_execute"), "id=1", "os"});
}

TEST_CASE("os.remove and os.rename cannot delete or move files", "[sandbox][e2e]") {
  auto target = prepared_target();
  auto precious = write_file("precious_" + next_suffix() + ".txt", "keep me");
  SECTION("os.remove") {
    auto recipe = attack_recipe("os_remove", "    os.remove(" + lua_string(precious) + ")");
    check_refused(target, run_bounded(target.db, recipe),
                  {at_attack_line("os_remove"), "id=1", "os"});
  }
  SECTION("os.rename") {
    auto recipe = attack_recipe("os_rename", "    os.rename(" + lua_string(precious) + ", " +
                                                 lua_string(target.marker) + ")");
    check_refused(target, run_bounded(target.db, recipe),
                  {at_attack_line("os_rename"), "id=1", "os"});
  }
  CHECK(std::filesystem::exists(precious));
}

TEST_CASE("io.popen cannot run a command", "[sandbox][e2e]") {
  auto target = prepared_target();
  auto recipe =
      attack_recipe("io_popen", "    io.popen('touch ' .. " + lua_string(target.marker) + ")");
  check_refused(target, run_bounded(target.db, recipe), {at_attack_line("io_popen"), "id=1", "io"});
}

TEST_CASE("the ffi library cannot be reached", "[sandbox][e2e]") {
  auto target = prepared_target();
  std::string call_system =
      "ffi.cdef('int system(const char *command);') ffi.C.system('touch ' .. " +
      lua_string(target.marker) + ")";
  SECTION("require 'ffi'") {
    auto recipe = attack_recipe("require_ffi", "    local ffi = require 'ffi' " + call_system);
    check_refused(target, run_bounded(target.db, recipe),
                  {at_attack_line("require_ffi"), "id=1", "ffi"});
  }
  SECTION("a global ffi") {
    auto recipe = attack_recipe("global_ffi", "    " + call_system);
    check_refused(target, run_bounded(target.db, recipe),
                  {at_attack_line("global_ffi"), "id=1", "ffi"});
  }
  SECTION("through package.loaded") {
    auto recipe = attack_recipe("loaded_ffi", "    local ffi = package.loaded.ffi " + call_system);
    check_refused(target, run_bounded(target.db, recipe),
                  {at_attack_line("loaded_ffi"), "id=1", "package"});
  }
}

TEST_CASE("the jit library is absent, so it cannot turn the compiler back on", "[sandbox][e2e]") {
  auto target = prepared_target();
  SECTION("jit.on") {
    auto recipe = attack_recipe("jit_on", "    jit.on()");
    check_refused(target, run_bounded(target.db, recipe),
                  {at_attack_line("jit_on"), "id=1", "jit"});
  }
  SECTION("jit.off and jit.flush") {
    auto recipe = attack_recipe("jit_off", "    jit.off() jit.flush()");
    check_refused(target, run_bounded(target.db, recipe),
                  {at_attack_line("jit_off"), "id=1", "jit"});
  }
  SECTION("require 'jit.opt'") {
    auto recipe = attack_recipe("jit_opt", "    require('jit.opt').start('hotloop=1')");
    check_refused(target, run_bounded(target.db, recipe),
                  {at_attack_line("jit_opt"), "id=1", "jit"});
  }
}

TEST_CASE("bytecode is never loaded", "[sandbox][e2e]") {
  auto target = prepared_target();
  // The LuaJIT bytecode header: ESC 'L' 'J', version 2, then flags and a body.
  const std::string bytecode =
      std::string("\x1bLJ\x02\x0a", 5) + std::string("\x00\x01\x02\x03", 4);
  SECTION("loadstring of a binary chunk") {
    auto recipe = attack_recipe("loadstring", "    loadstring('\\27LJ\\2\\10\\0\\1\\2')()");
    check_refused(target, run_bounded(target.db, recipe),
                  {at_attack_line("loadstring"), "id=1", "loadstring"});
  }
  SECTION("load with a reader function") {
    auto recipe = attack_recipe(
        "load_reader",
        "    local sent = false "
        "load(function() if sent then return nil end sent = true return '\\27LJ\\2' end)()");
    check_refused(target, run_bounded(target.db, recipe),
                  {at_attack_line("load_reader"), "id=1", "load"});
  }
  SECTION("string.dump") {
    auto recipe = attack_recipe("string_dump", "    local code = string.dump(function() end)");
    check_refused(target, run_bounded(target.db, recipe),
                  {at_attack_line("string_dump"), "id=1", "dump"});
  }
  SECTION("dump reached as a string method") {
    auto recipe = attack_recipe("method_dump", "    local code = (''):dump(function() end)");
    check_refused(target, run_bounded(target.db, recipe),
                  {at_attack_line("method_dump"), "id=1", "dump"});
  }
  SECTION("a recipe file that is bytecode") {
    auto recipe = recipe_file("bytecode_recipe", bytecode);
    check_refused(target, run_bounded(target.db, recipe), {"bytecode_recipe.lua", "", "bytecode"});
  }
  SECTION("a required module that is bytecode") {
    auto recipe = attack_recipe("bytecode_module", "    require 'compiled'");
    write_beside(recipe, "compiled.lua", bytecode);
    check_refused(target, run_bounded(target.db, recipe),
                  {at_attack_line("bytecode_module"), "id=1", "bytecode"});
  }
}

TEST_CASE("the debug library is absent", "[sandbox][e2e]") {
  auto target = prepared_target();
  SECTION("debug.sethook removes the time limit") {
    auto recipe = attack_recipe("debug_sethook", "    debug.sethook() while true do end");
    check_refused(target, run_runaway(target.db, recipe),
                  {at_attack_line("debug_sethook"), "id=1", "debug"});
  }
  SECTION("debug.getinfo") {
    auto recipe = attack_recipe("debug_getinfo", "    local info = debug.getinfo(1, 'S')");
    check_refused(target, run_bounded(target.db, recipe),
                  {at_attack_line("debug_getinfo"), "id=1", "debug"});
  }
  SECTION("debug.getregistry") {
    auto recipe = attack_recipe("debug_registry", "    local registry = debug.getregistry()");
    check_refused(target, run_bounded(target.db, recipe),
                  {at_attack_line("debug_registry"), "id=1", "debug"});
  }
  SECTION("debug.setmetatable on strings") {
    auto recipe =
        attack_recipe("debug_setmetatable", "    debug.setmetatable('', { __index = {} })");
    check_refused(target, run_bounded(target.db, recipe),
                  {at_attack_line("debug_setmetatable"), "id=1", "debug"});
  }
}

TEST_CASE("package, package.loadlib and C modules are out of reach", "[sandbox][e2e]") {
  auto target = prepared_target();
  SECTION("package.loadlib") {
    auto recipe =
        attack_recipe("package_loadlib", "    package.loadlib('libc.so.6', 'system')('true')");
    check_refused(target, run_bounded(target.db, recipe),
                  {at_attack_line("package_loadlib"), "id=1", "package"});
  }
  SECTION("package.cpath") {
    auto recipe = attack_recipe("package_cpath", "    package.cpath = '/tmp/?.so'");
    check_refused(target, run_bounded(target.db, recipe),
                  {at_attack_line("package_cpath"), "id=1", "package"});
  }
  SECTION("require of a C module next to the recipe") {
    auto recipe = attack_recipe("require_c", "    require 'native'");
    write_beside(recipe, "native.so",
                 "\x7f"
                 "ELF not really a shared object");
    check_refused(target, run_bounded(target.db, recipe),
                  {at_attack_line("require_c"), "id=1", "native"});
  }
  SECTION("require of a system module") {
    auto recipe = attack_recipe(
        "require_os", "    require('os').execute('touch ' .. " + lua_string(target.marker) + ")");
    check_refused(target, run_bounded(target.db, recipe),
                  {at_attack_line("require_os"), "id=1", "os"});
  }
}

TEST_CASE("getfenv and setfenv are absent", "[sandbox][e2e]") {
  auto target = prepared_target();
  SECTION("getfenv(0) to reach the real globals") {
    auto recipe = attack_recipe(
        "getfenv", "    getfenv(0).os.execute('touch ' .. " + lua_string(target.marker) + ")");
    check_refused(target, run_bounded(target.db, recipe),
                  {at_attack_line("getfenv"), "id=1", "getfenv"});
  }
  SECTION("getfenv of a primitive") {
    auto recipe = attack_recipe("getfenv_primitive", "    local env = getfenv(patch_if_empty)");
    check_refused(target, run_bounded(target.db, recipe),
                  {at_attack_line("getfenv_primitive"), "id=1", "getfenv"});
  }
  SECTION("setfenv(1, {}) and then calling on") {
    auto recipe = attack_recipe("setfenv",
                                "    setfenv(1, { patch_if_empty = function() return true end }) "
                                "patch_if_empty(row, 'status', 'again')");
    check_refused(target, run_bounded(target.db, recipe),
                  {at_attack_line("setfenv"), "id=1", "setfenv"});
  }
}

TEST_CASE("a primitive cannot be overridden", "[sandbox][e2e]") {
  auto target = prepared_target();
  SECTION("by assignment while processing a row") {
    auto recipe =
        attack_recipe("assign_primitive", "    patch_if_empty = function() return true end");
    check_refused(target, run_bounded(target.db, recipe),
                  {at_attack_line("assign_primitive"), "id=1", "patch_if_empty"});
  }
  SECTION("through _G") {
    auto recipe =
        attack_recipe("g_primitive", "    _G.patch_if_empty = function() return true end");
    check_refused(target, run_bounded(target.db, recipe),
                  {at_attack_line("g_primitive"), "id=1", "patch_if_empty"});
  }
  SECTION("with rawset on _G") {
    auto recipe = attack_recipe("rawset_primitive",
                                "    rawset(_G, 'patch_if_empty', function() return true end)");
    check_refused(target, run_bounded(target.db, recipe),
                  {at_attack_line("rawset_primitive"), "id=1", "rawset"});
  }
  SECTION("while the recipe file loads") {
    auto recipe = load_time_recipe("load_primitive", "query = function() return {} end");
    check_refused(target, run_bounded(target.db, recipe), {"load_primitive.lua:1", "", "query"});
  }
  SECTION("the host's require, which guards against bytecode") {
    auto recipe = attack_recipe("assign_require", "    require = function() return {} end");
    check_refused(target, run_bounded(target.db, recipe),
                  {at_attack_line("assign_require"), "id=1", "require"});
  }
}

TEST_CASE("rawset and setmetatable cannot change the globals table", "[sandbox][e2e]") {
  auto target = prepared_target();
  SECTION("rawset of a new global") {
    auto recipe = attack_recipe("rawset_global", "    rawset(_G, 'smuggled', 1)");
    check_refused(target, run_bounded(target.db, recipe),
                  {at_attack_line("rawset_global"), "id=1", "rawset"});
  }
  SECTION("setmetatable(_G, nil) to drop the guard") {
    auto recipe = attack_recipe("drop_guard", "    setmetatable(_G, nil) patch_if_empty = print");
    check_refused(target, run_bounded(target.db, recipe),
                  {at_attack_line("drop_guard"), "id=1", "metatable"});
  }
  SECTION("getmetatable(_G) to reach the real globals") {
    auto recipe =
        attack_recipe("globals_metatable", "    getmetatable(_G).__index.patch_if_empty = print");
    check_refused(target, run_bounded(target.db, recipe),
                  {at_attack_line("globals_metatable"), "id=1", ""});
  }
}

// The contract calls `vars` read-only and the library tables are meant to be; rawset
// must not be a way around either (a shared module could be sabotaged through them).
TEST_CASE("rawset cannot change library tables, vars or log", "[sandbox][e2e]") {
  auto target = prepared_target();
  SECTION("a library function") {
    auto recipe = attack_recipe("rawset_library",
                                "    rawset(string, 'rep', function() return 'pwned' end) "
                                "assert(string.rep('a', 2) == 'aa', 'string.rep was replaced')");
    check_refused(target, run_bounded(target.db, recipe),
                  {at_attack_line("rawset_library"), "id=1", "rawset"});
  }
  SECTION("vars") {
    auto recipe = attack_recipe("rawset_vars",
                                "    rawset(vars, 'mode', 'evil') "
                                "assert(vars.mode == nil, 'vars was changed')");
    check_refused(target, run_bounded(target.db, recipe),
                  {at_attack_line("rawset_vars"), "id=1", "rawset"});
  }
  SECTION("log") {
    auto recipe = attack_recipe("rawset_log",
                                "    rawset(log, 'info', 'gone') "
                                "assert(type(log.info) == 'function', 'log was changed')");
    check_refused(target, run_bounded(target.db, recipe),
                  {at_attack_line("rawset_log"), "id=1", "rawset"});
  }
}

TEST_CASE("the string metatable cannot be tampered with", "[sandbox][e2e]") {
  auto target = prepared_target();
  SECTION("getmetatable('').__index") {
    auto recipe = attack_recipe("string_index", "    getmetatable('').__index = { upper = print }");
    check_refused(target, run_bounded(target.db, recipe),
                  {at_attack_line("string_index"), "id=1", ""});
  }
  SECTION("setmetatable on a string") {
    auto recipe = attack_recipe("string_setmetatable", "    setmetatable('', { __index = {} })");
    check_refused(target, run_bounded(target.db, recipe),
                  {at_attack_line("string_setmetatable"), "id=1", "setmetatable"});
  }
  SECTION("assigning into the string library") {
    auto recipe =
        attack_recipe("string_assign", "    string.upper = function() return 'pwned' end");
    check_refused(target, run_bounded(target.db, recipe),
                  {at_attack_line("string_assign"), "id=1", "upper"});
  }
}

TEST_CASE("a write outside `writes` is refused before anything is sent", "[sandbox][e2e]") {
  auto target = prepared_target();
  SECTION("a column of an allowed table") {
    auto recipe = attack_recipe("other_column", "    patch_if(row, 'note', 'kept', 'overwritten')");
    check_refused(target, run_bounded(target.db, recipe),
                  {at_attack_line("other_column"), "id=1", "note"});
  }
  SECTION("a table that is not listed") {
    auto recipe =
        attack_recipe("other_table", "    insert_if_absent('victim', { id = 2, v = 'smuggled' })");
    check_refused(target, run_bounded(target.db, recipe),
                  {at_attack_line("other_table"), "id=1", "victim"});
  }
  SECTION("fill_from into a table that is not listed") {
    auto recipe =
        attack_recipe("fill_other", "    fill_from('victim', { id = 1, v = 'smuggled' })");
    check_refused(target, run_bounded(target.db, recipe),
                  {at_attack_line("fill_other"), "id=1", "victim"});
  }
  SECTION("a quoted identifier smuggling SQL") {
    auto recipe = attack_recipe("quoted_column",
                                "    patch_if_empty(row, 'status\"; DROP TABLE victim; --', 'x')");
    check_refused(target, run_bounded(target.db, recipe),
                  {at_attack_line("quoted_column"), "id=1", ""});
  }
}

TEST_CASE("query refuses INSERT, UPDATE, DELETE and DDL", "[sandbox][e2e]") {
  auto target = prepared_target();
  const std::vector<std::string> statements = {
      "INSERT INTO victim VALUES (2, 'smuggled')",
      "UPDATE victim SET v = 'overwritten' RETURNING *",
      "DELETE FROM victim RETURNING *",
      "DROP TABLE victim",
      "TRUNCATE victim",
      "CREATE TABLE smuggled (id int)",
      "ALTER TABLE victim ADD COLUMN smuggled int",
      "COMMIT",
  };
  for (const auto& statement : statements) {
    DYNAMIC_SECTION(statement) {
      auto recipe = attack_recipe("query_write", "    query(" + lua_string(statement) + ")");
      check_refused(target, run_bounded(target.db, recipe),
                    {at_attack_line("query_write"), "id=1", ""});
      CHECK(value(target.db, "SELECT to_regclass('smuggled') IS NULL") == "t");
    }
  }
}

TEST_CASE("query refuses a data-modifying WITH", "[sandbox][e2e]") {
  auto target = prepared_target();
  auto recipe = attack_recipe(
      "query_cte", "    query('WITH gone AS (DELETE FROM victim RETURNING *) SELECT * FROM gone')");
  check_refused(target, run_bounded(target.db, recipe), {at_attack_line("query_cte"), "id=1", ""});
}

TEST_CASE("query refuses a second statement", "[sandbox][e2e]") {
  auto target = prepared_target();
  SECTION("after a semicolon") {
    auto recipe = attack_recipe("query_two", "    query('SELECT 1; DROP TABLE victim')");
    check_refused(target, run_bounded(target.db, recipe),
                  {at_attack_line("query_two"), "id=1", ""});
  }
  SECTION("closing the host's own wrapping first") {
    auto recipe = attack_recipe(
        "query_escape", "    query('SELECT 1) AS a; DROP TABLE victim; SELECT * FROM (SELECT 1')");
    check_refused(target, run_bounded(target.db, recipe),
                  {at_attack_line("query_escape"), "id=1", ""});
  }
  SECTION("committing the queued write early") {
    auto recipe = attack_recipe("query_commit", "    query('SELECT 1) AS a; COMMIT; --')");
    check_refused(target, run_bounded(target.db, recipe),
                  {at_attack_line("query_commit"), "id=1", ""});
  }
}

// A sequence is not transactional: a nextval that ran would stay advanced even
// after a rollback, so it has to be refused outright.
TEST_CASE("query cannot advance a sequence", "[sandbox][e2e]") {
  auto target = prepared_target();
  SECTION("nextval") {
    auto recipe = attack_recipe("query_nextval", "    query(\"SELECT nextval('victim_seq')\")");
    check_refused(target, run_bounded(target.db, recipe),
                  {at_attack_line("query_nextval"), "id=1", "nextval"});
  }
  SECTION("setval") {
    auto recipe = attack_recipe("query_setval", "    query(\"SELECT setval('victim_seq', 1000)\")");
    check_refused(target, run_bounded(target.db, recipe),
                  {at_attack_line("query_setval"), "id=1", "setval"});
  }
}

TEST_CASE("query cannot call a function that writes", "[sandbox][e2e]") {
  auto target = prepared_target();
  auto recipe = attack_recipe("query_function", "    query('SELECT log_a_write() AS n')");
  check_refused(target, run_bounded(target.db, recipe),
                {at_attack_line("query_function"), "id=1", ""});
  CHECK(value(target.db, "SELECT count(*) FROM write_log") == "0");
}

TEST_CASE("query cannot leave read-only mode or change the session's settings", "[sandbox][e2e]") {
  auto target = prepared_target();
  SECTION("set_config('transaction_read_only', 'off')") {
    auto recipe =
        attack_recipe("query_read_write",
                      "    query(\"SELECT set_config('transaction_read_only', 'off', false)\") "
                      "query('SELECT log_a_write()')");
    check_refused(target, run_bounded(target.db, recipe),
                  {at_attack_line("query_read_write"), "id=1", "set_config"});
  }
  SECTION("SET as a statement") {
    auto recipe = attack_recipe("query_set", "    query('SET transaction_read_only = off')");
    check_refused(target, run_bounded(target.db, recipe),
                  {at_attack_line("query_set"), "id=1", ""});
  }
  SECTION("set_config of a session setting is refused (it is volatile)") {
    std::string search_path = value(target.db, "SHOW search_path");
    auto recipe = attack_recipe(
        "query_search_path", "    query(\"SELECT set_config('search_path', 'pg_temp', false)\")");
    check_refused(target, run_bounded(target.db, recipe),
                  {at_attack_line("query_search_path"), "id=1", "set_config"});
    CHECK(value(target.db, "SHOW search_path") == search_path);
  }
}

// While the recipe file loads there is no run transaction yet: read-only must not
// depend on one.
TEST_CASE("query while the recipe file loads cannot write either", "[sandbox][e2e]") {
  auto target = prepared_target();
  SECTION("a function that writes") {
    auto recipe = load_time_recipe("load_query_function", "query('SELECT log_a_write() AS n')");
    auto run = run_bounded(target.db, recipe);
    check_refused(target, run, {"load_query_function.lua:1", "", ""});
  }
  SECTION("nextval") {
    auto recipe = load_time_recipe("load_query_nextval", "query(\"SELECT nextval('victim_seq')\")");
    auto run = run_bounded(target.db, recipe);
    check_refused(target, run, {"load_query_nextval.lua:1", "", ""});
  }
  CHECK(value(target.db, "SELECT count(*) FROM write_log") == "0");
}

TEST_CASE("a where string cannot write", "[sandbox][e2e]") {
  auto target = prepared_target();
  auto recipe = recipe_file("where_writes", R"lua(
return {
  name = "where-writes",
  table = "t",
  where = "log_a_write() = 1",
  writes = { t = { "status" } },
  each = function(row) patch_if_empty(row, "status", "written by an attacker") end,
}
)lua");
  check_refused(target, run_bounded(target.db, recipe), {"where_writes.lua", "", ""});
  CHECK(value(target.db, "SELECT count(*) FROM write_log") == "0");
}

TEST_CASE("identifiers a recipe passes never become SQL", "[sandbox][e2e]") {
  auto target = prepared_target();
  auto recipe = recipe_file("identifiers", R"lua(
return {
  name = "identifiers",
  table = "t",
  writes = { t = { "status" } },
  each = function(row)
    local attempts = {
      function() return read("victim; DROP TABLE victim; --", {}) end,
      function() return read("victim", { ["id = 1; DROP TABLE victim; --"] = 1 }) end,
      function() return read("victim", {}, { order_by = "id; DROP TABLE victim" }) end,
      function() return read("victim", {}, { columns = { "v\"; DROP TABLE victim; --" } }) end,
      function() return read_all("victim", {}, { order_by = { "id", "desc; DROP TABLE victim" } }) end,
      function() return read("victim", "true; DROP TABLE victim") end,
    }
    local refused = 0
    for _, attempt in ipairs(attempts) do
      if not pcall(attempt) then refused = refused + 1 end
    end
    audit("refused", { count = refused, of = #attempts })
    patch_if_empty(row, "status", "after the attempts")
  end,
}
)lua");
  auto run = run_bounded(target.db, recipe);
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  REQUIRE(run.report.contains("audit"));
  for (const auto& event : run.report["audit"])
    CHECK(event["data"]["count"] == event["data"]["of"]);
  CHECK(rows(target.db, "SELECT id, v FROM victim") == std::vector<std::string>{"1|original"});
}

TEST_CASE("while true do end is stopped by the time limit", "[sandbox][e2e]") {
  auto target = prepared_target();
  SECTION("while processing a row") {
    auto recipe = attack_recipe("endless_loop", "    while true do end");
    check_refused(target, run_runaway(target.db, recipe),
                  {"endless_loop.lua", "id=1", "time limit"});
  }
  SECTION("while the recipe file loads") {
    auto recipe = load_time_recipe("endless_load", "while true do end");
    check_refused(target, run_runaway(target.db, recipe), {"endless_load.lua", "", "time limit"});
  }
  SECTION("in verify") {
    auto recipe = recipe_file("endless_verify", R"lua(
return {
  name = "endless-verify",
  table = "t",
  writes = { t = { "status" } },
  each = function(row) patch_if_empty(row, "status", "written by an attacker") end,
  verify = function() while true do end end,
}
)lua");
    check_refused(target, run_runaway(target.db, recipe), {"endless_verify.lua", "", "time limit"});
  }
}

TEST_CASE("pcall cannot swallow the time limit", "[sandbox][e2e]") {
  auto target = prepared_target();
  SECTION("pcall around an endless loop, in an endless loop") {
    auto recipe = attack_recipe("pcall_loop",
                                "    while true do pcall(function() while true do end end) end");
    check_refused(target, run_runaway(target.db, recipe), {"pcall_loop.lua", "id=1", "time limit"});
  }
  SECTION("xpcall with a handler, in an endless loop") {
    auto recipe = attack_recipe(
        "xpcall_loop",
        "    while true do xpcall(function() while true do end end, function(e) return e end) end");
    check_refused(target, run_runaway(target.db, recipe),
                  {"xpcall_loop.lua", "id=1", "time limit"});
  }
}

TEST_CASE("coroutines cannot escape the host", "[sandbox][e2e]") {
  auto target = prepared_target();
  SECTION("a coroutine swallowing the time limit, in an endless loop") {
    auto recipe = attack_recipe("coroutine_loop",
                                "    while true do coroutine.resume(coroutine.create(function() "
                                "while true do end end)) end");
    check_refused(target, run_runaway(target.db, recipe),
                  {"coroutine_loop.lua", "id=1", "time limit"});
  }
  SECTION("an endless loop inside coroutine.wrap") {
    auto recipe =
        attack_recipe("coroutine_wrap", "    coroutine.wrap(function() while true do end end)()");
    check_refused(target, run_runaway(target.db, recipe),
                  {"coroutine_wrap.lua", "id=1", "time limit"});
  }
  SECTION("yielding to the host from each") {
    auto recipe = attack_recipe("yield_to_host", "    coroutine.yield('pretend to be a read')");
    check_refused(target, run_bounded(target.db, recipe),
                  {at_attack_line("yield_to_host"), "id=1", "yield"});
  }
  SECTION("yielding to the host from inside pcall") {
    auto recipe = attack_recipe("yield_in_pcall", "    pcall(coroutine.yield)");
    check_refused(target, run_bounded(target.db, recipe),
                  {at_attack_line("yield_in_pcall"), "id=1", "yield"});
  }
  SECTION("an endless loop resuming a coroutine that yields") {
    auto recipe = recipe_file("stale_coroutine", R"lua(
local kept
return {
  name = "stale-coroutine",
  table = "t",
  writes = { t = { "status" } },
  each = function(row)
    patch_if_empty(row, "status", "written by an attacker")
    if not kept then
      kept = coroutine.create(function() while true do coroutine.yield() end end)
    end
    coroutine.resume(kept)
    while true do coroutine.resume(kept) end
  end,
}
)lua");
    check_refused(target, run_runaway(target.db, recipe),
                  {"stale_coroutine.lua", "id=1", "time limit"});
  }
}

TEST_CASE("memory bombs are stopped by the memory limit", "[sandbox][e2e]") {
  auto target = prepared_target();
  SECTION("string.rep") {
    auto recipe = attack_recipe("string_bomb", "    local s = string.rep('x', 1e9)");
    check_refused(target, run_runaway(target.db, recipe, Limit::memory),
                  {"string_bomb.lua", "id=1", "memory"});
  }
  SECTION("string doubling") {
    auto recipe = attack_recipe("doubling_bomb", "    local s = 'x' while true do s = s .. s end");
    check_refused(target, run_runaway(target.db, recipe, Limit::memory),
                  {"doubling_bomb.lua", "id=1", "memory"});
  }
  SECTION("string.rep caught by pcall, then a write") {
    auto recipe = attack_recipe(
        "caught_bomb", "    pcall(string.rep, 'x', 1e9) patch_if_empty(row, 'status', 'after')");
    check_refused(target, run_runaway(target.db, recipe, Limit::memory),
                  {"caught_bomb.lua", "id=1", "memory"});
  }
  SECTION("while the recipe file loads") {
    auto recipe = load_time_recipe("load_bomb", "local s = string.rep('x', 1e9)");
    check_refused(target, run_runaway(target.db, recipe, Limit::memory),
                  {"load_bomb.lua", "", "memory"});
  }
}

TEST_CASE("table growth bombs are stopped by the memory limit", "[sandbox][e2e]") {
  auto target = prepared_target();
  SECTION("one table") {
    auto recipe = attack_recipe("table_bomb", "    local t = {} for i = 1, 1e9 do t[i] = i end");
    check_refused(target, run_runaway(target.db, recipe, Limit::memory),
                  {"table_bomb.lua", "id=1", "memory"});
  }
  SECTION("many tables") {
    auto recipe = attack_recipe("tables_bomb",
                                "    local t = {} for i = 1, 1e9 do t[i] = { i, tostring(i) } end");
    check_refused(target, run_runaway(target.db, recipe, Limit::memory),
                  {"tables_bomb.lua", "id=1", "memory"});
  }
  SECTION("caught by pcall, then a write") {
    auto recipe =
        attack_recipe("caught_table_bomb",
                      "    pcall(function() local t = {} for i = 1, 1e9 do t[i] = i end end) "
                      "patch_if_empty(row, 'status', 'after')");
    check_refused(target, run_runaway(target.db, recipe, Limit::memory),
                  {"caught_table_bomb.lua", "id=1", "memory"});
  }
}

TEST_CASE("runaway recursion is stopped", "[sandbox][e2e]") {
  auto target = prepared_target();
  SECTION("a Lua function calling itself") {
    auto recipe =
        attack_recipe("recursion", "    local function f(n) return 1 + f(n + 1) end f(1)");
    check_refused(target, run_runaway(target.db, recipe),
                  {at_attack_line("recursion"), "id=1", ""});
  }
  SECTION("through an __index metamethod") {
    auto recipe = attack_recipe("index_recursion",
                                "    local o = setmetatable({}, { __index = function(t, k) return "
                                "t[k] end }) local _ = o.x");
    check_refused(target, run_runaway(target.db, recipe),
                  {at_attack_line("index_recursion"), "id=1", ""});
  }
  SECTION("through table.sort comparators") {
    auto recipe = attack_recipe("sort_recursion",
                                "    local function cmp(a, b) table.sort({ 3, 2, 1 }, cmp) "
                                "return a < b end table.sort({ 3, 2, 1 }, cmp)");
    check_refused(target, run_runaway(target.db, recipe), {"sort_recursion.lua", "id=1", ""});
  }
  SECTION("through string.gsub callbacks") {
    auto recipe = attack_recipe("gsub_recursion",
                                "    local function g(s) return (s:gsub('.', g)) end g('ab')");
    check_refused(target, run_runaway(target.db, recipe), {"gsub_recursion.lua", "id=1", ""});
  }
}

// Lua patterns backtrack inside C, where no count hook fires: the time limit must
// hold there too.
TEST_CASE("a backtracking pattern cannot outrun the time limit", "[sandbox][e2e]") {
  auto target = prepared_target();
  auto recipe = attack_recipe(
      "pattern_bomb", "    string.find(string.rep('a', 3000), string.rep('.-', 12) .. 'b')");
  check_refused(target, run_runaway(target.db, recipe), {"pattern_bomb.lua", "id=1", "time limit"});
}
