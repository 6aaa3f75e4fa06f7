#include "host/retry_policy.hpp"

#include <algorithm>

#include "host/errors.hpp"

namespace host {

Failure classify_failure(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const DatabaseUnreachable&) {
    return Failure::connection_lost;
  } catch (const DatabaseError& e) {
    const std::string& state = e.sqlstate();
    if (state == "55P03" || state == "40P01" || state == "40001") return Failure::contention;
    if (state == "57014") return Failure::statement_timeout;
    // Administrator shutdown or a crashed backend ends the session.
    if (state.rfind("57P", 0) == 0) return Failure::connection_lost;
    return Failure::fatal;
  } catch (...) {
    return Failure::fatal;
  }
}

Backoff::Backoff(std::chrono::milliseconds base, std::chrono::milliseconds cap)
    : m_base(base), m_cap(cap), m_random(std::random_device{}()) {}

std::chrono::milliseconds Backoff::delay(int attempt) {
  long long ceiling = m_base.count();
  for (int i = 1; i < attempt && ceiling < m_cap.count(); ++i) ceiling *= 2;
  ceiling = std::min<long long>(ceiling, m_cap.count());
  std::uniform_int_distribution<long long> pick(ceiling / 2, ceiling);
  return std::chrono::milliseconds(pick(m_random));
}

}  // namespace host
