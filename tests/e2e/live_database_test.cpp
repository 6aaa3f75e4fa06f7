// End to end: runs on a database that lives while they work (RECIPE_API.md section
// 10): signals, `host pause` and `host cancel` from outside, sessions that hold row
// locks, triggers slower than the statement timeout, backends terminated under the
// run, pause_when and max-rate. The host runs as a child process, so the test can
// signal it and watch the database while it works; every test asserts what the
// tables and the ledger hold and how the host exited, never how long it took
// (except loosely, where "at once" or "never blocked" is the behaviour itself).
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/e2e/e2e_helpers.hpp"

using namespace host::testing;
using namespace host::testing::e2e;
using Clock = std::chrono::steady_clock;

namespace {

// `host ARGS... --report R.json --quiet` started in the background: its pid can be
// signalled while it works. Killed (SIGKILL) and reaped when dropped unfinished.
class HostChild {
 public:
  explicit HostChild(std::vector<std::string> args, std::vector<std::string> environment = {}) {
    m_report = scratch_folder() + "/report_" + next_suffix() + ".json";
    m_output = scratch_folder() + "/output_" + next_suffix() + ".txt";
    args.insert(args.begin(), HOST_BINARY);
    args.push_back("--report");
    args.push_back(m_report);
    args.push_back("--quiet");
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    m_pid = fork();
    REQUIRE(m_pid >= 0);
    if (m_pid == 0) {
      int out = open(m_output.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      int null_fd = open("/dev/null", O_RDONLY);
      if (out < 0 || null_fd < 0) _exit(127);
      dup2(out, STDOUT_FILENO);
      dup2(out, STDERR_FILENO);
      dup2(null_fd, STDIN_FILENO);
      for (auto& entry : environment) putenv(entry.data());
      execv(argv[0], argv.data());
      _exit(127);
    }
  }
  HostChild(const HostChild&) = delete;
  HostChild& operator=(const HostChild&) = delete;
  ~HostChild() {
    if (m_pid > 0 && !m_done) {
      kill(m_pid, SIGKILL);
      waitpid(m_pid, nullptr, 0);
    }
  }

  void signal(int number) const { kill(m_pid, number); }

  // True once the process has ended (reaped; wait() then returns at once).
  bool ended() {
    if (m_done) return true;
    int status = 0;
    if (waitpid(m_pid, &status, WNOHANG) != m_pid) return false;
    finish(status);
    return true;
  }

  // Waits for the end (at most `limit`, then SIGKILL: a hung host fails the test).
  HostRun wait(std::chrono::seconds limit = std::chrono::seconds(180)) {
    auto deadline = Clock::now() + limit;
    while (!ended()) {
      if (Clock::now() > deadline) signal(SIGKILL);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    HostRun run;
    run.exit_code = m_exit_code;
    std::ifstream file(m_output);
    std::stringstream text;
    text << file.rdbuf();
    run.output = text.str();
    if (std::filesystem::exists(m_report)) run.report = read_json(m_report);
    run.run_id = run.report.is_object() && run.report.contains("run_id") &&
                         run.report["run_id"].is_string()
                     ? run.report["run_id"].get<std::string>()
                     : run_id_in(run.output);
    return run;
  }

 private:
  void finish(int status) {
    m_done = true;
    m_exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  pid_t m_pid = -1;
  bool m_done = false;
  int m_exit_code = -1;
  std::string m_report, m_output;
};

// Polls `condition` every 20 ms for at most `limit`; whether it became true.
template <typename Condition>
bool eventually(Condition condition, std::chrono::seconds limit = std::chrono::seconds(60)) {
  auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

bool ledger_exists(const std::string& db) {
  return value(db, "SELECT to_regclass('host_ledger.chunks') IS NOT NULL") == "t";
}

long long committed_batches(const std::string& db) {
  if (!ledger_exists(db)) return 0;
  return std::stoll(value(db, "SELECT coalesce(sum(batches), 0) FROM host_ledger.chunks"));
}

// The id of the only run in the ledger ("" while there is none).
std::string only_run(const std::string& db) {
  if (!ledger_exists(db)) return "";
  auto found = rows(db, "SELECT run_id FROM host_ledger.runs");
  return found.size() == 1 ? found.front() : "";
}

// Waits until the run has committed `batches` batches; its id.
std::string run_after_batches(const std::string& db, HostChild& child, long long batches = 2) {
  bool committed = eventually([&] { return child.ended() || committed_batches(db) >= batches; });
  REQUIRE(committed);
  REQUIRE_FALSE(child.ended());
  auto id = only_run(db);
  REQUIRE_FALSE(id.empty());
  return id;
}

// A session's backend has been inside the recipe's sleep for `for_ms` (the recipe is mid-batch).
bool recipe_is_sleeping(const std::string& db, int for_ms = 0) {
  return value(db,
               "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND "
               "pid <> pg_backend_pid() AND state = 'active' AND query LIKE '%sleep_a_while%' "
               "AND clock_timestamp() - query_start >= " +
                   std::to_string(for_ms) + " * interval '1 ms'") != "0";
}

// Ends every other session of the database (the run's, its lock connection's too); how many.
int terminate_other_backends(const std::string& db) {
  return std::stoi(
      value(db,
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = "
            "current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'"));
}

// `host resume`, again while a stopped process's sessions are still being torn down.
HostRun resume(const std::string& db, const std::string& run_id) {
  for (int attempt = 0;; ++attempt) {
    auto result = host_with_report({"resume", run_id, "--db", db});
    if (result.exit_code != 2 || !mentions(result.output, "being processed") || attempt == 100)
      return result;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

// The table the tests work on: `rows` rows, a tenth of them set by a person already,
// and a flag row the slow parts look at. sleep_a_while() pauses the recipe for a
// moment (query() calls only stable functions: pg_sleep is volatile, so it hides in
// one), much longer while flags.slow is true.
std::string fixture(int rows) {
  return "CREATE TABLE flags (paused boolean NOT NULL, slow boolean NOT NULL); "
         "INSERT INTO flags VALUES (false, false); "
         "CREATE TABLE t (id int PRIMARY KEY, status text, note text); "
         "INSERT INTO t SELECT g, CASE WHEN g % 10 = 3 THEN 'human' END, 'n' || g "
         "FROM generate_series(1, " +
         std::to_string(rows) +
         ") g; "
         "CREATE FUNCTION sleep_a_while() RETURNS void STABLE LANGUAGE sql AS "
         "'SELECT pg_sleep(CASE WHEN (SELECT slow FROM flags) THEN 10 ELSE 0.05 END)'";
}

const char* const k_tables = "SELECT id, coalesce(status, '-'), note FROM t ORDER BY id";

// Patches every empty status; every tenth row waits a moment, so a run over a few
// hundred rows lasts a few seconds.
std::string slow_recipe(const std::string& commit_mode) {
  return recipe_file("live_" + commit_mode, R"lua(
return {
  name = "live",
  table = "t",
  commit = ")lua" + commit_mode + R"lua(",
  writes = { t = { "status" } },
  each = function(row)
    if row.id % 10 == 0 then query("select sleep_a_while()") end
    patch_if_empty(row, "status", "Active " .. row.id)
  end,
}
)lua");
}

// The table after an uninterrupted run of `recipe` over fixture(rows) and `setup`,
// on a database of its own.
std::vector<std::string> uninterrupted(int rows_count, const std::string& recipe,
                                       const std::vector<std::string>& extra = {},
                                       const std::string& setup = "") {
  auto copy = fresh_database();
  sql(copy, fixture(rows_count));
  if (!setup.empty()) sql(copy, setup);
  auto run = run_recipe(copy, recipe, extra);
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  return rows(copy, k_tables);
}

// Cells the ledger records for a run, and how many of them are recorded twice.
long long ledger_cells(const std::string& db, const std::string& run_id) {
  return std::stoll(value(db,
                          "SELECT coalesce(sum(jsonb_array_length(keys)), 0) FROM "
                          "host_ledger.changes WHERE op = 'update' AND run_id = '" +
                              run_id + "'"));
}
long long doubled_cells(const std::string& db, const std::string& run_id) {
  return std::stoll(value(
      db,
      "SELECT count(*) - count(DISTINCT (table_name, column_name, k.key::text)) FROM "
      "host_ledger.changes c, jsonb_array_elements(c.keys) k(key) WHERE run_id = '" +
          run_id + "'"));
}

long long patched_rows(const std::string& db) {
  return std::stoll(value(db, "SELECT count(*) FROM t WHERE status LIKE 'Active%'"));
}

// The run finished the table exactly as an uninterrupted run, each change in the ledger once.
void check_exact(const std::string& db, const std::string& run_id,
                 const std::vector<std::string>& expected) {
  CHECK(rows(db, k_tables) == expected);
  CHECK(ledger_cells(db, run_id) == patched_rows(db));
  CHECK(doubled_cells(db, run_id) == 0);
}

const std::vector<std::string> k_batch = {"--commit", "batch", "--batch-size", "10"};

std::vector<std::string> run_args(const std::string& db, const std::string& recipe,
                                  const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"run", recipe, "--db", db};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

}  // namespace

namespace {

// A batch run over fixture(400) stopped by `stop` once a few batches are committed:
// it exits 6 with the run `status` ("paused" or "cancelled") part way through;
// what it committed is in the ledger exactly. The run's id.
template <typename Stop>
std::string stopped_mid_run(const std::string& db, const std::string& recipe,
                            const std::string& status, Stop stop) {
  HostChild child(run_args(db, recipe, k_batch));
  auto id = run_after_batches(db, child);
  // The run's 2 s would leave a slow machine too little time to start `host pause`:
  // from now on a batch takes 10 s, and the stop always lands mid-run.
  sql(db, "UPDATE flags SET slow = true");
  stop(child, id);
  auto stopped = child.wait();
  sql(db, "UPDATE flags SET slow = false");
  INFO(stopped.output);
  CHECK(stopped.exit_code == 6);
  CHECK(ledger_status(db, id) == status);
  CHECK(stopped.report.value("status", "") == status);
  if (status == "paused") CHECK(mentions(stopped.output, "host resume " + id));
  auto done = patched_rows(db);
  CHECK(done > 0);
  CHECK(done < 360);
  CHECK(ledger_cells(db, id) == done);
  return id;
}

}  // namespace

TEST_CASE("live: SIGTERM or host pause stops a batch run after its batch in flight; resume "
          "finishes it",
          "[live][e2e]") {
  auto db = fresh_database();
  sql(db, fixture(400));
  auto recipe = slow_recipe("batch");
  auto expected = uninterrupted(400, recipe, k_batch);
  std::string id;
  SECTION("SIGTERM") {
    id = stopped_mid_run(db, recipe, "paused",
                         [](HostChild& child, const std::string&) { child.signal(SIGTERM); });
  }
  SECTION("host pause from outside") {
    id = stopped_mid_run(db, recipe, "paused", [&](HostChild&, const std::string& run_id) {
      auto paused = run_host({"pause", run_id, "--db", db});
      INFO(paused.output);
      CHECK(paused.exit_code == 0);
    });
  }
  auto resumed = resume(db, id);
  INFO(resumed.output);
  REQUIRE(resumed.exit_code == 0);
  CHECK(ledger_status(db, id) == "succeeded");
  check_exact(db, id, expected);
}

TEST_CASE("live: host cancel stops a batch run for good; revert undoes what it committed",
          "[live][e2e]") {
  auto db = fresh_database();
  sql(db, fixture(400));
  auto before = rows(db, k_tables);
  auto id = stopped_mid_run(db, slow_recipe("batch"), "cancelled",
                            [&](HostChild&, const std::string& run_id) {
                              auto cancelled = run_host({"cancel", run_id, "--db", db});
                              INFO(cancelled.output);
                              CHECK(cancelled.exit_code == 0);
                            });
  auto done = patched_rows(db);
  auto refused = resume(db, id);
  INFO(refused.output);
  CHECK(refused.exit_code == 2);
  CHECK(patched_rows(db) == done);

  auto revert = run_host({"revert", id, "--db", db});
  INFO(revert.output);
  CHECK(revert.exit_code == 0);
  CHECK(rows(db, k_tables) == before);
}

TEST_CASE("live: SIGINT on an atomic run rolls everything back", "[live][e2e]") {
  auto db = fresh_database();
  sql(db, fixture(400));
  auto before = dump_user_tables(db);
  auto recipe = slow_recipe("atomic");

  HostChild child(run_args(db, recipe, {"--batch-size", "10"}));
  // Well into the run: the rows of the first batches are written, uncommitted.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  REQUIRE(eventually([&] { return child.ended() || recipe_is_sleeping(db); }));
  // The run's 2 s would leave a slow machine little margin: from now on it cannot end.
  sql(db, "UPDATE flags SET slow = true");
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  REQUIRE_FALSE(child.ended());
  child.signal(SIGINT);
  auto stopped = child.wait();
  INFO(stopped.output);
  CHECK(stopped.exit_code == 6);
  sql(db, "UPDATE flags SET slow = false");
  CHECK(dump_user_tables(db) == before);
  CHECK(ledger_rows(db, "changes") == 0);
}

TEST_CASE("live: a second SIGINT abandons the batch in flight and exits at once",
          "[live][e2e]") {
  auto db = fresh_database();
  sql(db, fixture(400));
  auto recipe = slow_recipe("batch");
  auto expected = uninterrupted(400, recipe, k_batch);

  HostChild child(run_args(db, recipe, k_batch));
  auto id = run_after_batches(db, child);
  // From now on each sleep in the recipe lasts 10 s: the batch in flight is stuck.
  sql(db, "UPDATE flags SET slow = true");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  REQUIRE(eventually([&] { return child.ended() || recipe_is_sleeping(db, 500); }));
  REQUIRE_FALSE(child.ended());
  child.signal(SIGINT);
  // The first one waits for the batch in flight...
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  CHECK_FALSE(child.ended());
  // ...the second does not.
  auto second = Clock::now();
  child.signal(SIGINT);
  auto stopped = child.wait();
  INFO(stopped.output);
  CHECK(stopped.exit_code == 6);
  CHECK(Clock::now() - second < std::chrono::seconds(6));
  CHECK(ledger_status(db, id) == "paused");
  CHECK(mentions(stopped.output, "host resume " + id));
  // The abandoned batch was rolled back: the ledger holds exactly what the table does.
  CHECK(ledger_cells(db, id) == patched_rows(db));
  CHECK(patched_rows(db) < 360);

  sql(db, "UPDATE flags SET slow = false");
  auto resumed = resume(db, id);
  INFO(resumed.output);
  REQUIRE(resumed.exit_code == 0);
  check_exact(db, id, expected);
}

TEST_CASE("live: a session holding row locks makes the run retry, never wait or overwrite",
          "[live][e2e]") {
  auto db = fresh_database();
  sql(db, fixture(200));
  auto recipe = slow_recipe("batch");

  // The application's session: it locks rows 1..20 before the run starts, keeps
  // them for about 3 s, then sets one of them itself.
  host::Database session(db);
  session.exec("BEGIN");
  session.exec("SELECT id FROM t WHERE id BETWEEN 1 AND 20 FOR UPDATE");
  std::chrono::milliseconds session_update{0};
  std::string session_error;
  std::thread application([&] {
    try {
      std::this_thread::sleep_for(std::chrono::seconds(3));
      auto start = Clock::now();
      session.exec("UPDATE t SET status = 'Session' WHERE id = 5");
      session_update = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
      session.exec("COMMIT");
    } catch (const std::exception& e) {
      session_error = e.what();
    }
  });
  auto run = run_recipe(db, recipe, {"--commit", "batch", "--batch-size", "50", "--lock-timeout",
                                     "200"});
  application.join();
  INFO(run.output);
  REQUIRE(session_error.empty());
  REQUIRE(run.exit_code == 0);
  CHECK(run.report["timing"]["retries"].get<long long>() > 0);
  CHECK(session_update < std::chrono::seconds(2));
  // The session's value is kept; every other empty status is patched.
  CHECK(value(db, "SELECT status FROM t WHERE id = 5") == "Session");
  CHECK(value(db, "SELECT count(*) FROM t WHERE status IS NULL") == "0");
  CHECK(patched_rows(db) == 200 - 20 - 1);
  CHECK(ledger_cells(db, run.run_id) == patched_rows(db));
  CHECK(doubled_cells(db, run.run_id) == 0);
}

namespace {

// A BEFORE UPDATE trigger that takes 30 ms a row while flags.slow is true: a
// statement writing 40 rows takes over a second, one writing 10 rows 0.3 s.
const char* const k_slow_trigger = R"sql(
CREATE FUNCTION slow_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF (SELECT slow FROM flags) THEN PERFORM pg_sleep(0.03); END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER slow_update BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION slow_update();
)sql";

std::string plain_recipe() {
  return recipe_file("live_plain", R"lua(
return {
  name = "live-plain",
  table = "t",
  commit = "batch",
  writes = { t = { "status" } },
  each = function(row) patch_if_empty(row, "status", "Active " .. row.id) end,
}
)lua");
}

}  // namespace

TEST_CASE("live: a batch that hits the statement timeout is split and the run finishes",
          "[live][e2e]") {
  auto db = fresh_database();
  sql(db, fixture(120));
  sql(db, k_slow_trigger);
  auto recipe = plain_recipe();
  auto expected = uninterrupted(120, recipe, {"--batch-size", "40"});
  sql(db, "UPDATE flags SET slow = true");

  auto run = run_recipe(db, recipe, {"--batch-size", "40", "--statement-timeout", "600"});
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  CHECK(run.report["timing"]["retries"].get<long long>() > 0);
  CHECK(run.report["timing"]["batch_rows_min"].get<long long>() < 40);
  check_exact(db, run.run_id, expected);
}

TEST_CASE("live: with --retries 0 a statement timeout fails the run, resumable", "[live][e2e]") {
  auto db = fresh_database();
  sql(db, fixture(120));
  sql(db, k_slow_trigger);
  auto recipe = plain_recipe();
  auto expected = uninterrupted(120, recipe, {"--batch-size", "40"});
  sql(db, "UPDATE flags SET slow = true");

  auto failed = run_recipe(
      db, recipe, {"--batch-size", "40", "--statement-timeout", "600", "--retries", "0"});
  INFO(failed.output);
  CHECK(failed.exit_code == 1);
  CHECK(ledger_status(db, failed.run_id) == "failed");
  auto message = without_paths(failed.output);
  CHECK(mentions(message, "57014"));
  CHECK(mentions(message, "key (id) from"));
  CHECK(patched_rows(db) == 0);

  sql(db, "UPDATE flags SET slow = false");
  auto resumed = resume(db, failed.run_id);
  INFO(resumed.output);
  REQUIRE(resumed.exit_code == 0);
  check_exact(db, failed.run_id, expected);
}

// Rows whose id is 1 in 20 (the first of every second batch of 10) refuse their
// first write, once in the cluster, as a serialization failure or a deadlock: a
// session-level advisory lock, which outlives the rolled-back transaction,
// remembers the refusal.
const char* const k_refuse_once = R"sql(
CREATE FUNCTION refused_once(id int) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  IF id % 20 <> 1 OR EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'
      AND classid = 4242 AND objid = id AND objsubid = 2) THEN
    RETURN true;
  END IF;
  PERFORM pg_advisory_lock(4242, id);
  IF id % 40 = 1 THEN
    RAISE EXCEPTION 'row % refused once', id USING ERRCODE = 'serialization_failure';
  END IF;
  RAISE EXCEPTION 'row % refused once', id USING ERRCODE = 'deadlock_detected';
END $$;
ALTER TABLE t ADD CHECK (status IS NULL OR refused_once(id));
)sql";

TEST_CASE("live: --retries counts the tries of one batch, not of every batch of its chunk",
          "[live][e2e]") {
  auto db = fresh_database();
  sql(db, fixture(120));
  sql(db, k_refuse_once);
  auto recipe = plain_recipe();
  const std::vector<std::string> args = {"--batch-size", "10", "--retries", "1"};
  auto expected = uninterrupted(120, recipe, args);

  // One chunk of 12 batches, 6 of which fail once: each is tried twice at most.
  // Before, every deadlock and serialization failure ended the run at once (libpqxx
  // gave them no SQLSTATE), and past those, the second failure of the chunk did.
  auto run = run_recipe(db, recipe, args);
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  CHECK(run.report["timing"]["retries"].get<long long>() == 6);
  check_exact(db, run.run_id, expected);
}

TEST_CASE("live: a read() that meets a lock timeout makes the batch retry, never fail the row",
          "[live][e2e]") {
  const char* const projects =
      "CREATE TABLE projects (id int PRIMARY KEY, name text NOT NULL); "
      "INSERT INTO projects SELECT g, 'project ' || g FROM generate_series(0, 6) g";
  auto recipe = recipe_file("live_read", R"lua(
return {
  name = "live-read",
  table = "t",
  commit = "batch",
  writes = { t = { "status" } },
  each = function(row)
    if row.id % 10 == 0 then query("select sleep_a_while()") end
    patch_if_empty(row, "status", "Active " .. read("projects", { id = row.id % 7 }).name)
  end,
}
)lua");
  const std::vector<std::string> args = {"--batch-size", "20", "--lock-timeout", "300"};
  auto expected = uninterrupted(200, recipe, args, projects);

  auto db = fresh_database();
  sql(db, fixture(200));
  sql(db, projects);
  // The application's session: a migration holds the read table for about 2 s.
  host::Database session(db);
  session.exec("BEGIN");
  session.exec("LOCK TABLE projects IN ACCESS EXCLUSIVE MODE");
  std::string session_error;
  std::thread application([&] {
    try {
      std::this_thread::sleep_for(std::chrono::seconds(2));
      session.exec("COMMIT");
    } catch (const std::exception& e) {
      session_error = e.what();
    }
  });
  auto run = run_recipe(db, recipe, args);
  application.join();
  INFO(run.output);
  REQUIRE(session_error.empty());
  // Before, the read's lock timeout was handed to the recipe, whose row failed.
  REQUIRE(run.exit_code == 0);
  CHECK(run.report["timing"]["retries"].get<long long>() > 0);
  check_exact(db, run.run_id, expected);
}

TEST_CASE("live: a batch run whose connections are terminated reconnects and finishes",
          "[live][e2e]") {
  auto db = fresh_database();
  sql(db, fixture(400));
  auto recipe = slow_recipe("batch");
  auto expected = uninterrupted(400, recipe, k_batch);

  // No leak check: see the atomic case below (libpqxx 6.4 on a broken connection).
  HostChild child(run_args(db, recipe, k_batch), {"ASAN_OPTIONS=detect_leaks=0"});
  auto id = run_after_batches(db, child);
  CHECK(terminate_other_backends(db) > 0);
  // Once more, later, in the middle of a batch.
  auto later = committed_batches(db) + 3;
  REQUIRE(eventually([&] { return child.ended() || committed_batches(db) >= later; }));
  if (!child.ended()) {
    eventually([&] { return child.ended() || recipe_is_sleeping(db); });
    terminate_other_backends(db);
  }
  auto run = child.wait();
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  CHECK(ledger_status(db, id) == "succeeded");
  CHECK(run.report["timing"]["retries"].get<long long>() > 0);
  check_exact(db, id, expected);
}

TEST_CASE("live: an atomic run whose connection is terminated exits 4 with nothing changed",
          "[live][e2e]") {
  auto db = fresh_database();
  sql(db, fixture(400));
  auto before = dump_user_tables(db);
  auto recipe = slow_recipe("atomic");

  // libpqxx 6.4 leaks the PGresult of a statement whose connection broke
  // (connection_base::make_result asks for the client encoding before it owns the
  // result); under LeakSanitizer that would turn exit 4 into 1.
  HostChild child(run_args(db, recipe, {"--batch-size", "10"}), {"ASAN_OPTIONS=detect_leaks=0"});
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  REQUIRE(eventually([&] { return child.ended() || recipe_is_sleeping(db); }));
  // The run's 2 s would leave a slow machine little margin: from now on it cannot end.
  sql(db, "UPDATE flags SET slow = true");
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  REQUIRE_FALSE(child.ended());
  CHECK(terminate_other_backends(db) > 0);
  auto run = child.wait();
  INFO(run.output);
  CHECK(run.exit_code == 4);
  sql(db, "UPDATE flags SET slow = false");
  CHECK(dump_user_tables(db) == before);
  CHECK(ledger_rows(db, "changes") == 0);
}

TEST_CASE("live: pause_when holds the run while true, then it finishes", "[live][e2e]") {
  auto db = fresh_database();
  sql(db, fixture(100));
  sql(db, "UPDATE flags SET paused = true");
  auto recipe = plain_recipe();
  auto expected = uninterrupted(100, recipe, {"--batch-size", "20"});

  HostChild child(
      run_args(db, recipe, {"--batch-size", "20", "--pause-when", "SELECT paused FROM flags"}));
  // Held: nothing written for about 2 s.
  for (int i = 0; i < 20; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    REQUIRE_FALSE(child.ended());
    REQUIRE(patched_rows(db) == 0);
  }
  // host status, from outside, says the run is throttled, once its worker has shown
  // it (a slow machine may take longer than the 2 s above to get there).
  nlohmann::json held;
  bool shown = eventually([&] {
    auto id = only_run(db);
    if (id.empty()) return false;
    auto status = run_host({"status", id, "--json", "--db", db});
    held = json_object_in(status.output);
    return status.exit_code == 0 && held.is_object() && held["progress"]["throttled"] == true;
  });
  INFO(held.dump());
  CHECK(shown);
  CHECK(held["status"] == "running");
  CHECK(patched_rows(db) == 0);
  sql(db, "UPDATE flags SET paused = false");
  auto run = child.wait();
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  CHECK(run.report["timing"]["throttled_seconds"].get<double>() > 0);
  CHECK(status_json(db, run.run_id)["progress"]["throttled"] == false);
  check_exact(db, run.run_id, expected);
}

TEST_CASE("live: a pause_when that is not one boolean, or that writes, is refused before any "
          "write",
          "[live][e2e]") {
  auto db = fresh_database();
  sql(db, fixture(50));
  auto before = dump_user_tables(db);
  auto recipe = plain_recipe();
  for (const char* query :
       {"SELECT 1", "SELECT paused, slow FROM flags", "SELECT paused FROM flags, t",
        "SELECT 'yes'", "WITH w AS (UPDATE flags SET paused = true RETURNING paused) SELECT "
                        "paused FROM w"}) {
    INFO(query);
    auto run = run_recipe(db, recipe, {"--batch-size", "20", "--pause-when", query});
    INFO(run.output);
    CHECK(run.exit_code == 2);
    CHECK(ledger_rows(db, "runs") == 0);
    CHECK(dump_user_tables(db) == before);
  }
}

TEST_CASE("live: --max-rate throttles the run", "[live][e2e]") {
  auto db = fresh_database();
  sql(db, fixture(100));
  auto recipe = plain_recipe();
  auto run = run_recipe(db, recipe, {"--batch-size", "20", "--max-rate", "50"});
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  CHECK(run.report["timing"]["throttled_seconds"].get<double>() > 0);
  CHECK(patched_rows(db) == 90);
}

TEST_CASE("live: without a fixed batch size, batches adapt to --target-batch-ms", "[live][e2e]") {
  auto recipe = plain_recipe();  // no batch_size
  SECTION("a target far below what 1000 rows take: batches shrink") {
    auto db = fresh_database();
    sql(db, fixture(5000));
    auto run = run_recipe(db, recipe, {"--target-batch-ms", "1"});
    INFO(run.output);
    REQUIRE(run.exit_code == 0);
    // 5000 rows in one chunk: 1000-row batches would never be smaller.
    CHECK(run.report["timing"]["batch_rows_max"].get<long long>() == 1000);  // the first
    CHECK(run.report["timing"]["batch_rows_min"].get<long long>() < 1000);
    CHECK(patched_rows(db) == 4500);
    CHECK(doubled_cells(db, run.run_id) == 0);
  }
  SECTION("a target far above: batches grow, within a chunk") {
    auto db = fresh_database();
    sql(db, fixture(60000));
    auto run = run_recipe(db, recipe, {"--target-batch-ms", "600000"});
    INFO(run.output);
    REQUIRE(run.exit_code == 0);
    CHECK(run.report["timing"]["batch_rows_max"].get<long long>() > 1000);
    CHECK(run.report["stats"]["scanned"].get<long long>() == 60000);
    CHECK(patched_rows(db) == 54000);
    CHECK(ledger_cells(db, run.run_id) == 54000);
  }
  SECTION("a fixed batch size does not adapt") {
    auto db = fresh_database();
    sql(db, fixture(3000));
    auto run = run_recipe(db, recipe, {"--batch-size", "500", "--target-batch-ms", "1"});
    INFO(run.output);
    REQUIRE(run.exit_code == 0);
    CHECK(run.report["timing"]["batch_rows_min"].get<long long>() == 500);
    CHECK(run.report["timing"]["batch_rows_max"].get<long long>() == 500);
  }
}

TEST_CASE("live: host pause stops a batch run over an input file too; resume finishes it",
          "[live][e2e]") {
  auto db = fresh_database();
  sql(db, fixture(0));
  sql(db, "CREATE TABLE people (id int PRIMARY KEY, name text NOT NULL)");
  std::string csv = "id,name\n";
  for (int i = 1; i <= 300; ++i) csv += std::to_string(i) + ",p" + std::to_string(i) + "\n";
  auto input = write_file("people_" + next_suffix() + ".csv", csv);
  auto recipe = recipe_file("live_people", R"lua(
return {
  name = "live-people",
  input = "people",
  commit = "batch",
  writes = { people = { "*" } },
  each = function(record)
    if tonumber(record.id) % 10 == 0 then query("select sleep_a_while()") end
    insert_if_absent("people", { id = tonumber(record.id), name = record.name })
  end,
}
)lua");
  HostChild child(run_args(db, recipe, {"--batch-size", "10", "--input", "people=" + input}));
  bool committed = eventually([&] {
    return child.ended() ||
           (ledger_exists(db) &&
            value(db, "SELECT coalesce(max((checkpoint->>'batches')::int), 0) >= 2 FROM "
                      "host_ledger.runs") == "t");
  });
  REQUIRE(committed);
  REQUIRE_FALSE(child.ended());
  sql(db, "UPDATE flags SET slow = true");  // the pause lands mid-run, however slow its start
  auto id = only_run(db);
  auto paused = run_host({"pause", id, "--db", db});
  INFO(paused.output);
  CHECK(paused.exit_code == 0);
  auto stopped = child.wait();
  sql(db, "UPDATE flags SET slow = false");
  INFO(stopped.output);
  CHECK(stopped.exit_code == 6);
  CHECK(ledger_status(db, id) == "paused");
  long long done = std::stoll(value(db, "SELECT count(*) FROM people"));
  CHECK(done > 0);
  CHECK(done < 300);
  auto resumed = resume(db, id);
  INFO(resumed.output);
  REQUIRE(resumed.exit_code == 0);
  CHECK(ledger_status(db, id) == "succeeded");
  CHECK(value(db, "SELECT count(*) FROM people") == "300");
  CHECK(value(db, "SELECT count(*) FROM people WHERE name = 'p' || id") == "300");
}
