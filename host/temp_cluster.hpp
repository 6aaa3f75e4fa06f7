#pragma once
// A private, throwaway PostgreSQL cluster for tests, the demo, `host test` and the
// benchmark: initdb into a temporary folder, a Unix socket only; stopped and
// removed by the destructor. As root, the server runs as the `postgres` user.
#include <string>
#include <vector>

namespace host {

// Whether the cluster keeps PostgreSQL's crash-safe defaults.
enum class Durability {
  off,  // fsync, synchronous_commit and full_page_writes off: fast tests
  on,   // the server's defaults (fsync, synchronous_commit, full_page_writes on): benchmarks
};

struct ClusterOptions {
  Durability durability = Durability::off;
  // Extra server settings, each "name=value" (passed as `-c name=value`), for
  // example "shared_preload_libraries=pg_stat_statements".
  std::vector<std::string> settings;
};

class TempCluster {
 public:
  // Starts the cluster; throws std::runtime_error with the server log on failure.
  explicit TempCluster(ClusterOptions options = {});
  ~TempCluster();
  TempCluster(const TempCluster&) = delete;
  TempCluster& operator=(const TempCluster&) = delete;

  // Creates an empty database and returns its conninfo.
  std::string create_database(const std::string& name);
  // Conninfo for an existing database of the cluster.
  std::string conninfo(const std::string& database) const;

  // Stops the server and removes its folder; the destructor does it too. Safe to
  // call from another thread when the owner is stuck (the watchdog).
  void remove() noexcept;

  // The server's data folder (postmaster.pid, server log beside it).
  std::string data_folder() const { return m_folder + "/data"; }

 private:
  void start_server();
  ClusterOptions m_options;
  std::string m_folder;
  std::string m_bin;
  bool m_started = false;
};

// The folder of PostgreSQL's server programs: $HOST_PG_BINDIR, else the newest
// /usr/lib/postgresql/*/bin.
std::string postgres_bin_folder();

}  // namespace host
