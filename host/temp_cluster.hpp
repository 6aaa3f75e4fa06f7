#pragma once
// A private, throwaway PostgreSQL cluster for tests, the demo and `host test`:
// initdb into a temporary folder, a Unix socket only, fsync off; stopped and
// removed by the destructor. As root, the server runs as the `postgres` user.
#include <string>

namespace host {

class TempCluster {
 public:
  // Starts the cluster; throws std::runtime_error with the server log on failure.
  TempCluster();
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

 private:
  void start_server();
  std::string m_folder;
  std::string m_bin;
  bool m_started = false;
};

// The folder of PostgreSQL's server programs: $HOST_PG_BINDIR, else the newest
// /usr/lib/postgresql/*/bin.
std::string postgres_bin_folder();

}  // namespace host
