#include "host/run_lock.hpp"

#include "host/database.hpp"

namespace host {

namespace {

// Two int4 keys: a constant for "a host run" and the run id's hash, so that run
// locks never meet the ledger's migration lock or an application's own locks.
const char* const k_lock_keys = "hashtext('host run'), hashtext(lower($1))";
// Shared by every process working on the run (its owner and `host join`s), so
// that revert sees joined workers too while resume can still take over a run
// whose owner died.
const char* const k_worker_lock_keys = "hashtext('host run worker'), hashtext(lower($1))";

}  // namespace

RunLock::RunLock(std::unique_ptr<Database> database) : m_database(std::move(database)) {}

RunLock::~RunLock() {
  // Closing the connection releases the lock; nothing to do explicitly.
}

std::unique_ptr<RunLock> RunLock::try_acquire(const std::string& conninfo,
                                              const std::string& run_id) {
  auto database = std::make_unique<Database>(conninfo);
  // Never waits: a revert holding the run for its transaction makes this "busy".
  auto taken = database->exec(std::string("SELECT pg_try_advisory_lock(") + k_lock_keys +
                                  ") AND pg_try_advisory_lock_shared(" + k_worker_lock_keys + ")",
                              {run_id});
  if (std::string(taken[0][0].c_str()) != "t") return nullptr;
  return std::unique_ptr<RunLock>(new RunLock(std::move(database)));
}

std::unique_ptr<RunLock> RunLock::acquire_worker(const std::string& conninfo,
                                                 const std::string& run_id) {
  auto database = std::make_unique<Database>(conninfo);
  auto taken = database->exec(
      std::string("SELECT pg_try_advisory_lock_shared(") + k_worker_lock_keys + ")", {run_id});
  if (std::string(taken[0][0].c_str()) != "t") return nullptr;
  return std::unique_ptr<RunLock>(new RunLock(std::move(database)));
}

bool try_lock_run_for_transaction(Database& database, const std::string& run_id) {
  auto taken = database.exec(std::string("SELECT pg_try_advisory_xact_lock(") + k_lock_keys +
                                 ") AND pg_try_advisory_xact_lock(" + k_worker_lock_keys + ")",
                             {run_id});
  return std::string(taken[0][0].c_str()) == "t";
}

bool any_worker_alive(Database& database, const std::string& run_id) {
  // Taken and given back at once: a lock kept here would stop this very process
  // from taking the workers' lock on its own connection.
  auto alive = database.exec(std::string("SELECT CASE WHEN pg_try_advisory_lock(") +
                                 k_worker_lock_keys + ") THEN NOT pg_advisory_unlock(" +
                                 k_worker_lock_keys + ") ELSE true END",
                             {run_id});
  return std::string(alive[0][0].c_str()) == "t";
}

}  // namespace host
