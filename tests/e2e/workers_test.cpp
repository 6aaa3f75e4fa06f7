// End to end: section 10's workers and chunks. A batch run worked by several
// workers of one process, by two processes (`host join`), by survivors of a
// `kill -9`, over keys of every shape; `host status` while it runs; the progress
// line. Every test proves the outcome, never the timing: the final table equals a
// one-worker run's on an identical copy, every changed cell is in the ledger
// once, `host revert` gives the seed back.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "tests/e2e/e2e_helpers.hpp"

using namespace host::testing;
using namespace host::testing::e2e;
using nlohmann::json;

namespace {

// 20,000 rows; `a` already set on every tenth (protected), `b` on every eighth.
const char* const k_fixture = R"sql(
CREATE TABLE t (id int PRIMARY KEY, raw text, a text, b int);
INSERT INTO t SELECT g, 'r' || g, CASE WHEN g % 10 = 0 THEN 'kept' END,
  CASE WHEN g % 8 = 0 THEN -g END FROM generate_series(1, 20000) g;
)sql";
constexpr long long k_rows = 20000;
constexpr long long k_a_changes = 18000;  // rows without a value in a
constexpr long long k_b_changes = 7500;   // even ids without a value in b

const char* const k_recipe = R"lua(
return {
  name = "workers-fill",
  table = "t",
  commit = "batch",
  writes = { t = { "a", "b" } },
  each = function(row)
    patch_if_empty(row, "a", "v" .. row.raw)
    if row.id % 2 == 0 then patch_if_empty(row, "b", row.id * 2) end
    audit("seen", { id = row.id })
  end,
}
)lua";

const char* const k_table =
    "SELECT id, raw, coalesce(a, '-'), coalesce(b::text, '-') FROM t "
    "ORDER BY id";

std::string quoted(const std::string& text) { return "'" + text + "'"; }

// A host process running in the background, its output in a file, so that a test
// can watch the ledger meanwhile and kill it by its pid. Killed (SIGKILL) and
// reaped on destruction if still running.
class Background {
 public:
  explicit Background(const std::vector<std::string>& args)
      : m_output_path(scratch_folder() + "/background_" + next_suffix() + ".txt") {
    std::vector<std::string> argv = {HOST_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> pointers;
    for (auto& arg : argv) pointers.push_back(const_cast<char*>(arg.c_str()));
    pointers.push_back(nullptr);
    m_pid = fork();
    REQUIRE(m_pid >= 0);
    if (m_pid == 0) {
      FILE* out = std::fopen(m_output_path.c_str(), "w");
      if (!out) _exit(127);
      dup2(fileno(out), STDOUT_FILENO);
      dup2(fileno(out), STDERR_FILENO);
      FILE* in = std::fopen("/dev/null", "r");
      if (in) dup2(fileno(in), STDIN_FILENO);
      execv(pointers[0], pointers.data());
      _exit(127);
    }
  }
  Background(const Background&) = delete;
  Background& operator=(const Background&) = delete;
  ~Background() {
    if (m_exit_code < 0) {
      kill(m_pid, SIGKILL);
      wait();
    }
  }

  pid_t pid() const { return m_pid; }

  // Its exit code (128 + signal when killed).
  int wait() {
    if (m_exit_code >= 0) return m_exit_code;
    int status = 0;
    while (waitpid(m_pid, &status, 0) < 0 && errno == EINTR) {
    }
    m_exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return m_exit_code;
  }

  int kill_now() {
    kill(m_pid, SIGKILL);
    return wait();
  }

  bool running() {
    if (m_exit_code >= 0) return false;
    int status = 0;
    pid_t done = waitpid(m_pid, &status, WNOHANG);
    if (done != m_pid) return true;
    m_exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return false;
  }

  std::string output() const {
    std::ifstream file(m_output_path, std::ios::binary);
    std::stringstream text;
    text << file.rdbuf();
    return text.str();
  }

 private:
  std::string m_output_path;
  pid_t m_pid = -1;
  int m_exit_code = -1;
};

// Polls `condition` every 50 ms for at most `seconds`; whether it became true.
template <typename Condition>
bool eventually(Condition condition, int seconds = 120) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return condition();
}

// The only run of the database, once its chunks are planned ("" until then).
std::string planned_run(const std::string& db) {
  if (value(db, "SELECT to_regclass('host_ledger.chunks') IS NOT NULL") != "t") return "";
  auto found = rows(db, "SELECT DISTINCT run_id FROM host_ledger.chunks");
  return found.size() == 1 ? found.front() : "";
}

long long number(const std::string& db, const std::string& query) {
  return std::stoll(value(db, query));
}

// Committed batches of the workers of process `pid` in run `run_id`.
long long batches_of(const std::string& db, const std::string& run_id, pid_t pid) {
  return number(db, "SELECT coalesce(sum(batches), 0) FROM host_ledger.workers WHERE run_id = " +
                        quoted(run_id) + " AND pid = " + std::to_string(pid));
}

// Waits until `process`, a `host run` in the background, has committed a batch; its run id.
std::string once_it_commits(const std::string& db, const Background& process) {
  std::string run_id;
  REQUIRE(eventually([&] { return !(run_id = planned_run(db)).empty(); }));
  REQUIRE(eventually([&] { return batches_of(db, run_id, process.pid()) > 0; }));
  return run_id;
}

// What the background `host run` left: its exit code and the report it wrote.
HostRun ended_run(Background& process, const std::string& run_id, const std::string& report) {
  HostRun run;
  run.exit_code = process.wait();
  run.output = process.output();
  run.run_id = run_id;
  if (std::filesystem::exists(report)) run.report = read_json(report);
  return run;
}

long long chunks_left(const std::string& db, const std::string& run_id) {
  return number(
      db, "SELECT count(*) FROM host_ledger.chunks WHERE NOT done AND run_id = " + quoted(run_id));
}

// Changed cells per column in the ledger, as {"t.a": n}.
json ledger_changes(const std::string& db, const std::string& run_id) {
  json counts = json::object();
  for (const auto& row :
       rows(db,
            "SELECT table_name || '.' || column_name, sum(jsonb_array_length(keys)) FROM "
            "host_ledger.changes WHERE op = 'update' AND run_id = " +
                quoted(run_id) + " GROUP BY 1 ORDER BY 1")) {
    auto bar = row.find('|');
    counts[row.substr(0, bar)] = std::stoll(row.substr(bar + 1));
  }
  return counts;
}

// Cells recorded more than once across the run's changes rows.
long long duplicate_changes(const std::string& db, const std::string& run_id) {
  return number(db,
                "SELECT count(*) - count(DISTINCT (op, table_name, column_name, k.key::text)) "
                "FROM host_ledger.changes c, jsonb_array_elements(c.keys) k(key) WHERE run_id = " +
                    quoted(run_id));
}

// "events|distinct ids" of the run's audit trail: each row processed once in effect.
std::string audit_counts(const std::string& db, const std::string& run_id) {
  return value(db,
               "SELECT count(*) || '|' || count(DISTINCT data->>'id') FROM host_ledger.audit "
               "WHERE run_id = " +
                   quoted(run_id));
}

struct Reference {
  std::vector<std::string> seed, after;
  json stats, changes;
};

// The fixture run by one worker on a database of its own: what every other run must give.
const Reference& reference() {
  static Reference result = [] {
    auto db = fresh_database();
    sql(db, k_fixture);
    Reference r;
    r.seed = rows(db, k_table);
    auto run = run_recipe(db, recipe_file("workers_reference", k_recipe),
                          {"--batch-size", "100", "--workers", "1"});
    INFO(run.output);
    REQUIRE(run.exit_code == 0);
    r.after = rows(db, k_table);
    r.stats = run.report["stats"];
    r.changes = changes_by_column(run.report);
    REQUIRE(r.changes == json({{"t.a", k_a_changes}, {"t.b", k_b_changes}}));
    return r;
  }();
  return result;
}

// The whole run is in the ledger once, the table is the one-worker run's, and a
// revert gives the seed back.
void check_exact_and_revert(const std::string& db, const std::string& run_id) {
  const Reference& expected = reference();
  CHECK(rows(db, k_table) == expected.after);
  CHECK(ledger_status(db, run_id) == "succeeded");
  CHECK(ledger_changes(db, run_id) == expected.changes);
  CHECK(duplicate_changes(db, run_id) == 0);
  CHECK(audit_counts(db, run_id) == "20000|20000");
  CHECK(chunks_left(db, run_id) == 0);
  auto revert = run_host({"revert", run_id, "--db", db});
  INFO(revert.output);
  CHECK(revert.exit_code == 0);
  CHECK(rows(db, k_table) == expected.seed);
}

// The report of a whole run: its stats, changes, timing and workers.
void check_report(const std::string& db, const HostRun& run) {
  const Reference& expected = reference();
  REQUIRE(run.report.is_object());
  CHECK(run.report["status"] == "succeeded");
  CHECK(run.report["stats"] == expected.stats);
  CHECK(run.stat("scanned") == k_rows);
  CHECK(changes_by_column(run.report) == expected.changes);
  REQUIRE(run.report.contains("timing"));
  for (const char* key :
       {"seconds", "throttled_seconds", "retries", "batches", "batch_rows_min", "batch_rows_max"}) {
    INFO(key);
    CHECK(run.report["timing"].contains(key));
  }
  const std::string id = quoted(run.run_id);
  CHECK(run.report["timing"]["batches"] ==
        number(db, "SELECT sum(batches) FROM host_ledger.workers WHERE run_id = " + id));
  CHECK(run.report["timing"]["batch_rows_max"] == 100);
  CHECK(
      run.report["workers"] ==
      number(db, "SELECT count(*) FROM host_ledger.workers WHERE batches > 0 AND run_id = " + id));
}

std::vector<std::string> run_args(const std::string& recipe, const std::string& db,
                                  const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"run", recipe, "--db", db};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

// The control characters of `text` but its newlines, as their codes ("13 27 "); "" if none.
std::string control_characters(const std::string& text) {
  std::string found;
  for (char c : text)
    if (c != '\n' && (static_cast<unsigned char>(c) < 0x20 || c == 0x7f))
      found += std::to_string(static_cast<int>(c)) + " ";
  return found;
}

}  // namespace

TEST_CASE("workers: 4 workers in one process do the run of one, exactly", "[workers][e2e]") {
  auto db = fresh_database();
  sql(db, k_fixture);
  auto run = run_recipe(db, recipe_file("workers_four", k_recipe),
                        {"--batch-size", "100", "--workers", "4"});
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  check_report(db, run);
  CHECK(number(db, "SELECT count(*) FROM host_ledger.workers") == 4);
  CHECK(value(db, "SELECT count(*) FROM host_ledger.runs") == "1");
  check_exact_and_revert(db, run.run_id);
}

TEST_CASE("workers: a second process joins a run and they finish it together, exactly",
          "[workers][e2e]") {
  auto db = fresh_database();
  sql(db, k_fixture);
  auto recipe = recipe_file("workers_join", k_recipe);
  std::string report = scratch_folder() + "/join_report_" + next_suffix() + ".json";
  // The starter is throttled so that the run is still going when the join comes.
  Background starter(run_args(recipe, db,
                              {"--batch-size", "100", "--workers", "2", "--max-rate", "1500",
                               "--report", report, "--quiet"}));
  const std::string run_id = once_it_commits(db, starter);
  REQUIRE(chunks_left(db, run_id) > 0);
  Background joiner({"join", run_id, "--workers", "2", "--db", db});
  int joined = joiner.wait();
  INFO(joiner.output());
  CHECK(joined == 0);
  CHECK(mentions(joiner.output(), "joined run " + run_id + " with 2 workers"));
  auto run = ended_run(starter, run_id, report);
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  CHECK(batches_of(db, run_id, joiner.pid()) > 0);
  CHECK(run.report["run_id"] == run_id);
  check_report(db, run);
  CHECK(run.report["workers"].get<long long>() >= 2);  // of both processes
  CHECK(number(db, "SELECT count(DISTINCT pid) FROM host_ledger.workers") == 2);
  // `host show` reads the same whole run from the ledger.
  auto shown = run_host({"show", run_id, "--json", "--db", db});
  REQUIRE(shown.exit_code == 0);
  auto shown_report = json_object_in(shown.output);
  CHECK(shown_report["stats"] == run.report["stats"]);
  CHECK(changes_by_column(shown_report) == changes_by_column(run.report));
  check_exact_and_revert(db, run_id);
}

TEST_CASE("workers: more than one worker needs commit = batch; a dry run uses one connection",
          "[workers][e2e]") {
  auto db = fresh_database();
  sql(db, k_fixture);
  const auto seed = rows(db, k_table);
  std::string atomic_recipe = k_recipe;
  atomic_recipe.replace(atomic_recipe.find("commit = \"batch\""), 16, "commit = \"atomic\"");
  auto atomic = run_recipe(db, recipe_file("workers_atomic", atomic_recipe), {"--workers", "2"});
  INFO(atomic.output);
  CHECK(atomic.exit_code == 2);
  CHECK(mentions(atomic.output, "--workers 2"));
  auto by_flag = run_recipe(db, recipe_file("workers_atomic_flag", k_recipe),
                            {"--workers", "2", "--commit", "atomic"});
  CHECK(by_flag.exit_code == 2);
  CHECK(rows(db, k_table) == seed);

  auto dry = run_recipe(db, recipe_file("workers_dry", k_recipe),
                        {"--dry-run", "--batch-size", "100", "--workers", "2"});
  INFO(dry.output);
  CHECK(dry.exit_code == 0);
  CHECK(mentions(dry.output, "uses one connection"));
  CHECK(dry.report["stats"] == reference().stats);
  CHECK(rows(db, k_table) == seed);

  // A run over an input file has no key space to split: one connection too.
  sql(db, "CREATE TABLE copies (id int PRIMARY KEY)");
  std::string input = write_file("inputs/workers_" + next_suffix() + ".jsonl",
                                 "{\"id\": 1}\n{\"id\": 2}\n{\"id\": 3}\n");
  auto from_input = run_recipe(db, recipe_file("workers_input", R"lua(
return {
  name = "workers-input",
  input = "ids",
  commit = "batch",
  writes = { copies = { "id" } },
  each = function(record) insert_if_absent("copies", { id = record.id }) end,
}
)lua"),
                               {"--input", "ids=" + input, "--batch-size", "1", "--workers", "2"});
  INFO(from_input.output);
  CHECK(from_input.exit_code == 0);
  CHECK(mentions(from_input.output, "uses one connection"));
  CHECK(rows(db, "SELECT id FROM copies ORDER BY id") == std::vector<std::string>{"1", "2", "3"});
}

namespace {

struct KeyShape {
  const char* name;
  const char* fixture;  // a table `k` with a column `note` to fill
  const char* order;    // the ORDER BY of its rows, to compare tables
};

// Generated: 600 rows each, so that batches of 5 make six chunks.
std::vector<KeyShape> key_shapes(const std::string& collation) {
  static std::string text_key;
  text_key = "CREATE TABLE k (code text COLLATE \"" + collation +
             "\" PRIMARY KEY, n int, note text); "
             "INSERT INTO k SELECT (ARRAY['alpha','Beta','beta','Gamma','_delta','Éclair',"
             "'eclair','x y','X-Y','zeta'])[1 + g % 10] || ' ' || g, g, "
             "CASE WHEN g % 7 = 0 THEN 'kept' END FROM generate_series(1, 600) g";
  return {
      {"text key, non-C collation", text_key.c_str(), "code COLLATE \"C\""},
      {"composite key",
       "CREATE TABLE k (a int, b text, n int, note text, PRIMARY KEY (b, a)); "
       "INSERT INTO k SELECT g % 7, 'b' || (g % 13) || '-' || g, g, "
       "CASE WHEN g % 7 = 0 THEN 'kept' END FROM generate_series(1, 600) g",
       "b, a"},
      {"uuid key",
       "CREATE TABLE k (id uuid PRIMARY KEY, n int, note text); "
       "INSERT INTO k SELECT md5(g::text)::uuid, g, CASE WHEN g % 7 = 0 THEN 'kept' END "
       "FROM generate_series(1, 600) g",
       "id"},
      {"partitioned table",
       "CREATE TABLE k (id int, region int, n int, note text, PRIMARY KEY (region, id)) "
       "PARTITION BY RANGE (region); "
       "CREATE TABLE k_low PARTITION OF k FOR VALUES FROM (0) TO (3); "
       "CREATE TABLE k_high PARTITION OF k FOR VALUES FROM (3) TO (10); "
       "INSERT INTO k SELECT g, g % 5, g, CASE WHEN g % 7 = 0 THEN 'kept' END "
       "FROM generate_series(1, 600) g",
       "region, id"},
  };
}

const char* const k_key_recipe = R"lua(
return {
  name = "workers-keys",
  table = "k",
  commit = "batch",
  writes = { k = { "note" } },
  each = function(row)
    patch_if_empty(row, "note", "n" .. row.n)
    audit("seen", { n = row.n })
  end,
}
)lua";

}  // namespace

TEST_CASE("workers: text with a collation, composite, uuid keys and a partitioned table",
          "[workers][e2e]") {
  std::string collation;
  {
    auto probe = fresh_database();
    for (const char* wanted : {"en-x-icu", "und-x-icu", "en_US.utf8", "en_US", "C.utf8"}) {
      if (value(probe, "SELECT count(*) FROM pg_collation WHERE collname = '" +
                           std::string(wanted) + "'") != "0") {
        collation = wanted;
        break;
      }
    }
  }
  REQUIRE_FALSE(collation.empty());
  for (const auto& shape : key_shapes(collation)) {
    DYNAMIC_SECTION(shape.name) {
      const std::string table = std::string("SELECT k::text FROM k ORDER BY ") + shape.order;
      auto one = fresh_database();
      auto three = fresh_database();
      sql(one, shape.fixture);
      sql(three, shape.fixture);
      const auto seed = rows(three, table);
      auto recipe = recipe_file("workers_keys", k_key_recipe);
      auto single = run_recipe(one, recipe, {"--batch-size", "5", "--workers", "1"});
      INFO(single.output);
      REQUIRE(single.exit_code == 0);
      auto multi = run_recipe(three, recipe, {"--batch-size", "5", "--workers", "3"});
      INFO(multi.output);
      REQUIRE(multi.exit_code == 0);
      CHECK(number(three, "SELECT count(*) FROM host_ledger.chunks") > 3);
      CHECK(rows(three, table) == rows(one, table));
      CHECK(value(three, "SELECT count(*) FROM k WHERE note IS NULL") == "0");
      CHECK(multi.stat("scanned") == 600);
      CHECK(multi.report["stats"] == single.report["stats"]);
      CHECK(changes_by_column(multi.report) == json({{"k.note", 600 - 600 / 7}}));
      CHECK(ledger_changes(three, multi.run_id) == json({{"k.note", 600 - 600 / 7}}));
      CHECK(duplicate_changes(three, multi.run_id) == 0);
      CHECK(value(three,
                  "SELECT count(*) || '|' || count(DISTINCT data->>'n') FROM "
                  "host_ledger.audit") == "600|600");
      auto revert = run_host({"revert", multi.run_id, "--db", three});
      INFO(revert.output);
      CHECK(revert.exit_code == 0);
      CHECK(rows(three, table) == seed);
    }
  }
}

TEST_CASE("workers: kill -9 of one of two processes; the other carries its chunks on",
          "[workers][e2e]") {
  auto db = fresh_database();
  sql(db, k_fixture);
  auto recipe = recipe_file("workers_kill", k_recipe);
  std::string report = scratch_folder() + "/kill_report_" + next_suffix() + ".json";
  Background starter(run_args(recipe, db,
                              {"--batch-size", "100", "--workers", "2", "--max-rate", "2000",
                               "--lease-seconds", "2", "--report", report, "--progress", "plain"}));
  const std::string run_id = once_it_commits(db, starter);
  Background joiner({"join", run_id, "--workers", "2", "--max-rate", "2000", "--db", db});
  REQUIRE(eventually([&] { return batches_of(db, run_id, joiner.pid()) > 0; }));

  SECTION("the joined process is killed: the starter finishes and closes the run") {
    REQUIRE(chunks_left(db, run_id) > 0);
    CHECK(joiner.kill_now() == 128 + SIGKILL);
    auto run = ended_run(starter, run_id, report);
    INFO(run.output);
    REQUIRE(run.exit_code == 0);
    check_report(db, run);  // the killed process's committed batches included
    // --progress plain: plain lines, the final one at least, no control characters.
    const std::string& output = run.output;
    CHECK(mentions(output, "rows/s"));
    CHECK(mentions(output, "20,000 of ~20,000 rows (100.0%)"));
    CHECK(control_characters(output) == "");
    check_exact_and_revert(db, run_id);
  }
  SECTION("the starter is killed: the joined process does every chunk, resume closes the run") {
    REQUIRE(chunks_left(db, run_id) > 0);
    CHECK(starter.kill_now() == 128 + SIGKILL);
    int joined = joiner.wait();
    INFO(joiner.output());
    CHECK(joined == 0);
    CHECK(chunks_left(db, run_id) == 0);
    CHECK(ledger_status(db, run_id) == "running");
    auto resumed = host_with_report({"resume", run_id, "--db", db});
    INFO(resumed.output);
    REQUIRE(resumed.exit_code == 0);
    check_report(db, resumed);  // the whole run, not only what the resume did
    check_exact_and_revert(db, run_id);
  }
}

TEST_CASE("workers: host join of an ended, an unknown run, and with another recipe file",
          "[workers][e2e]") {
  auto db = fresh_database();
  sql(db, k_fixture);
  auto recipe = recipe_file("workers_join_refused", k_recipe);

  auto unknown = run_host({"join", "8d3c1f1e-0000-4000-8000-000000000000", "--db", db});
  INFO(unknown.output);
  CHECK(unknown.exit_code == 2);

  Background starter(run_args(
      recipe, db, {"--batch-size", "100", "--workers", "1", "--max-rate", "2000", "--quiet"}));
  const std::string run_id = once_it_commits(db, starter);
  auto edited = write_file("edited/workers.lua", std::string(k_recipe) + "-- edited\n");
  auto other = run_host({"join", run_id, "--recipe", edited, "--db", db});
  INFO(other.output);
  CHECK(other.exit_code == 2);
  CHECK(mentions(other.output, "differs"));
  // The same content at another path is the run's recipe.
  auto copy = write_file("copy/workers.lua", k_recipe);
  auto same = run_host({"join", run_id, "--recipe", copy, "--db", db});
  INFO(same.output);
  CHECK(same.exit_code == 0);
  int started = starter.wait();
  INFO(starter.output());
  REQUIRE(started == 0);
  CHECK(ledger_status(db, run_id) == "succeeded");
  CHECK(rows(db, k_table) == reference().after);

  auto ended = run_host({"join", run_id, "--db", db});
  INFO(ended.output);
  CHECK(ended.exit_code == 0);
  CHECK(mentions(ended.output, "already ended"));
}

TEST_CASE("workers: host status --json during and after a run", "[workers][e2e]") {
  auto db = fresh_database();
  // A fresh table, never analyzed: its planner estimate is unknown. Autovacuum would analyze
  // 3000 new rows within a minute, sometimes before the check below (CI stop 14).
  sql(db,
      "CREATE TABLE t (id int PRIMARY KEY, raw text, a text, b int) "
      "WITH (autovacuum_enabled = false); "
      "INSERT INTO t SELECT g, 'r' || g, NULL, NULL FROM generate_series(1, 3000) g");
  REQUIRE(value(db, "SELECT reltuples < 1 FROM pg_class WHERE relname = 't'") == "t");
  auto recipe = recipe_file("workers_status", k_recipe);
  Background starter(run_args(
      recipe, db, {"--batch-size", "100", "--workers", "2", "--max-rate", "500", "--quiet"}));
  const std::string run_id = once_it_commits(db, starter);

  const std::regex iso_utc(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z)");
  auto during = status_json(db, run_id);
  INFO(during.dump());
  CHECK(during["run_id"] == run_id);
  CHECK(during["status"] == "running");
  const auto& progress = during["progress"];
  CHECK(progress["rows_total_estimate"].get<long long>() > 0);
  CHECK(progress["rows_done"] == during["stats"]["scanned"]);
  CHECK((progress["eta_seconds"].is_null() || progress["eta_seconds"].is_number()));
  CHECK(progress["rows_per_second"].is_number());
  CHECK(progress["throttled"].is_boolean());
  REQUIRE(during["workers"].is_array());
  REQUIRE(during["workers"].size() >= 1);
  for (const auto& worker : during["workers"]) {
    CHECK(worker["pid"] == starter.pid());
    CHECK(worker["id"].get<std::string>().find(":" + std::to_string(starter.pid()) + ":") !=
          std::string::npos);
    CHECK(worker["host"].is_string());
    CHECK((worker["chunk"].is_null() || worker["chunk"].is_number()));
    CHECK(std::regex_match(worker["last_seen"].get<std::string>(), iso_utc));
  }

  int started = starter.wait();
  INFO(starter.output());
  REQUIRE(started == 0);
  auto after = status_json(db, run_id);
  INFO(after.dump());
  CHECK(after["status"] == "succeeded");
  CHECK(after["stats"]["scanned"] == 3000);
  CHECK(after["progress"]["rows_done"] == 3000);
  CHECK(after["progress"]["rows_total_estimate"].get<long long>() > 0);
  CHECK(
      (after["progress"]["eta_seconds"].is_null() || after["progress"]["eta_seconds"].is_number()));
  CHECK(after["workers"].size() == 2);
  for (const auto& worker : after["workers"]) {
    CHECK(worker["pid"] == starter.pid());
    CHECK(worker["chunk"].is_null());
    CHECK(std::regex_match(worker["last_seen"].get<std::string>(), iso_utc));
  }
}

TEST_CASE("workers: the progress line live on a terminal, plain, and silenced", "[workers][e2e]") {
  auto db = fresh_database();
  sql(db,
      "CREATE TABLE t (id int PRIMARY KEY, raw text, a text, b int); "
      "INSERT INTO t SELECT g, 'r' || g, NULL, NULL FROM generate_series(1, 1000) g");
  auto recipe = recipe_file("workers_progress", k_recipe);
  auto reset = [&] { sql(db, "UPDATE t SET a = NULL, b = NULL"); };

  SECTION("on a terminal: a line rewritten in place") {
    std::string command = std::string(HOST_BINARY) + " run '" + recipe + "' --db '" + db +
                          "' --batch-size 100 --workers 2";
    auto result = host::run_process({"script", "-qfec", command, "/dev/null"});
    INFO(result.output);
    CHECK(result.exit_code == 0);
    CHECK(mentions(result.output, "rows/s"));
    // A carriage return that starts a line, not the terminal's "\r\n".
    CHECK(std::regex_search(result.output, std::regex("\r[0-9]")));
    CHECK(mentions(result.output, "1,000 of ~1,000 rows (100.0%)"));
  }
  SECTION("plain: the final line, no control characters") {
    auto result = run_host({"run", recipe, "--db", db, "--batch-size", "100", "--workers", "2",
                            "--progress", "plain"});
    INFO(result.output);
    CHECK(result.exit_code == 0);
    CHECK(mentions(result.output, "1,000 of ~1,000 rows (100.0%)"));
    CHECK(mentions(result.output, "rows/s"));
    CHECK(control_characters(result.output) == "");
  }
  SECTION("off and quiet: no progress line, on a terminal or not") {
    for (const std::vector<std::string>& silencer :
         {std::vector<std::string>{"--progress", "off"}, std::vector<std::string>{"--quiet"}}) {
      INFO(silencer.front());
      reset();
      std::string command = std::string(HOST_BINARY) + " run '" + recipe + "' --db '" + db +
                            "' --batch-size 100 --workers 2";
      for (const auto& arg : silencer) command += " " + arg;
      auto on_terminal = host::run_process({"script", "-qfec", command, "/dev/null"});
      INFO(on_terminal.output);
      CHECK(on_terminal.exit_code == 0);
      CHECK_FALSE(mentions(on_terminal.output, "rows/s"));
      reset();
      std::vector<std::string> args = {"run",          recipe, "--db",      db,
                                       "--batch-size", "100",  "--workers", "2"};
      args.insert(args.end(), silencer.begin(), silencer.end());
      auto piped = run_host(args);
      INFO(piped.output);
      CHECK(piped.exit_code == 0);
      CHECK_FALSE(mentions(piped.output, "rows/s"));
    }
    CHECK(value(db, "SELECT count(*) FROM t WHERE a IS NULL") == "0");
  }
}
