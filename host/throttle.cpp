#include "host/throttle.hpp"

#include <algorithm>
#include <cmath>
#include <thread>

#include "host/database.hpp"
#include "host/errors.hpp"
#include "host/query_guard.hpp"

namespace host {

namespace {

const char* const k_what = "pause_when";
const char* const k_shape = "pause_when: must return one row with one boolean column, got ";
constexpr auto k_recheck = std::chrono::seconds(1);
// Sleeps are cut in steps this long so that stop() is seen soon.
constexpr auto k_step = std::chrono::milliseconds(100);
constexpr unsigned k_bool_oid = 16;

std::string plural(std::size_t count, const std::string& noun) {
  return std::to_string(count) + " " + noun + (count == 1 ? "" : "s");
}

}  // namespace

// Counts the calling thread among the waiters while it lives.
class Throttle::Waiting {
 public:
  explicit Waiting(Throttle& throttle) : m_throttle(throttle) {}
  ~Waiting() {
    if (m_counted) m_throttle.stop_waiting();
  }
  Waiting(const Waiting&) = delete;
  Waiting& operator=(const Waiting&) = delete;

  void sleep(Clock::duration at_most) {
    if (!m_counted) m_throttle.start_waiting();
    m_counted = true;
    std::this_thread::sleep_for(std::min<Clock::duration>(at_most, k_step));
  }

 private:
  Throttle& m_throttle;
  bool m_counted = false;
};

Throttle::Throttle(const std::string& conninfo, ThrottleOptions options,
                   std::optional<std::string> search_path, long long lock_timeout_ms,
                   long long statement_timeout_ms)
    : m_conninfo(conninfo),
      m_options(std::move(options)),
      m_search_path(std::move(search_path)),
      m_lock_timeout_ms(lock_timeout_ms),
      m_statement_timeout_ms(statement_timeout_ms),
      m_free_at(Clock::now()) {
  if (m_options.max_rate && !(std::isfinite(*m_options.max_rate) && *m_options.max_rate > 0))
    throw UsageError("--max-rate must be a positive number of rows per second");
  if (!m_options.pause_when) return;
  open_connection();
  std::lock_guard<std::mutex> lock(m_check_mutex);
  try {
    m_paused = run_check<UsageError>();
  } catch (const RecipeError& e) {  // the guard's refusal, already "pause_when: ..."
    throw UsageError(e.what());
  } catch (const DatabaseError& e) {
    throw UsageError(std::string(k_what) + ": " + e.what());
  }
  m_last_check = Clock::now();
}

Throttle::~Throttle() = default;

void Throttle::open_connection() {
  m_database.reset();
  m_guard = std::make_unique<QueryGuard>();
  auto database = std::make_unique<Database>(m_conninfo);
  if (m_search_path)
    database->exec("SELECT set_config('search_path', $1, false)", {*m_search_path});
  database->exec(
      "SELECT set_config('lock_timeout', $1, false), "
      "set_config('statement_timeout', $2, false)",
      {std::to_string(m_lock_timeout_ms), std::to_string(m_statement_timeout_ms)});
  m_database = std::move(database);
}

template <typename Refusal>
bool Throttle::run_check() {
  Database& database = *m_database;
  database.begin();
  try {
    auto result = exec_recipe_sql(database, *m_guard, *m_options.pause_when, {}, k_what);
    std::string wrong;
    if (result.columns() != 1)
      wrong = plural(result.columns(), "column");
    else if (result.size() != 1)
      wrong = plural(result.size(), "row");
    else if (result.column_type(0) != k_bool_oid)
      wrong = "a column of type " + std::string(database
                                                    .exec("SELECT format_type($1::oid, NULL)",
                                                          {std::to_string(result.column_type(0))})
                                                    .at(0)
                                                    .at(0)
                                                    .c_str());
    else if (result[0][0].is_null())
      wrong = "NULL (write coalesce(..., false) to mean false)";
    database.rollback();
    if (!wrong.empty()) throw Refusal(k_shape + wrong);
    return std::string(result[0][0].c_str()) == "t";
  } catch (...) {
    if (database.in_transaction()) {
      try {
        database.rollback();
      } catch (const std::exception&) {
        // The connection is gone: the next check opens another one.
      }
    }
    throw;
  }
}

bool Throttle::paused(Clock::time_point now) {
  std::lock_guard<std::mutex> lock(m_check_mutex);
  if (now - m_last_check < k_recheck) return m_paused;
  try {
    if (!m_database) open_connection();  // the last attempt to open one failed
    m_paused = run_check<RecipeError>();
  } catch (const DatabaseUnreachable&) {
    // A dropped connection is not the operator's condition: try once on a new one.
    open_connection();
    m_paused = run_check<RecipeError>();
  }
  m_last_check = Clock::now();
  return m_paused;
}

bool Throttle::wait_before_batch(const std::function<bool()>& stop) {
  Waiting waiting(*this);
  for (;;) {
    if (stop()) return false;
    auto now = Clock::now();
    Clock::time_point free_at;
    {
      std::lock_guard<std::mutex> lock(m_state_mutex);
      free_at = m_free_at;
    }
    if (now < free_at) {
      waiting.sleep(free_at - now);
      continue;
    }
    if (m_options.pause_when && paused(now)) {
      waiting.sleep(k_step);
      continue;
    }
    return true;
  }
}

void Throttle::account(long long rows) {
  if (!m_options.max_rate || rows <= 0) return;
  auto cost = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(static_cast<double>(rows) / *m_options.max_rate));
  std::lock_guard<std::mutex> lock(m_state_mutex);
  m_free_at = std::max(m_free_at, Clock::now()) + cost;
}

void Throttle::start_waiting() {
  std::lock_guard<std::mutex> lock(m_state_mutex);
  if (m_waiters++ == 0) m_waiting_since = Clock::now();
}

void Throttle::stop_waiting() {
  std::lock_guard<std::mutex> lock(m_state_mutex);
  if (--m_waiters == 0) m_waited += Clock::now() - m_waiting_since;
}

double Throttle::throttled_seconds() const {
  std::lock_guard<std::mutex> lock(m_state_mutex);
  auto waited = m_waited;
  if (m_waiters > 0) waited += Clock::now() - m_waiting_since;
  return std::chrono::duration<double>(waited).count();
}

bool Throttle::throttled_now() const {
  if (m_paused) return true;
  std::lock_guard<std::mutex> lock(m_state_mutex);
  return m_waiters > 0;
}

}  // namespace host
