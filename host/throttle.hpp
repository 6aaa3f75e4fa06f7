#pragma once
// When a worker may start its next batch (RECIPE_API.md section 10, "Throttling"):
// --max-rate caps the rows scanned per second by this process, and --pause-when (or
// the recipe key `pause_when`) holds every worker while an operator's query says so.
// One Throttle is shared by all workers of one process.
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace host {

class Database;
class QueryGuard;

struct ThrottleOptions {
  std::optional<double> max_rate;         // rows scanned per second, for this process
  std::optional<std::string> pause_when;  // SQL: one row, one boolean column
};

// Thread-safe: any number of workers may call wait_before_batch and account at once.
//
// max_rate is a token bucket that banks nothing: rows accounted push the time the
// next batch may start by rows / max_rate from now (or from the last such time, when
// that is later), so an idle or paused spell never allows a burst after it. With N
// workers up to N batches may start together; the average over a few batches holds.
//
// pause_when: NULL is never an answer. At the first check (the constructor) it is a
// UsageError like any other wrong shape; later, when the data under the query makes
// it NULL (or no row, or two), it is a RecipeError that stops the run, because
// guessing either way would either hold the run silently forever or run it while the
// operator's condition cannot be told. The query says `coalesce(..., false)` when
// it means false.
class Throttle {
 public:
  // Without pause_when, opens nothing. With it: opens a connection of its own
  // (Database pins the session settings), applies `search_path` when given, sets
  // lock_timeout and statement_timeout (ms; 0 = none) on it, and checks the query
  // once inside BEGIN..ROLLBACK through the query guard (read-only, no volatile
  // functions): it must return exactly one row with one non-NULL boolean column.
  // Anything else, the guard's refusals and the server's errors included, is a
  // UsageError whose message starts "pause_when: " and says what was wrong
  // ("pause_when: must return one row with one boolean column, got 2 columns").
  // A max_rate that is not a positive finite number is a UsageError too.
  // DatabaseUnreachable when the connection cannot be opened.
  Throttle(const std::string& conninfo, ThrottleOptions options,
           std::optional<std::string> search_path, long long lock_timeout_ms,
           long long statement_timeout_ms);
  ~Throttle();
  Throttle(const Throttle&) = delete;
  Throttle& operator=(const Throttle&) = delete;

  // Blocks until a batch may start and returns true: waits out max_rate, then, when
  // pause_when was last checked 1 s ago or more, checks it again; while it is true,
  // waits, checking it at most once a second. Returns false, at most ~100 ms after
  // stop() turns true, without waiting further (a check in flight runs to its end,
  // bounded by statement_timeout). stop() is called from the calling thread only.
  // A failing check throws: DatabaseError (the server refused it; the connection is
  // opened again once when it was lost, then DatabaseUnreachable) or RecipeError (a
  // wrong shape or NULL, messages starting "pause_when: "). The caller stops the run.
  bool wait_before_batch(const std::function<bool()>& stop);

  // After a batch: the rows it scanned, for max_rate. Negative counts count as 0.
  void account(long long rows);

  // Wall-clock seconds during which at least one worker of this process was waiting
  // (on the rate or on pause_when): several workers waiting at once count once.
  double throttled_seconds() const;

  // pause_when was true at its last check, or a worker is waiting now.
  bool throttled_now() const;

 private:
  using Clock = std::chrono::steady_clock;
  class Waiting;

  void open_connection();
  // Runs pause_when once; its answer. Throws `Refusal` (UsageError or RecipeError)
  // on a wrong shape. Needs m_check_mutex.
  template <typename Refusal>
  bool run_check();
  // pause_when's answer, checked again first when the last check is 1 s old.
  bool paused(Clock::time_point now);
  void start_waiting();
  void stop_waiting();

  std::string m_conninfo;
  ThrottleOptions m_options;
  std::optional<std::string> m_search_path;
  long long m_lock_timeout_ms;
  long long m_statement_timeout_ms;

  std::mutex m_check_mutex;  // the connection, the guard, m_last_check
  std::unique_ptr<Database> m_database;
  std::unique_ptr<QueryGuard> m_guard;
  Clock::time_point m_last_check;
  std::atomic<bool> m_paused{false};

  mutable std::mutex m_state_mutex;  // the fields below
  Clock::time_point m_free_at;       // when the rows accounted so far are paid for
  int m_waiters = 0;
  Clock::time_point m_waiting_since;
  Clock::duration m_waited{};
};

}  // namespace host
