#pragma once
// Which failures of a batch are worth another try, and how long to wait before
// it (RECIPE_API.md section 10, "Timeouts and retries").
#include <chrono>
#include <exception>
#include <random>

namespace host {

enum class Failure {
  contention,         // lock timeout (55P03), deadlock (40P01), serialization (40001)
  statement_timeout,  // 57014: the batch is split in halves
  connection_lost,    // re-open the connection (batch mode only)
  fatal,              // anything else: the run stops
};

// Classifies the exception in flight (DatabaseError by SQLSTATE, DatabaseUnreachable).
Failure classify_failure(const std::exception_ptr& error);

// Exponential backoff with full jitter: try n (1-based) waits a random time in
// [base * 2^(n-1) / 2, base * 2^(n-1)], capped, so that workers that failed
// together do not come back together.
class Backoff {
 public:
  explicit Backoff(std::chrono::milliseconds base = std::chrono::milliseconds(100),
                   std::chrono::milliseconds cap = std::chrono::milliseconds(10000));
  std::chrono::milliseconds delay(int attempt);

 private:
  std::chrono::milliseconds m_base, m_cap;
  std::mt19937 m_random;
};

}  // namespace host
