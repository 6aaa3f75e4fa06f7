#pragma once
// The last line of the sandbox's time limit. The count hook stops runaway Lua,
// but not code it cannot reach: a C library function such as a backtracking
// string.find runs no Lua instructions. A thread polls the deadline of the call
// in progress and, one more budget after it, hands the error to a handler (the
// failure report), prints it and ends the process, so that the server rolls the
// open transaction back. Calls into the host (a slow query) are left alone.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <limits>
#include <mutex>
#include <string>
#include <thread>

namespace host {

class Watchdog {
 public:
  explicit Watchdog(std::chrono::milliseconds budget) : m_budget(budget) {}
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // `deadline_ns` on the steady clock; the thread starts on the first call.
  void arm(long long deadline_ns);
  void disarm() { m_deadline.store(k_disarmed, std::memory_order_release); }
  // Moves the deadline of the call in progress, if any, `ns` later.
  void postpone(long long ns) {
    long long deadline = m_deadline.load();
    if (deadline != k_disarmed) m_deadline.compare_exchange_strong(deadline, deadline + ns);
  }
  // The deadline of the call in progress; far in the future when none runs.
  long long deadline() const { return m_deadline.load(std::memory_order_relaxed); }
  bool started() const { return m_thread.joinable(); }

  // Only the thread running the recipe changes the count (the watchdog reads it):
  // a plain store does, without the locked instruction of ++ on every host call.
  void enter_host_call() {
    m_host_calls.store(m_host_calls.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  }
  void leave_host_call() {
    m_host_calls.store(m_host_calls.load(std::memory_order_relaxed) - 1, std::memory_order_release);
  }

  // For the message: the recipe file (set before the first arm) and what the
  // current call works on ("row id=5").
  void set_source(const std::string& source) { m_source = source; }
  void set_activity(const std::string& activity);
  void set_abandon_handler(std::function<void(const std::string&)> handler);

 private:
  static constexpr long long k_disarmed = std::numeric_limits<long long>::max();

  void watch();
  [[noreturn]] void abandon() const;

  std::chrono::milliseconds m_budget;
  std::atomic<long long> m_deadline{k_disarmed};
  std::atomic<int> m_host_calls{0};
  std::string m_source;
  std::thread m_thread;
  std::mutex m_mutex;
  std::condition_variable m_wakeup;
  bool m_stopping = false;                                    // guarded by m_mutex
  std::string m_activity;                                     // guarded by m_mutex
  std::function<void(const std::string&)> m_abandon_handler;  // guarded by m_mutex
};

// Nanoseconds of the steady clock, the unit of Watchdog::arm.
long long steady_now_ns();

}  // namespace host
