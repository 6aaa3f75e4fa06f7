#include "host/progress.hpp"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <ostream>

#include "host/errors.hpp"

namespace host {

namespace {

// Live lines are cheap to rewrite but a terminal flickers faster than people read.
constexpr std::chrono::milliseconds k_live_interval{200};
// A log file or CI output gets a line every 10 s: often enough to see it moving,
// rarely enough not to drown the rest.
constexpr std::chrono::seconds k_plain_interval{10};

std::string rate_text(double rate) {
  // Below 10 rows/s a whole number would hide the difference between 1 and 1.9.
  if (rate > 0 && rate < 10) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.1f", rate);
    return buffer;
  }
  return with_thousands(std::llround(rate));
}

std::string percent_text(long long done, long long total) {
  // Floored to a tenth, so that 100% means done, not "99.96% rounded up"; and
  // clamped, as a low estimate (planned before ANALYZE, or rows added since)
  // would otherwise say 130%.
  double percent = std::floor(static_cast<double>(done) * 1000.0 / static_cast<double>(total)) / 10;
  if (percent > 100) percent = 100;
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.1f%%", percent);
  return buffer;
}

}  // namespace

double ProgressSnapshot::rows_per_second() const {
  if (elapsed_seconds <= 0 || rows_done <= 0) return 0;
  return static_cast<double>(rows_done) / elapsed_seconds;
}

std::optional<double> ProgressSnapshot::eta_seconds() const {
  double rate = rows_per_second();
  if (stopped || rate <= 0 || rows_done >= rows_total_estimate) return std::nullopt;
  return static_cast<double>(rows_total_estimate - rows_done) / rate;
}

ProgressMode choose_progress_mode(const std::string& option, bool quiet, bool stderr_is_tty) {
  if (option != "auto" && option != "plain" && option != "off")
    throw UsageError("--progress expects auto, plain or off, got '" + option + "'");
  if (quiet || option == "off") return ProgressMode::off;
  if (option == "plain") return ProgressMode::plain;
  return stderr_is_tty ? ProgressMode::live : ProgressMode::plain;
}

bool stderr_is_terminal() { return isatty(STDERR_FILENO) == 1; }

std::string with_thousands(long long number) {
  // The magnitude in unsigned arithmetic, where even the lowest long long has one.
  unsigned long long magnitude = static_cast<unsigned long long>(number);
  if (number < 0) magnitude = 0ULL - magnitude;
  std::string digits = std::to_string(magnitude);
  std::string out;
  int since_comma = static_cast<int>(digits.size() % 3);
  if (since_comma == 0) since_comma = 3;
  for (char digit : digits) {
    if (since_comma == 0) {
      out += ',';
      since_comma = 3;
    }
    out += digit;
    --since_comma;
  }
  return number < 0 ? "-" + out : out;
}

std::string short_duration(double seconds) {
  long long total = seconds > 0 ? std::llround(seconds) : 0;
  char buffer[48];
  if (total < 60)
    std::snprintf(buffer, sizeof buffer, "%llds", total);
  else if (total < 3600)
    std::snprintf(buffer, sizeof buffer, "%lldm%02llds", total / 60, total % 60);
  else if (total < 86400)
    std::snprintf(buffer, sizeof buffer, "%lldh%02lldm", total / 3600, total % 3600 / 60);
  else
    std::snprintf(buffer, sizeof buffer, "%lldd%02lldh", total / 86400, total % 86400 / 3600);
  return buffer;
}

std::string progress_line(const ProgressSnapshot& snapshot) {
  std::string line = with_thousands(snapshot.rows_done);
  if (snapshot.rows_total_estimate > 0)
    line += " of ~" + with_thousands(snapshot.rows_total_estimate) + " rows (" +
            percent_text(snapshot.rows_done, snapshot.rows_total_estimate) + ")";
  else
    line += " rows";
  line += ", " + rate_text(snapshot.rows_per_second()) + " rows/s";
  if (auto eta = snapshot.eta_seconds()) line += ", ETA " + short_duration(*eta);
  line += "; patched " + with_thousands(snapshot.patched) + ", protected " +
          with_thousands(snapshot.protected_fields) + ", review " +
          with_thousands(snapshot.review) + ", errors " + with_thousands(snapshot.errors);
  if (snapshot.throttled) line += ", throttled";
  return line;
}

ProgressPrinter::ProgressPrinter(ProgressMode mode, std::ostream& out,
                                 std::chrono::steady_clock::time_point start)
    : m_mode(mode), m_out(out) {
  if (m_mode == ProgressMode::plain) m_next_due = start + k_plain_interval;
}

void ProgressPrinter::update(const ProgressSnapshot& snapshot,
                             std::chrono::steady_clock::time_point now) {
  std::lock_guard<std::mutex> lock(m_mutex);
  if (m_mode == ProgressMode::off || m_finished) return;
  if (m_next_due && now < *m_next_due) return;
  // From this line's time, not the due time: after a long gap the next line still
  // waits a whole interval, so lines never come closer than the interval.
  m_next_due =
      now +
      (m_mode == ProgressMode::live
           ? std::chrono::duration_cast<std::chrono::steady_clock::duration>(k_live_interval)
           : std::chrono::duration_cast<std::chrono::steady_clock::duration>(k_plain_interval));
  print(snapshot, false);
}

void ProgressPrinter::finish(const ProgressSnapshot& snapshot) {
  std::lock_guard<std::mutex> lock(m_mutex);
  if (m_mode == ProgressMode::off || m_finished) return;
  m_finished = true;
  print(snapshot, true);
}

void ProgressPrinter::print(const ProgressSnapshot& snapshot, bool last) {
  if (m_mode == ProgressMode::live) {
    // "\x1b[K" clears what a longer previous line left to the right.
    m_out << '\r' << progress_line(snapshot) << "\x1b[K";
    if (last) m_out << '\n';
  } else {
    m_out << progress_line(snapshot) << '\n';
  }
  m_out.flush();
}

}  // namespace host
