// The backfill benchmark of issue 7: the same backfill done seven ways, side by side
// in one run, on a throwaway cluster with PostgreSQL's durable defaults (fsync,
// synchronous_commit and full_page_writes on).
//
// The table `tasks` has two cells to fill per row where empty: `status` gets a
// default text, `seconds` the conversion of `minutes`; 90% of the rows have both
// empty, the others hold values that must be kept. The variants:
//   floor         one set-based UPDATE, no ledger
//   floor-ledger  one set-based UPDATE and its ledger (one row per 1000 keys and
//                 column, arrays of keys, old and new values) in the same statement
//   dba           the DBA's PL/pgSQL procedure: keyset batches, COMMIT per batch,
//                 no ledger; every ratio is to this one
//   engineer      tests/bench/engineer_backfill.py (psycopg2): keyset batches,
//                 guarded UPDATEs through execute_values, a log row per changed
//                 cell, commit per batch
//   host          `host run` with patch_if_empty x2, commit = "batch", full ledger
//   host-read     the same plus one read() of the task's project per row
//   host-w2       `host run --workers 2`: two chunks at once on two connections
// Each repetition recreates the table from a template, VACUUM ANALYZEs it and
// CHECKPOINTs before every variant. The first repetition also checks that every
// variant leaves the same table (a checksum) and logged every changed cell.
//
// Usage: host_bench [ROWS] [REPS] [--batch N] [--only a,b,..] [--profile] [--lock PATH]
// (bash tests/bench/run builds it in Release and runs it.)
#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "host/database.hpp"
#include "host/temp_cluster.hpp"

namespace {

// ---------------------------------------------------------------- small helpers

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double median(std::vector<double> values) {
  if (values.empty()) return NAN;
  std::sort(values.begin(), values.end());
  std::size_t n = values.size();
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

std::string read_text(const std::string& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

void write_text(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

// 1234567 -> "1,234,567"
std::string grouped(long long value) {
  std::string digits = std::to_string(value < 0 ? -value : value), out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return value < 0 ? "-" + out : out;
}

std::string format(const char* fmt, double value) {
  if (std::isnan(value)) return "-";
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, fmt, value);
  return buffer;
}

std::string scalar(host::Database& db, const std::string& sql) {
  auto result = db.exec(sql);
  if (result.empty() || result[0][0].is_null()) return "";
  return result[0][0].c_str();
}

// The first "model name" of /proc/cpuinfo.
std::string cpu_model() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("model name", 0) == 0) {
      auto colon = line.find(':');
      return colon == std::string::npos ? line : line.substr(colon + 2);
    }
  }
  return "unknown CPU";
}

// ------------------------------------------------------- processes and their cost

// What an interrupted benchmark must clean up: the child it waits for, the cluster
// and the scratch folder. A signal handler only writes to a pipe; a thread does the
// cleaning (a handler may not stop servers) and ends the process; the main thread,
// woken by the failures that follow, only waits for it (wait_if_interrupted).
std::atomic<bool> g_interrupted{false};
std::atomic<pid_t> g_child{0};
std::atomic<host::TempCluster*> g_cluster{nullptr};
std::string g_scratch;
int g_signal_pipe[2] = {-1, -1};

void wait_if_interrupted() {
  while (g_interrupted) pause();
}

void on_signal(int signal_number) {
  unsigned char byte = static_cast<unsigned char>(signal_number);
  ssize_t ignored = write(g_signal_pipe[1], &byte, 1);
  (void)ignored;
}

void clean_up_on_signals() {
  if (pipe(g_signal_pipe) != 0) return;
  std::thread([] {
    unsigned char byte = 0;
    while (read(g_signal_pipe[0], &byte, 1) < 0 && errno == EINTR) {
    }
    g_interrupted = true;
    std::fprintf(stderr, "host_bench: interrupted (signal %d), removing the cluster\n", byte);
    if (pid_t child = g_child.load(); child > 0) kill(child, SIGKILL);
    if (host::TempCluster* cluster = g_cluster.load()) cluster->remove();
    std::error_code ignored;
    if (!g_scratch.empty()) std::filesystem::remove_all(g_scratch, ignored);
    _exit(128 + byte);
  }).detach();
  for (int signal_number : {SIGINT, SIGTERM, SIGHUP}) std::signal(signal_number, on_signal);
}

struct ChildResult {
  int exit_code = -1;
  double cpu_seconds = 0;  // user + system of the child (and anything it waited for)
  long max_rss_kb = 0;
};

// Runs argv with stdout and stderr sent to log_path, and returns its exit code and
// the resource usage wait4 reports for exactly that process.
ChildResult run_measured(const std::vector<std::string>& argv, const std::string& log_path) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    for (int signal_number : {SIGINT, SIGTERM, SIGHUP}) std::signal(signal_number, SIG_DFL);
    int log = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int null_fd = open("/dev/null", O_RDONLY);
    if (log < 0 || null_fd < 0) _exit(126);
    dup2(null_fd, STDIN_FILENO);
    dup2(log, STDOUT_FILENO);
    dup2(log, STDERR_FILENO);
    execvp(args[0], args.data());
    std::fprintf(stderr, "cannot run %s: %s\n", args[0], std::strerror(errno));
    _exit(127);
  }
  g_child = pid;
  int status = 0;
  rusage usage{};
  while (wait4(pid, &status, 0, &usage) < 0) {
    if (errno != EINTR) throw std::runtime_error("wait4 failed");
  }
  g_child = 0;
  wait_if_interrupted();
  ChildResult result;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  result.cpu_seconds = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                       static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
  result.max_rss_kb = usage.ru_maxrss;
  return result;
}

// CPU seconds used so far by the whole PostgreSQL server: the postmaster, the
// children it has reaped (cutime, cstime) and its live children. The difference of
// two readings is what the server burnt in between, backends that came and went
// included.
double server_cpu_seconds(pid_t postmaster) {
  auto times = [](const std::string& stat_path, bool with_children, pid_t* parent) -> double {
    std::string text = read_text(stat_path);
    auto close = text.rfind(')');
    if (close == std::string::npos) return 0;
    std::istringstream fields(text.substr(close + 2));
    std::vector<std::string> f;
    for (std::string field; fields >> field;) f.push_back(field);
    // After "pid (comm) ": state ppid pgrp session tty tpgid flags minflt cminflt
    // majflt cmajflt utime stime cutime cstime: indices 0..14.
    if (f.size() < 15) return 0;
    if (parent) *parent = static_cast<pid_t>(std::atol(f[1].c_str()));
    double ticks = std::atof(f[11].c_str()) + std::atof(f[12].c_str());
    if (with_children) ticks += std::atof(f[13].c_str()) + std::atof(f[14].c_str());
    return ticks;
  };
  double ticks = times("/proc/" + std::to_string(postmaster) + "/stat", true, nullptr);
  std::error_code ignored;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ignored)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    pid_t parent = 0;
    double child = times(entry.path().string() + "/stat", false, &parent);
    if (parent == postmaster) ticks += child;
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// CPU seconds the whole machine has been busy (all cores), from /proc/stat.
double machine_busy_seconds() {
  std::ifstream stat("/proc/stat");
  std::string cpu;
  double user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  stat >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
  return (user + nice + system + irq + softirq + steal) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// CPU seconds used by this process itself.
double own_cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

// Holds an flock on a file while a measurement runs, so that nothing else that
// honours the same lock (builds, other benchmarks) runs at the same time.
class MachineLock {
 public:
  explicit MachineLock(const std::string& path) {
    if (path.empty()) return;
    m_fd = open(path.c_str(), O_RDWR | O_CREAT, 0666);
    if (m_fd < 0) throw std::runtime_error("cannot open the lock file " + path);
  }
  ~MachineLock() {
    if (m_fd >= 0) close(m_fd);
  }
  MachineLock(const MachineLock&) = delete;
  MachineLock& operator=(const MachineLock&) = delete;
  void acquire() {
    if (m_fd < 0) return;
    if (flock(m_fd, LOCK_EX | LOCK_NB) == 0) return;
    std::fprintf(stderr, "  (waiting for the machine lock)\n");
    while (flock(m_fd, LOCK_EX) != 0 && errno == EINTR) {
    }
  }
  void release() {
    if (m_fd >= 0) flock(m_fd, LOCK_UN);
  }

 private:
  int m_fd = -1;
};

// ----------------------------------------------------------------- the schema

const char* const k_schema = R"(
CREATE TABLE projects (id bigint PRIMARY KEY, name text NOT NULL, default_status text NOT NULL);
INSERT INTO projects SELECT g, 'project ' || g, 'todo' FROM generate_series(1, 10000) g;
CREATE TABLE tasks_template AS
  SELECT g::bigint AS id,
         (1 + g % 10000)::bigint AS project_id,
         'task ' || g AS title,
         CASE WHEN g % 10 = 0 THEN 'done' END AS status,
         (g % 600)::integer AS minutes,
         CASE WHEN g % 10 = 0 THEN (g % 600) * 60 + 7 END AS seconds
    FROM generate_series(1, $ROWS) g;
ALTER TABLE tasks_template ADD PRIMARY KEY (id);

CREATE PROCEDURE backfill_tasks(batch_size integer DEFAULT 1000)
LANGUAGE plpgsql AS $$
DECLARE
  last_id bigint := 0;
  batch_end bigint;
BEGIN
  LOOP
    SELECT max(id) INTO batch_end
      FROM (SELECT id FROM tasks WHERE id > last_id ORDER BY id LIMIT batch_size) AS batch;
    EXIT WHEN batch_end IS NULL;
    UPDATE tasks
       SET status = coalesce(status, 'todo'),
           seconds = coalesce(seconds, minutes * 60)
     WHERE id > last_id AND id <= batch_end
       AND (status IS NULL OR seconds IS NULL);
    COMMIT;
    last_id := batch_end;
  END LOOP;
END $$;
)";

// Drops every variant's table and ledger, recreates `tasks` from the template.
const char* const k_reset = R"(
DROP TABLE IF EXISTS tasks, floor_ledger, backfill_log;
DROP SCHEMA IF EXISTS host_ledger CASCADE;
CREATE TABLE tasks AS SELECT * FROM tasks_template ORDER BY id;
ALTER TABLE tasks ADD PRIMARY KEY (id),
  ALTER project_id SET NOT NULL, ALTER title SET NOT NULL,
  ADD FOREIGN KEY (project_id) REFERENCES projects;
CREATE TABLE floor_ledger (
  run_id uuid NOT NULL, seq bigint NOT NULL, batch integer NOT NULL,
  table_name text NOT NULL, column_name text NOT NULL,
  keys jsonb NOT NULL, old_values text[], new_values text[], reason text,
  PRIMARY KEY (run_id, seq));
)";

const char* const k_floor = R"(
UPDATE tasks
   SET status = coalesce(status, 'todo'), seconds = coalesce(seconds, minutes * 60)
 WHERE status IS NULL OR seconds IS NULL
)";

// The old values come from the statement's own snapshot of the row (a self-join);
// the changed cells are grouped per 1000 keys and column, like the host's ledger
// rows (keys, old values, new values as arrays), in one pass over the changed rows.
const char* const k_floor_ledger = R"(
WITH changed AS (
  UPDATE tasks AS t
     SET status = coalesce(t.status, 'todo'), seconds = coalesce(t.seconds, t.minutes * 60)
    FROM tasks AS o
   WHERE o.id = t.id AND (o.status IS NULL OR o.seconds IS NULL)
  RETURNING t.id, o.status AS old_status, o.seconds AS old_seconds, t.status, t.seconds
), batches AS (
  SELECT (id - 1) / 1000 AS batch,
         jsonb_agg(id) FILTER (WHERE old_status IS NULL) AS status_keys,
         array_agg(old_status) FILTER (WHERE old_status IS NULL) AS status_old,
         array_agg(status) FILTER (WHERE old_status IS NULL) AS status_new,
         jsonb_agg(id) FILTER (WHERE old_seconds IS NULL) AS seconds_keys,
         array_agg(old_seconds::text) FILTER (WHERE old_seconds IS NULL) AS seconds_old,
         array_agg(seconds::text) FILTER (WHERE old_seconds IS NULL) AS seconds_new
    FROM changed
   GROUP BY 1
)
INSERT INTO floor_ledger (run_id, seq, batch, table_name, column_name, keys, old_values,
                          new_values, reason)
SELECT '00000000-0000-0000-0000-000000000001', row_number() OVER (), b.batch, 'tasks',
       c.column_name, c.keys, c.old_values, c.new_values, 'bench'
  FROM batches AS b
 CROSS JOIN LATERAL (VALUES ('status', b.status_keys, b.status_old, b.status_new),
                            ('seconds', b.seconds_keys, b.seconds_old, b.seconds_new))
       AS c (column_name, keys, old_values, new_values)
 WHERE c.keys IS NOT NULL
)";

const char* const k_plain_recipe = R"(return {
  name = "bench-plain", table = "tasks", columns = { "id", "status", "minutes", "seconds" },
  writes = { tasks = { "status", "seconds" } },
  batch_size = 1000, commit = "batch",
  each = function(row)
    patch_if_empty(row, "status", "todo", { reason = "default status" })
    patch_if_empty(row, "seconds", row.minutes * 60, { reason = "minutes to seconds" })
  end,
})";

const char* const k_read_recipe = R"(return {
  name = "bench-read", table = "tasks",
  columns = { "id", "project_id", "status", "minutes", "seconds" },
  writes = { tasks = { "status", "seconds" } },
  batch_size = 1000, commit = "batch",
  each = function(row)
    local project = read("projects", { id = row.project_id }, { columns = { "default_status" } })
    patch_if_empty(row, "status", project.default_status, { reason = "project's default status" })
    patch_if_empty(row, "seconds", row.minutes * 60, { reason = "minutes to seconds" })
  end,
})";

// What every variant must leave: the template with its empty cells filled.
const char* const k_expected_checksum = R"(
SELECT md5(string_agg(id || '|' || coalesce(status, 'todo') || '|' ||
                      coalesce(seconds, minutes * 60), ',' ORDER BY id))
  FROM tasks_template
)";

const char* const k_checksum = R"(
SELECT md5(string_agg(id || '|' || coalesce(status, '<null>') || '|' ||
                      coalesce(seconds::text, '<null>'), ',' ORDER BY id))
  FROM tasks
)";

// ----------------------------------------------------------------- the variants

struct Sample {
  double seconds = 0;
  double client_cpu = NAN;  // seconds; for the variants run as a process
  double max_rss_mb = NAN;
  double server_cpu = 0;  // seconds
  double wal_mb = 0;
  double other_cpu = 0;  // seconds of CPU used by anything else on the machine: noise
};

struct Outcome {
  long long ledger_cells = -1;  // -1: the variant keeps no ledger
  long long protected_cells = -1;
};

struct Variant {
  Variant(std::string name_, std::string label_, std::function<Outcome(const std::string&)> run_)
      : name(std::move(name_)), label(std::move(label_)), run(std::move(run_)) {}
  std::string name;
  std::string label;
  std::function<Outcome(const std::string& log)> run;  // throws on failure
  std::vector<Sample> samples;
};

struct Bench {
  long rows = 1000000;
  int repetitions = 3;
  int batch = 1000;
  bool profile = false;
  std::string lock_path;
  std::string only;
};

long long as_count(const std::string& text) { return text.empty() ? 0 : std::atoll(text.c_str()); }

}  // namespace

int main(int argc, char** argv) {
  Bench bench;
  CLI::App app{"Times the issue-7 backfill six ways on a throwaway durable cluster."};
  app.add_option("ROWS", bench.rows,
                 "rows in the table (default 1000000; 10000000 for the big run)")
      ->check(CLI::Range(1000L, 1000000000L));
  app.add_option("REPS", bench.repetitions, "repetitions, medians printed (default 3)")
      ->check(CLI::Range(1, 100));
  app.add_option("--reps", bench.repetitions, "repetitions (the same as REPS)")
      ->check(CLI::Range(1, 100));
  app.add_option("--batch", bench.batch, "rows per batch (default 1000)")
      ->check(CLI::Range(1, 1000000));
  app.add_option("--only", bench.only,
                 "comma-separated subset: floor,floor-ledger,dba,engineer,host,host-read,host-w2");
  app.add_flag("--profile", bench.profile,
               "load pg_stat_statements; after the timed runs, print the top statements of one "
               "more run of dba, host and host-read");
  app.add_option("--lock", bench.lock_path,
                 "flock this file during setup and each repetition (released in between)");
  CLI11_PARSE(app, argc, argv);

  try {
    MachineLock lock(bench.lock_path);
    lock.acquire();
    host::ClusterOptions options;
    options.durability = host::Durability::on;
    if (bench.profile)
      options.settings = {"shared_preload_libraries=pg_stat_statements",
                          "pg_stat_statements.track=none", "track_io_timing=on"};
    clean_up_on_signals();
    host::TempCluster cluster(options);
    g_cluster = &cluster;
    std::string conninfo = cluster.create_database("bench");
    host::Database db(conninfo);
    pid_t postmaster =
        static_cast<pid_t>(std::atol(read_text(cluster.data_folder() + "/postmaster.pid").c_str()));

    std::string schema = k_schema;
    schema.replace(schema.find("$ROWS"), 5, std::to_string(bench.rows));
    db.exec(schema);
    db.exec("VACUUM ANALYZE projects");
    db.exec("VACUUM ANALYZE tasks_template");
    if (bench.profile) db.exec("CREATE EXTENSION pg_stat_statements");
    const std::string expected_checksum = scalar(db, k_expected_checksum);
    const long long expected_cells =
        as_count(scalar(db,
                        "SELECT count(*) FILTER (WHERE status IS NULL) + "
                        "count(*) FILTER (WHERE seconds IS NULL) FROM tasks_template"));
    const long long expected_protected = 2 * bench.rows - expected_cells;

    char folder_pattern[] = "/tmp/host-bench-XXXXXX";
    if (!mkdtemp(folder_pattern)) throw std::runtime_error("cannot create a temporary folder");
    const std::string dir = folder_pattern;
    g_scratch = dir;
    std::string plain_recipe = k_plain_recipe, read_recipe = k_read_recipe;
    for (auto* recipe : {&plain_recipe, &read_recipe}) {
      auto at = recipe->find("batch_size = 1000");
      recipe->replace(at, 17, "batch_size = " + std::to_string(bench.batch));
    }
    write_text(dir + "/plain.lua", plain_recipe);
    write_text(dir + "/read.lua", read_recipe);

    const std::string batch = std::to_string(bench.batch);
    auto run_host = [&](const std::string& recipe, const std::string& log, Sample& sample,
                        const std::string& workers = "1") {
      std::string report = dir + "/report.json";
      std::remove(report.c_str());
      auto result = run_measured({HOST_BINARY, "run", dir + "/" + recipe, "--db", conninfo,
                                  "--quiet", "--report", report, "--workers", workers},
                                 log);
      sample.client_cpu = result.cpu_seconds;
      sample.max_rss_mb = static_cast<double>(result.max_rss_kb) / 1024.0;
      if (result.exit_code != 0)
        throw std::runtime_error("host run " + recipe + " exited " +
                                 std::to_string(result.exit_code) + ":\n" + read_text(log));
      auto json = nlohmann::json::parse(read_text(report));
      if (json.value("status", "") != "succeeded")
        throw std::runtime_error("host run " + recipe + " did not succeed:\n" + json.dump(2));
      return Outcome{json["stats"]["patched"].get<long long>(),
                     json["stats"]["protected"].get<long long>()};
    };

    Sample* current = nullptr;  // the sample being measured, for the process variants
    std::vector<Variant> variants = {
        {"floor", "one set-based UPDATE, no ledger (the floor)",
         [&](const std::string&) {
           host::Database(conninfo).exec(k_floor);
           return Outcome{};
         }},
        {"floor-ledger", "one set-based UPDATE + ledger in the same statement",
         [&](const std::string&) {
           host::Database(conninfo).exec(k_floor_ledger);
           return Outcome{
               as_count(scalar(db, "SELECT sum(cardinality(new_values)) FROM floor_ledger")), -1};
         }},
        {"dba", "DBA: PL/pgSQL keyset batches, COMMIT per batch, no ledger",
         [&](const std::string&) {
           host::Database(conninfo).exec("CALL backfill_tasks(" + batch + ")");
           return Outcome{};
         }},
        {"engineer", "engineer: psycopg2 keyset batches + execute_values + ledger",
         [&](const std::string& log) {
           const char* python = std::getenv("HOST_BENCH_PYTHON");
           auto result = run_measured({python && *python ? python : "/usr/bin/python3",
                                       ENGINEER_SCRIPT, "--dsn", conninfo, "--batch-size", batch},
                                      log);
           current->client_cpu = result.cpu_seconds;
           current->max_rss_mb = static_cast<double>(result.max_rss_kb) / 1024.0;
           if (result.exit_code != 0)
             throw std::runtime_error("the engineer's script exited " +
                                      std::to_string(result.exit_code) + ":\n" + read_text(log));
           return Outcome{as_count(scalar(db, "SELECT count(*) FROM backfill_log")), -1};
         }},
        {"host", "host run (patch_if_empty x2, full ledger)",
         [&](const std::string& log) { return run_host("plain.lua", log, *current); }},
        {"host-read", "host run + one read() of a related row per row",
         [&](const std::string& log) { return run_host("read.lua", log, *current); }},
        // Two workers on two connections: one's Lua overlaps the other's database work.
        {"host-w2", "host run --workers 2 (the same recipe)",
         [&](const std::string& log) { return run_host("plain.lua", log, *current, "2"); }},
    };
    if (!bench.only.empty()) {
      std::string list = "," + bench.only + ",";
      std::vector<Variant> chosen;  // in the order of the table, whatever the order asked
      for (auto& v : variants)
        if (list.find("," + v.name + ",") != std::string::npos) chosen.push_back(std::move(v));
      if (chosen.empty()) {
        std::fprintf(stderr,
                     "--only names none of: floor,floor-ledger,dba,engineer,host,host-read,host-w2\n");
        return 2;
      }
      variants = std::move(chosen);
    }

    auto reset = [&] {
      db.exec(k_reset);
      db.exec("VACUUM ANALYZE tasks");
      db.exec("CHECKPOINT");
    };
    // A backend's CPU reaches the postmaster's cutime only once it has exited and
    // been reaped: wait for every other session to be gone before reading it.
    auto wait_for_sessions_to_end = [&] {
      for (int i = 0; i < 500; ++i) {
        if (scalar(db,
                   "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client "
                   "backend' AND pid <> pg_backend_pid()") == "0")
          break;
        usleep(10000);
      }
      usleep(50000);
    };
    auto wal_position = [&] {
      return std::atof(
          scalar(db, "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')").c_str());
    };

    // The header: machine, server, table.
    std::time_t now = std::time(nullptr);
    char date[32];
    std::strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
    std::printf("host backfill benchmark, %s\n", date);
    std::printf("machine:    %ld cores (nproc), %s, %.1f GB RAM\n", sysconf(_SC_NPROCESSORS_ONLN),
                cpu_model().c_str(),
                static_cast<double>(sysconf(_SC_PHYS_PAGES)) *
                    static_cast<double>(sysconf(_SC_PAGESIZE)) / 1e9);
    std::printf("PostgreSQL: %s\n", scalar(db, "SELECT version()").c_str());
    std::printf(
        "cluster:    throwaway, fsync=%s synchronous_commit=%s full_page_writes=%s "
        "shared_buffers=%s max_wal_size=%s%s\n",
        scalar(db, "SHOW fsync").c_str(), scalar(db, "SHOW synchronous_commit").c_str(),
        scalar(db, "SHOW full_page_writes").c_str(), scalar(db, "SHOW shared_buffers").c_str(),
        scalar(db, "SHOW max_wal_size").c_str(),
        bench.profile ? ", pg_stat_statements loaded (track=none while timed)" : "");
    std::printf(
        "table:      tasks, %s rows; %s cells to fill (status default, minutes -> seconds), "
        "%s cells to keep\n",
        grouped(bench.rows).c_str(), grouped(expected_cells).c_str(),
        grouped(expected_protected).c_str());
    std::printf(
        "runs:       batch %d, %d repetition%s, medians; table recreated, VACUUM ANALYZE "
        "and CHECKPOINT before each variant\n\n",
        bench.batch, bench.repetitions, bench.repetitions == 1 ? "" : "s");
    std::fflush(stdout);
    lock.release();

    bool all_checks_ok = true;
    for (int rep = 0; rep < bench.repetitions; ++rep) {
      lock.acquire();
      std::fprintf(stderr, "repetition %d of %d\n", rep + 1, bench.repetitions);
      for (auto& variant : variants) {
        reset();
        Sample sample;
        current = &sample;
        std::string log = dir + "/" + variant.name + ".log";
        double cpu_before = server_cpu_seconds(postmaster);
        double busy_before = machine_busy_seconds(), own_before = own_cpu_seconds();
        double wal_before = wal_position();
        auto start = std::chrono::steady_clock::now();
        Outcome outcome = variant.run(log);
        sample.seconds = seconds_since(start);
        wait_for_sessions_to_end();
        sample.server_cpu = server_cpu_seconds(postmaster) - cpu_before;
        sample.wal_mb = (wal_position() - wal_before) / (1024.0 * 1024.0);
        sample.other_cpu = std::max(
            0.0, machine_busy_seconds() - busy_before - (own_cpu_seconds() - own_before) -
                     sample.server_cpu - (std::isnan(sample.client_cpu) ? 0.0 : sample.client_cpu));
        variant.samples.push_back(sample);
        std::fprintf(stderr, "  %-13s %8.2f s  (other processes: %.1f s CPU)\n",
                     variant.name.c_str(), sample.seconds, sample.other_cpu);
        if (rep == 0) {
          // Fair only if every variant did the same work: the same final table, and
          // a ledger entry for every changed cell where the variant keeps one.
          bool same_table = scalar(db, k_checksum) == expected_checksum;
          bool ledger_ok = outcome.ledger_cells < 0 || outcome.ledger_cells == expected_cells;
          bool protected_ok =
              outcome.protected_cells < 0 || outcome.protected_cells == expected_protected;
          std::string detail = same_table ? "table checksum as expected" : "TABLE CHECKSUM DIFFERS";
          if (outcome.ledger_cells >= 0)
            detail += ", " + grouped(outcome.ledger_cells) + " cells in its ledger" +
                      (ledger_ok ? "" : " (EXPECTED " + grouped(expected_cells) + ")");
          if (outcome.protected_cells >= 0)
            detail += ", " + grouped(outcome.protected_cells) + " protected" +
                      (protected_ok ? "" : " (EXPECTED " + grouped(expected_protected) + ")");
          std::printf("check %-13s %s %s\n", variant.name.c_str(),
                      same_table && ledger_ok && protected_ok ? "ok  " : "FAIL", detail.c_str());
          std::fflush(stdout);
          all_checks_ok = all_checks_ok && same_table && ledger_ok && protected_ok;
        }
      }
      lock.release();
    }

    // The table of medians.
    const Variant* dba = nullptr;
    for (const auto& v : variants)
      if (v.name == "dba") dba = &v;
    auto median_of = [](const Variant& v, double Sample::*field) {
      std::vector<double> values;
      for (const auto& s : v.samples) values.push_back(s.*field);
      return median(values);
    };
    double dba_seconds = dba ? median_of(*dba, &Sample::seconds) : NAN;
    std::printf("\n");
    int number = 0;
    for (const auto& v : variants)
      std::printf("  %d %-13s %s\n", ++number, v.name.c_str(), v.label.c_str());
    std::printf("\n  %-15s %8s %10s %7s %11s %8s %9s %8s %8s\n", "variant", "seconds", "rows/s",
                "vs DBA", "CPU us/row", "RSS MB", "server s", "WAL MB", "other s");
    std::map<std::string, double> seconds_of, cpu_per_row_of, rss_of;
    number = 0;
    for (const auto& v : variants) {
      double seconds = median_of(v, &Sample::seconds);
      double cpu_per_row =
          median_of(v, &Sample::client_cpu) / static_cast<double>(bench.rows) * 1e6;
      double rss = median_of(v, &Sample::max_rss_mb);
      seconds_of[v.name] = seconds;
      cpu_per_row_of[v.name] = cpu_per_row;
      rss_of[v.name] = rss;
      std::printf(
          "  %d %-13s %8.2f %10s %7s %11s %8s %9.2f %8.0f %8.1f\n", ++number, v.name.c_str(),
          seconds, grouped(std::llround(static_cast<double>(bench.rows) / seconds)).c_str(),
          format("%.2f", seconds / dba_seconds).c_str(), format("%.2f", cpu_per_row).c_str(),
          format("%.1f", rss).c_str(), median_of(v, &Sample::server_cpu),
          median_of(v, &Sample::wal_mb), median_of(v, &Sample::other_cpu));
    }
    std::printf("\nper repetition: seconds (CPU seconds of other processes meanwhile)\n");
    for (const auto& v : variants) {
      std::printf("  %-13s", v.name.c_str());
      for (const auto& s : v.samples) std::printf(" %8.2f (%4.1f)", s.seconds, s.other_cpu);
      std::printf("\n");
    }
    std::printf(
        "\nCPU us/row, RSS MB: the client process (host, python3; user + system, peak RSS) "
        "from wait4.\nserver s: CPU of all PostgreSQL processes. WAL MB: WAL written during "
        "the variant.\nother s: CPU used meanwhile by other processes of the machine (noise: "
        "should be "
        "near 0). All medians.\n");
    auto ratio = [&](const std::string& a, const std::string& b) {
      return seconds_of.count(a) && seconds_of.count(b) ? seconds_of[a] / seconds_of[b] : NAN;
    };
    std::printf("\ntargets of issue 7:\n");
    std::printf("  host / DBA            %6s   (target <= 1.3, goal 1.1)\n",
                format("%.2f", ratio("host", "dba")).c_str());
    std::printf("  engineer / host       %6s   (target >= 3.5)\n",
                format("%.2f", ratio("engineer", "host")).c_str());
    std::printf("  host-read / host      %6s   (target <= 1.3)\n",
                format("%.2f", ratio("host-read", "host")).c_str());
    if (cpu_per_row_of.count("host"))
      std::printf(
          "  host CPU              %6s us/row (target <= 3); host-read %s us/row\n",
          format("%.2f", cpu_per_row_of["host"]).c_str(),
          format("%.2f", cpu_per_row_of.count("host-read") ? cpu_per_row_of["host-read"] : NAN)
              .c_str());
    if (rss_of.count("host"))
      std::printf("  host peak RSS         %6s MB (target < 64); host-read %s MB\n",
                  format("%.1f", rss_of["host"]).c_str(),
                  format("%.1f", rss_of.count("host-read") ? rss_of["host-read"] : NAN).c_str());
    std::fflush(stdout);

    if (bench.profile) {
      lock.acquire();
      db.exec("ALTER DATABASE bench SET pg_stat_statements.track = 'all'");
      for (auto& v : variants) {
        if (v.name != "dba" && v.name != "host" && v.name != "host-read") continue;
        reset();
        db.exec("SELECT pg_stat_statements_reset()");
        Sample sample;
        current = &sample;
        auto start = std::chrono::steady_clock::now();
        v.run(dir + "/" + v.name + ".log");
        double wall = seconds_since(start);
        auto totals = db.exec(
            "SELECT sum(total_exec_time) / 1000, sum(total_plan_time) / 1000, sum(calls), "
            "sum(wal_bytes) / 1048576 FROM pg_stat_statements "
            "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'bench') "
            "AND toplevel AND query NOT LIKE '%pg_stat_statements%'");
        std::printf(
            "\nprofile of %s: %.2f s wall, client CPU %s s, top-level statements %.2f s exec + "
            "%.2f s plan in %s calls, %.0f MB WAL\n  (the WAL flush of a COMMIT happens after the "
            "statement ends: pg_stat_statements does not see it)\n",
            v.name.c_str(), wall, format("%.2f", sample.client_cpu).c_str(),
            totals[0][0].as<double>(0), totals[0][1].as<double>(0),
            grouped(totals[0][2].as<long long>(0)).c_str(), totals[0][3].as<double>(0));
        auto top = db.exec(
            "SELECT calls, total_exec_time / 1000, total_exec_time * 1000 / greatest(calls, 1), "
            "rows, wal_bytes / 1048576, CASE WHEN toplevel THEN '' ELSE '[nested] ' END || "
            "left(regexp_replace(query, '\\s+', ' ', 'g'), 150) "
            "FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = "
            "'bench') AND query NOT LIKE '%pg_stat_statements%' ORDER BY total_exec_time DESC "
            "LIMIT 10");
        std::printf("  %8s %8s %9s %10s %7s  %s\n", "calls", "total s", "mean us", "rows", "WAL MB",
                    "statement");
        for (const auto& row : top)
          std::printf("  %8s %8.2f %9.0f %10s %7.1f  %s\n", grouped(row[0].as<long long>()).c_str(),
                      row[1].as<double>(), row[2].as<double>(),
                      grouped(row[3].as<long long>()).c_str(), row[4].as<double>(0),
                      row[5].c_str());
        std::fflush(stdout);
      }
      db.exec("ALTER DATABASE bench RESET pg_stat_statements.track");
      lock.release();
    }

    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
    if (!all_checks_ok) {
      std::fprintf(
          stderr, "a variant did not do the same work as the others: figures are not comparable\n");
      return 1;
    }
    return 0;
  } catch (const std::exception& e) {
    wait_if_interrupted();
    std::fprintf(stderr, "host_bench: %s\n", e.what());
    std::error_code ignored;
    if (!g_scratch.empty()) std::filesystem::remove_all(g_scratch, ignored);
    return 1;
  }
}
