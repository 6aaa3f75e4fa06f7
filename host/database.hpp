#pragma once
// One connection to PostgreSQL with explicit transaction control. The only
// place that sees libpqxx exceptions: they leave as DatabaseUnreachable or
// DatabaseError (host/errors.hpp).
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <pqxx/connection>
#include <pqxx/nontransaction>
#include <pqxx/result>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace host {

// A bound parameter: text form, or NULL.
using Param = std::optional<std::string>;
using Params = std::vector<Param>;

class Database {
 public:
  // Connects; throws DatabaseUnreachable (password scrubbed) when it cannot.
  explicit Database(const std::string& conninfo);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Runs one or more statements given as SQL text (simple protocol).
  pqxx::result exec(const std::string& sql);
  // Runs one statement with $1..$n bound (extended protocol: never more than one statement).
  pqxx::result exec(const std::string& sql, const Params& params);
  // The same, for a statement a run repeats every batch: prepared on this
  // connection at its first use, so that the server parses and plans it once.
  pqxx::result exec_prepared(const std::string& sql, const Params& params);

  void begin();
  void commit();
  // COMMIT and the next BEGIN in one round trip. A COMMIT that fails runs no BEGIN.
  void commit_and_begin();
  void rollback();
  // Waits, like every call, while another thread has the connection (lend()).
  bool in_transaction() {
    wait_turn();
    return m_in_transaction;
  }

  // Runs `sql` inside a read-only subtransaction that is always rolled back, so
  // nothing it does can persist. Requires an open transaction.
  pqxx::result exec_read_only(const std::string& sql, const Params& params);

  // Savepoint helpers for retrying a failed set-based statement item by item.
  void savepoint(const std::string& name);
  void rollback_to(const std::string& name);
  void release(const std::string& name);

  const std::string& conninfo() const { return m_conninfo; }

  // Runs a session setting (search_path, timeouts) now and again after every
  // reconnect(), so that a re-opened connection is the same session to its users.
  void configure(const std::string& sql, const Params& params = {});
  // Opens a new connection in place of a lost one (the open transaction, if any,
  // is gone with it). Throws DatabaseUnreachable when it cannot.
  void reconnect();
  // A new connection to the same database, set up as this one (configure()).
  std::unique_ptr<Database> another() const;

  // A batch can be written by another thread while the recipe already works on
  // the next one (host/batch_worker.cpp). From lend() until the loan is given back,
  // a call from any other thread than the borrower's waits, so that what the
  // recipe reads meanwhile it reads after that batch committed; if a loan ended in
  // a failure, the call throws instead (SQLSTATE 40001) until wait_given_back().
  // Loans add up: the batch written beside the borrower's may hold one on after the
  // borrower is done with the connection, while the next batch borrows it again.
  void lend();
  bool lent() const { return m_lent.load(); }
  void borrow();  // on the borrowing thread, before its first call
  void give_back(bool failed);  // ends one loan
  // Waits for every loan to end; true if one failed.
  bool wait_given_back();
  // Told how long a call waited for the borrower (the sandbox does not count it
  // against the recipe's time limit).
  void set_wait_observer(std::function<void(std::chrono::nanoseconds)> observer) {
    m_wait_observer = std::move(observer);
  }

 private:
  void wait_turn();
  void connect();
  template <typename Fn>
  pqxx::result guarded(Fn&& fn);
  // A statement the server refused, as DatabaseError with `sqlstate`, or as
  // DatabaseUnreachable when the connection went with it.
  [[noreturn]] void throw_refused(const std::exception& error, const std::string& sqlstate) const;

  std::string m_conninfo;
  std::unique_ptr<pqxx::connection> m_connection;
  std::unique_ptr<pqxx::nontransaction> m_session;
  std::atomic<bool> m_in_transaction{false};
  std::vector<std::pair<std::string, Params>> m_configuration;
  // Statement text -> name of its prepared statement on this connection.
  std::unordered_map<std::string, std::string> m_prepared;
  std::atomic<bool> m_lent{false};
  int m_loans = 0;  // under m_loan_mutex
  std::mutex m_loan_mutex;
  std::condition_variable m_loan_returned;
  std::thread::id m_borrower;
  std::atomic<bool> m_borrower_failed{false};
  std::function<void(std::chrono::nanoseconds)> m_wait_observer;
};

// The field of `row` whose column is named exactly `column`. libpq folds an
// unquoted name to lower case, so the name is looked up quoted.
pqxx::field field_named(const pqxx::row& row, const std::string& column);

}  // namespace host
