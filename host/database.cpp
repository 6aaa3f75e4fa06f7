#include "host/database.hpp"

#include <cstring>
#include <pqxx/except>
#include <pqxx/prepared_statement>
#include <sstream>

#include "host/conninfo.hpp"
#include "host/errors.hpp"
#include "host/sql_text.hpp"

namespace host {

namespace {

// PostgreSQL and libpq messages span lines ("LINE 2: ...", a caret, CONTEXT,
// HINT, "\tIs the server running..."); errors are printed on one line, so this
// keeps the first line, folds DETAIL, HINT and plain follow-up lines into it,
// and drops the query excerpt and its caret.
std::string first_line(const std::string& text) {
  std::string folded;
  bool in_context = false;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    auto start = line.find_first_not_of(" \t");
    if (start == std::string::npos) continue;
    line = line.substr(start);
    while (!line.empty() && (line.back() == ' ' || line.back() == '\r')) line.pop_back();
    bool labelled = line.rfind("DETAIL:", 0) == 0 || line.rfind("HINT:", 0) == 0;
    if (line.rfind("CONTEXT:", 0) == 0)
      in_context = true;  // it may span several lines
    else if (labelled)
      in_context = false;
    bool excerpt = in_context || line.rfind("LINE ", 0) == 0 ||
                   line.find_first_not_of("^ ") == std::string::npos;
    if (folded.empty())
      folded = line;
    else if (!excerpt)
      folded += " " + line;
  }
  return folded;
}

// Everything the host stores as text (ledger keys, old and new values,
// checkpoints) and every value a recipe sees must read the same under any client
// setting: PGDATESTYLE=DMY must not move a date key to another day, nor PGTZ turn
// every timestamptz into a false revert conflict. The search_path stays the
// user's: table names are resolved once and kept schema-qualified.
const char* const k_pinned_settings =
    "SET client_min_messages = warning; SET client_encoding = 'UTF8'; "
    "SET DateStyle = 'ISO, MDY'; SET IntervalStyle = 'postgres'; SET TimeZone = 'UTC'; "
    "SET extra_float_digits = 3; SET bytea_output = 'hex'; "
    "SET standard_conforming_strings = on; SET xmloption = content; "
    "SET lc_monetary = 'C'; SET lc_numeric = 'C'";

// The parameters as libpq takes them: C strings, NULL for SQL NULL.
std::vector<const char*> raw_params(const Params& params) {
  std::vector<const char*> raw;
  raw.reserve(params.size());
  for (const auto& p : params) raw.push_back(p ? p->c_str() : nullptr);
  return raw;
}

}  // namespace

Database::Database(const std::string& conninfo) : m_conninfo(conninfo) { connect(); }

void Database::connect() {
  try {
    m_session.reset();
    m_prepared.clear();
    m_connection = std::make_unique<pqxx::connection>(m_conninfo);
    m_session = std::make_unique<pqxx::nontransaction>(*m_connection, "host");
    m_session->exec(k_pinned_settings);
    // A backend whose client is gone (a second SIGINT, kill -9, a lost network)
    // would otherwise finish its statement first, holding its locks on the
    // application's rows for up to statement_timeout. PostgreSQL 14 and later can
    // notice and roll back at once.
    m_session->exec(
        "SELECT set_config('client_connection_check_interval', '1000', false) "
        "WHERE current_setting('server_version_num')::int >= 140000");
  } catch (const pqxx::broken_connection& e) {
    throw DatabaseUnreachable("cannot connect to the database (" + redact_conninfo(m_conninfo) +
                              "): " + scrub_secrets(first_line(e.what()), m_conninfo));
  } catch (const std::exception& e) {
    throw DatabaseUnreachable("cannot connect to the database (" + redact_conninfo(m_conninfo) +
                              "): " + scrub_secrets(first_line(e.what()), m_conninfo));
  }
}

void Database::configure(const std::string& sql, const Params& params) {
  exec(sql, params);
  m_configuration.emplace_back(sql, params);
}

void Database::reconnect() {
  wait_turn();
  m_in_transaction = false;
  connect();
  for (const auto& [sql, params] : m_configuration) exec(sql, params);
}

std::unique_ptr<Database> Database::another() const {
  auto other = std::make_unique<Database>(m_conninfo);
  for (const auto& [sql, params] : m_configuration) other->configure(sql, params);
  return other;
}

Database::~Database() {
  try {
    if (m_in_transaction && m_connection && m_connection->is_open()) m_session->exec("ROLLBACK");
  } catch (...) {
    // The connection is going away; the server rolls back on its own.
  }
}

void Database::throw_refused(const std::exception& error, const std::string& sqlstate) const {
  if (!m_connection->is_open())
    throw DatabaseUnreachable("lost the connection to the database: " +
                              scrub_secrets(first_line(error.what()), m_conninfo));
  std::string message = first_line(error.what());
  if (message.rfind("ERROR:", 0) == 0)
    message.erase(0, message.find_first_not_of(' ', std::strlen("ERROR:")));
  throw DatabaseError(scrub_secrets(message, m_conninfo), sqlstate);
}

template <typename Fn>
pqxx::result Database::guarded(Fn&& fn) {
  try {
    return fn();
  } catch (const pqxx::broken_connection& e) {
    // libpqxx raises this for SQLSTATE class 08 too, which the server reports
    // for a connection of its own that failed (dblink, postgres_fdw) while ours is fine.
    if (m_connection->is_open())
      throw DatabaseError(scrub_secrets(first_line(e.what()), m_conninfo), "08000");
    throw DatabaseUnreachable("lost the connection to the database: " +
                              scrub_secrets(first_line(e.what()), m_conninfo));
  } catch (const pqxx::sql_error& e) {
    throw_refused(e, e.sqlstate());
  } catch (const pqxx::transaction_rollback& e) {
    // libpqxx 6 derives these from pqxx::failure, not sql_error, and keeps no
    // SQLSTATE for them: without this a deadlock or serialization failure left
    // the run unclassified, and fatal, instead of being tried again.
    std::string state = "40000";
    if (dynamic_cast<const pqxx::serialization_failure*>(&e)) state = "40001";
    if (dynamic_cast<const pqxx::deadlock_detected*>(&e)) state = "40P01";
    if (dynamic_cast<const pqxx::statement_completion_unknown*>(&e)) state = "40003";
    throw_refused(e, state);
  } catch (const pqxx::in_doubt_error& e) {
    throw DatabaseUnreachable("lost the connection during commit; the outcome is unknown: " +
                              std::string(e.what()));
  }
}

void Database::lend() {
  std::lock_guard<std::mutex> lock(m_loan_mutex);
  if (m_loans++ == 0) {
    m_borrower = std::thread::id();
    m_borrower_failed = false;
  }
  m_lent = true;
}

void Database::borrow() {
  std::lock_guard<std::mutex> lock(m_loan_mutex);
  m_borrower = std::this_thread::get_id();
}

void Database::give_back(bool failed) {
  {
    std::lock_guard<std::mutex> lock(m_loan_mutex);
    if (failed) m_borrower_failed = true;
    if (m_loans > 0 && --m_loans == 0) {
      m_borrower = std::thread::id();
      m_lent = false;
    }
  }
  m_loan_returned.notify_all();
}

bool Database::wait_given_back() {
  std::unique_lock<std::mutex> lock(m_loan_mutex);
  m_loan_returned.wait(lock, [&] { return !m_lent.load(); });
  return m_borrower_failed.exchange(false);
}

void Database::wait_turn() {
  if (!m_lent.load() && !m_borrower_failed.load()) return;
  std::unique_lock<std::mutex> lock(m_loan_mutex);
  if (m_lent && m_borrower == std::this_thread::get_id()) return;
  auto started = std::chrono::steady_clock::now();
  m_loan_returned.wait(lock, [&] { return !m_lent.load(); });
  if (m_wait_observer) m_wait_observer(std::chrono::steady_clock::now() - started);
  if (m_borrower_failed)
    throw DatabaseError("the batch before this one could not be written; both are tried again",
                        "40001");
}

pqxx::result Database::exec(const std::string& sql) {
  wait_turn();
  return guarded([&] { return m_session->exec(sql); });
}

pqxx::result Database::exec(const std::string& sql, const Params& params) {
  wait_turn();
  std::vector<const char*> raw = raw_params(params);
  return guarded(
      [&] { return m_session->exec_params(sql, pqxx::prepare::make_dynamic_params(raw)); });
}

pqxx::result Database::exec_prepared(const std::string& sql, const Params& params) {
  // A bound on the statements kept, should a caller's text vary without end:
  // past it, statements are run unprepared.
  constexpr std::size_t k_most_prepared = 64;
  wait_turn();
  auto it = m_prepared.find(sql);
  if (it == m_prepared.end()) {
    if (m_prepared.size() >= k_most_prepared) return exec(sql, params);
    std::string name = "host_" + std::to_string(m_prepared.size());
    guarded([&] {
      m_connection->prepare(name, sql);
      return pqxx::result();
    });
    it = m_prepared.emplace(sql, std::move(name)).first;
  }
  std::vector<const char*> raw = raw_params(params);
  return guarded([&] {
    return m_session->exec_prepared(it->second, pqxx::prepare::make_dynamic_params(raw));
  });
}

void Database::begin() {
  exec("BEGIN");
  m_in_transaction = true;
}

void Database::commit() {
  m_in_transaction = false;
  exec("COMMIT");
}

void Database::commit_and_begin() {
  m_in_transaction = false;
  exec("COMMIT; BEGIN");
  m_in_transaction = true;
}

void Database::rollback() {
  m_in_transaction = false;
  exec("ROLLBACK");
}

pqxx::result Database::exec_read_only(const std::string& sql, const Params& params) {
  exec("SAVEPOINT host_read_only; SET LOCAL transaction_read_only = on");
  try {
    auto result = exec(sql, params);
    exec("ROLLBACK TO SAVEPOINT host_read_only; RELEASE SAVEPOINT host_read_only");
    return result;
  } catch (const DatabaseError&) {
    exec("ROLLBACK TO SAVEPOINT host_read_only; RELEASE SAVEPOINT host_read_only");
    throw;
  }
}

void Database::savepoint(const std::string& name) { exec("SAVEPOINT " + name); }
void Database::rollback_to(const std::string& name) { exec("ROLLBACK TO SAVEPOINT " + name); }
void Database::release(const std::string& name) { exec("RELEASE SAVEPOINT " + name); }

pqxx::field field_named(const pqxx::row& row, const std::string& column) {
  return row[quote_ident(column).c_str()];
}

}  // namespace host
