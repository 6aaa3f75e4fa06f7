#pragma once
// Who is working on a run. A session-level advisory lock, held on a connection of
// its own for as long as a process works on the run: recipe SQL runs on the other
// connection, so not even pg_advisory_unlock_all() in a query() can release it.
#include <memory>
#include <string>

namespace host {

class Database;

class RunLock {
 public:
  // Opens a connection and takes the lock of run `run_id`; nullptr when another
  // session holds it. Throws DatabaseUnreachable when it cannot connect.
  // The owner (the process that started or resumed the run) also takes the
  // workers' shared lock.
  static std::unique_ptr<RunLock> try_acquire(const std::string& conninfo,
                                              const std::string& run_id);
  // A `host join`: the workers' lock only, shared with the owner and other joiners;
  // nullptr while a revert holds the run.
  static std::unique_ptr<RunLock> acquire_worker(const std::string& conninfo,
                                                 const std::string& run_id);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

 private:
  explicit RunLock(std::unique_ptr<Database> database);
  std::unique_ptr<Database> m_database;
};

// Takes the same lock for the rest of `database`'s open transaction, if no process
// holds it: true when taken (nobody works on the run, and nobody can start to
// until that transaction ends).
bool try_lock_run_for_transaction(Database& database, const std::string& run_id);

// True when some process holds the workers' lock of the run (works on it now).
bool any_worker_alive(Database& database, const std::string& run_id);

}  // namespace host
