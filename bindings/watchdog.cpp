#include "bindings/watchdog.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace host {

long long steady_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

Watchdog::~Watchdog() {
  if (!m_thread.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_stopping = true;
  }
  m_wakeup.notify_all();
  m_thread.join();
}

void Watchdog::arm(long long deadline_ns) {
  m_deadline.store(deadline_ns, std::memory_order_release);
  // No notify: the thread polls (it only acts a whole budget late), and a wake-up
  // per call would cost a system call per row.
  if (!m_thread.joinable()) m_thread = std::thread([this] { watch(); });
}

void Watchdog::set_activity(const std::string& activity) {
  std::lock_guard<std::mutex> lock(m_mutex);
  m_activity = activity;
}

void Watchdog::set_abandon_handler(std::function<void(const std::string&)> handler) {
  std::lock_guard<std::mutex> lock(m_mutex);
  m_abandon_handler = std::move(handler);
}

void Watchdog::watch() {
  const long long grace =
      std::chrono::duration_cast<std::chrono::nanoseconds>(
          std::max<std::chrono::milliseconds>(m_budget, std::chrono::seconds(1)))
          .count();
  std::unique_lock<std::mutex> lock(m_mutex);
  while (!m_stopping) {
    long long deadline = m_deadline.load();
    if (deadline == k_disarmed) {
      m_wakeup.wait_for(lock, std::chrono::milliseconds(200));
      continue;
    }
    if (steady_now_ns() >= deadline + grace && m_host_calls.load() == 0 &&
        m_deadline.load() == deadline)
      abandon();
    m_wakeup.wait_for(lock, std::chrono::milliseconds(100));
  }
}

void Watchdog::abandon() const {
  std::string message = (m_source.empty() ? "recipe" : m_source) + ": time limit of " +
                        std::to_string(m_budget.count()) +
                        " ms exceeded inside a library function (a backtracking string "
                        "pattern?)" +
                        (m_activity.empty() ? "" : " while processing " + m_activity) +
                        "; the run was abandoned and its open transaction rolled back";
  if (m_abandon_handler) {
    try {
      m_abandon_handler(message);
    } catch (...) {
      // Ending the process matters more than the report.
    }
  }
  message = "host: error: " + message + "\n";
  std::fwrite(message.data(), 1, message.size(), stderr);
  std::fflush(stderr);
  std::_Exit(1);
}

}  // namespace host
