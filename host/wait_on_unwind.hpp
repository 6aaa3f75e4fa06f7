#pragma once
#include <exception>
#include <functional>
#include <utility>

namespace host {

// Runs `wait` when an exception leaves the scope it is declared in, and only then:
// a job posted to another thread that writes from the scope's locals must end
// before they are destroyed, whatever was thrown between posting it and waiting
// for it. The normal path waits for its jobs itself, in the order it needs.
class WaitOnUnwind {
 public:
  explicit WaitOnUnwind(std::function<void()> wait)
      : m_wait(std::move(wait)), m_exceptions_at_entry(std::uncaught_exceptions()) {}
  ~WaitOnUnwind() {
    if (std::uncaught_exceptions() <= m_exceptions_at_entry) return;
    try {
      m_wait();
    } catch (...) {
      // The exception already leaving says what went wrong first.
    }
  }
  WaitOnUnwind(const WaitOnUnwind&) = delete;
  WaitOnUnwind& operator=(const WaitOnUnwind&) = delete;

 private:
  std::function<void()> m_wait;
  int m_exceptions_at_entry;
};

}  // namespace host
