// Prints medians for the same backfill done three ways on one throwaway cluster:
// the DBA's hand-written set-based UPDATEs (no ledger), `host run` with a
// patch_if_empty recipe (with ledger), and the recipe plus one read() per row.
// Usage: host_bench [ROWS] [REPETITIONS]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "host/database.hpp"
#include "host/process.hpp"
#include "host/temp_cluster.hpp"

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

void write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

}  // namespace

int main(int argc, char** argv) {
  long rows = argc > 1 ? std::atol(argv[1]) : 100000;
  int repetitions = argc > 2 ? std::atoi(argv[2]) : 3;
  host::TempCluster cluster;
  std::string conninfo = cluster.create_database("bench");
  host::Database db(conninfo);
  db.exec("CREATE TABLE phases (id bigint PRIMARY KEY, project_id bigint, status text, "
          "budget_cents bigint, name text NOT NULL); "
          "CREATE TABLE projects (id bigint PRIMARY KEY, code text NOT NULL)");
  db.exec("INSERT INTO projects SELECT g, 'P' || g FROM generate_series(1, 1000) g");
  db.exec("INSERT INTO phases SELECT g, 1 + g % 1000, CASE WHEN g % 10 = 0 THEN 'Done' END, "
          "NULL, 'phase ' || g FROM generate_series(1, " + std::to_string(rows) + ") g");
  db.exec("VACUUM ANALYZE phases");
  db.exec("VACUUM ANALYZE projects");
  std::string dir = "/tmp/host-bench";
  std::system(("mkdir -p " + dir).c_str());
  write(dir + "/patch.lua", R"(return {
  name = "bench-patch", table = "phases", columns = { "id", "status", "budget_cents" },
  writes = { phases = { "status", "budget_cents" } },
  each = function(row)
    patch_if_empty(row, "status", "Active", { reason = "bench" })
    patch_if_empty(row, "budget_cents", 0, { reason = "bench" })
  end })");
  write(dir + "/read.lua", R"(return {
  name = "bench-read", table = "phases", columns = { "id", "project_id", "status", "budget_cents" },
  writes = { phases = { "status", "budget_cents" } },
  each = function(row)
    local project = read("projects", { id = row.project_id })
    patch_if_empty(row, "status", project.code, { reason = "bench" })
    patch_if_empty(row, "budget_cents", 0, { reason = "bench" })
  end })");
  auto reset = [&] {
    db.exec("UPDATE phases SET status = CASE WHEN id % 10 = 0 THEN 'Done' END, budget_cents = NULL");
    db.exec("DROP SCHEMA IF EXISTS host_ledger CASCADE");
    db.exec("VACUUM ANALYZE phases");
  };
  std::vector<double> sql_times, host_times, read_times;
  for (int i = 0; i < repetitions; ++i) {
    reset();
    auto start = std::chrono::steady_clock::now();
    db.exec("BEGIN; UPDATE phases SET status = 'Active' WHERE status IS NULL OR status ~ '^[[:space:]]*$'; "
            "UPDATE phases SET budget_cents = 0 WHERE budget_cents IS NULL; COMMIT");
    sql_times.push_back(seconds_since(start));
    for (auto [recipe, times] : {std::pair{"patch.lua", &host_times}, std::pair{"read.lua", &read_times}}) {
      reset();
      start = std::chrono::steady_clock::now();
      auto result = host::run_process({HOST_BINARY, "run", dir + "/" + recipe, "--db", conninfo, "--quiet"});
      times->push_back(seconds_since(start));
      if (result.exit_code != 0) {
        std::fprintf(stderr, "%s failed:\n%s\n", recipe, result.output.c_str());
        return 1;
      }
    }
  }
  std::printf("backfill of %ld rows, 2 cells per row (90%% empty), %d repetitions, medians:\n", rows,
              repetitions);
  std::printf("  hand-written UPDATEs (no ledger):      %7.3f s\n", median(sql_times));
  std::printf("  host run, patch_if_empty x2 + ledger:  %7.3f s  (%.2fx the SQL)\n", median(host_times),
              median(host_times) / median(sql_times));
  std::printf("  host run, + read() per row (batched):  %7.3f s  (%.2fx the SQL)\n", median(read_times),
              median(read_times) / median(sql_times));
  return 0;
}
