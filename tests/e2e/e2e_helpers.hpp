#pragma once
// Helpers shared by the end-to-end tests in this folder: write a recipe, run the
// built host binary on it, read its JSON report, look at the database.
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "host/database.hpp"
#include "tests/support/test_support.hpp"

namespace host::testing::e2e {

// What one `host` invocation left behind.
struct HostRun {
  int exit_code = -1;
  std::string output;     // stdout and stderr
  nlohmann::json report;  // the --report JSON, or null when none was written
  std::string run_id;     // from the report, else from the "run_id: ..." line

  long long stat(const std::string& name) const {
    return report.is_object() && report.contains("stats") ? report["stats"].value(name, -1LL)
                                                          : -1LL;
  }
};

inline std::string next_suffix() {
  static std::atomic<int> counter{0};
  return std::to_string(++counter);
}

// Writes `text` as a recipe file in its own folder of the scratch area; its path.
inline std::string recipe_file(const std::string& stem, const std::string& text) {
  return write_file("recipes/" + stem + "_" + next_suffix() + "/" + stem + ".lua", text);
}

inline std::string run_id_in(const std::string& output) {
  auto at = output.find("run_id: ");
  return at == std::string::npos ? "" : output.substr(at + 8, 36);
}

// Runs `host COMMAND ...` with a fresh --report path (for run, resume) and --quiet,
// and extra environment entries ("K=V").
inline HostRun host_with_report(std::vector<std::string> args,
                                const std::vector<std::string>& environment = {}) {
  std::string report = scratch_folder() + "/report_" + next_suffix() + ".json";
  args.push_back("--report");
  args.push_back(report);
  args.push_back("--quiet");
  auto result = run_host(args, environment);
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

// `host run RECIPE --db CONNINFO --report R.json --quiet EXTRA...`
inline HostRun run_recipe(const std::string& conninfo, const std::string& recipe,
                          const std::vector<std::string>& extra = {},
                          const std::vector<std::string>& environment = {}) {
  std::vector<std::string> args = {"run", recipe, "--db", conninfo};
  args.insert(args.end(), extra.begin(), extra.end());
  return host_with_report(args, environment);
}

// Runs SQL text (several statements allowed) in autocommit.
inline void sql(const std::string& conninfo, const std::string& statements) {
  Database database(conninfo);
  database.exec(statements);
}

// Rows of a query as "a|b|NULL" strings.
inline std::vector<std::string> rows(const std::string& conninfo, const std::string& query) {
  Database database(conninfo);
  return rows_as_text(database, query);
}

// The single value of a query, "NULL" for SQL NULL.
inline std::string value(const std::string& conninfo, const std::string& query) {
  auto all = rows(conninfo, query);
  return all.empty() ? "<no row>" : all.front();
}

// The dump of the user tables only (ledger schema left out), for "state before == state after".
inline std::string dump_user_tables(const std::string& conninfo) {
  std::string dump = dump_database(conninfo), kept;
  bool keep = true;
  std::size_t at = 0;
  while (at < dump.size()) {
    std::size_t end = dump.find('\n', at);
    if (end == std::string::npos) end = dump.size();
    std::string line = dump.substr(at, end - at);
    if (line.rfind("== ", 0) == 0) keep = line.rfind("== host_ledger.", 0) != 0;
    if (keep) kept += line + "\n";
    at = end + 1;
  }
  return kept;
}

// A CHECK that makes the write of a row take `seconds`: the tests of pairs and
// chains of batches (PairedBatch) make a batch's writes slow, so that the next
// batch is ready before they are done and is written beside them.
inline const char* const k_slow_pass =
    "CREATE FUNCTION slow_pass(seconds float8) RETURNS boolean LANGUAGE sql AS "
    "$$SELECT pg_sleep(seconds) IS NOT NULL$$; ";

// 500 rows in batches of 10, one slow write each (recipes patch row 1 of each
// batch), so that batches are written in pairs and chains.
inline std::string slow_chain_table() {
  return std::string(k_slow_pass) +
         "CREATE TABLE t (id int PRIMARY KEY, v text CHECK (v IS NULL OR slow_pass(0.03))); "
         "INSERT INTO t SELECT g, NULL FROM generate_series(1, 500) g";
}

// The report's changes as {"table.column": count}, for comparisons independent of order.
inline nlohmann::json changes_by_column(const nlohmann::json& report) {
  nlohmann::json counts = nlohmann::json::object();
  if (!report.contains("changes")) return counts;
  for (const auto& change : report["changes"])
    counts[change["table"].get<std::string>() + "." + change["column"].get<std::string>()] =
        change["count"];
  return counts;
}

// The JSON object in a command's output (stdout and stderr are merged); null when none.
inline nlohmann::json json_object_in(const std::string& output) {
  auto start = output.find('{');
  auto end = output.rfind('}');
  if (start == std::string::npos || end == std::string::npos || end < start) return nullptr;
  return nlohmann::json::parse(output.substr(start, end - start + 1), nullptr, false);
}

// `host status RUN_ID --json`: it exits 0 and prints one JSON object, which it returns.
inline nlohmann::json status_json(const std::string& db, const std::string& run_id) {
  auto shown = run_host({"status", run_id, "--json", "--db", db});
  INFO(shown.output);
  REQUIRE(shown.exit_code == 0);
  auto status = json_object_in(shown.output);
  REQUIRE(status.is_object());
  return status;
}

// Checks of how a failing run ended, shared by the bad-input and sandbox tests.

inline bool mentions(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Rows of a ledger table; 0 when the host never created the ledger.
inline long long ledger_rows(const std::string& db, const std::string& table) {
  if (value(db, "SELECT to_regclass('host_ledger." + table + "') IS NOT NULL") != "t") return 0;
  return std::stoll(value(db, "SELECT count(*) FROM host_ledger." + table));
}

// The ledger's status of a run; "<none>" when the run was never recorded.
inline std::string ledger_status(const std::string& db, const std::string& run_id) {
  if (run_id.empty() || value(db, "SELECT to_regclass('host_ledger.runs') IS NOT NULL") != "t")
    return "<none>";
  auto found =
      rows(db, "SELECT status FROM host_ledger.runs WHERE run_id::text = '" + run_id + "'");
  return found.empty() ? "<none>" : found.front();
}

// How many advisory locks sessions hold in the database, once sessions that ended
// have let theirs go (a backend releases them a moment after its client left; up
// to 5 s).
inline std::string advisory_locks_held(const std::string& db) {
  std::string held;
  for (int i = 0; i < 50; ++i) {
    held = value(db,
                 "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = "
                 "(SELECT oid FROM pg_database WHERE datname = current_database())");
    if (held == "0") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return held;
}

// What the host printed besides its run id line: a clean failure is exactly one line.
inline std::vector<std::string> message_lines(const std::string& output) {
  std::vector<std::string> lines;
  std::size_t at = 0;
  while (at < output.size()) {
    std::size_t end = output.find('\n', at);
    if (end == std::string::npos) end = output.size();
    std::string line = output.substr(at, end - at);
    if (!line.empty() && line.rfind("run_id: ", 0) != 0) lines.push_back(line);
    at = end + 1;
  }
  return lines;
}

// The message lines with every path in the scratch folder cut out, so that a word
// the message must contain is never found in a file or folder name instead.
inline std::string without_paths(const std::string& output) {
  std::string text;
  for (const auto& line : message_lines(output)) text += line + "\n";
  const std::string folder = scratch_folder();
  for (auto at = text.find(folder); at != std::string::npos; at = text.find(folder, at)) {
    auto end = text.find_first_of(": \n", at);
    text.replace(at, end - at, "<path>");
  }
  return text;
}

}  // namespace host::testing::e2e
