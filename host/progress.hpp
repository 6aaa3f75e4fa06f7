#pragma once
// The progress line of RECIPE_API.md section 10: what a run has done, how fast,
// and how long is left, as one line on stderr (rewritten in place on a terminal,
// printed every 10 seconds elsewhere). `host status` prints the same line.
#include <chrono>
#include <iosfwd>
#include <mutex>
#include <optional>
#include <string>

namespace host {

// What a run has done so far; counts cover committed batches only.
struct ProgressSnapshot {
  long long rows_done = 0;
  long long rows_total_estimate = 0;  // 0 when unknown
  double elapsed_seconds = 0;         // since the run (or this process) started counting
  long long patched = 0, protected_fields = 0, review = 0, errors = 0;
  bool throttled = false;
  // Paused or ended: the run is not moving, so there is no time left to estimate.
  bool stopped = false;

  // rows_done / elapsed_seconds; 0 when no time has passed yet.
  double rows_per_second() const;
  // Seconds left at the current rate: nullopt when the rate is 0, the run stopped,
  // or the estimate is unknown or proven wrong (rows_done reached it while rows
  // are still coming: a low estimate says nothing about what is left).
  std::optional<double> eta_seconds() const;
};

enum class ProgressMode { live, plain, off };

// The mode for `--progress OPTION` (auto|plain|off; anything else throws
// UsageError): --quiet means off, auto means live on a terminal and plain elsewhere.
ProgressMode choose_progress_mode(const std::string& option, bool quiet, bool stderr_is_tty);

// True when stderr is a terminal (the `stderr_is_tty` of choose_progress_mode).
bool stderr_is_terminal();

// One line without control characters or newline, e.g.
// "12,000 of ~1,000,000 rows (1.2%), 8,400 rows/s, ETA 1m57s; patched 3, protected 1,
//  review 0, errors 0, throttled". Without an estimate: "12,000 rows, 8,400 rows/s; ...".
// The percent never goes above 100, even when the estimate was too low.
std::string progress_line(const ProgressSnapshot& snapshot);

// "1,234,567": thousands separated by commas.
std::string with_thousands(long long number);
// "42s", "1m57s", "3h05m", "2d03h".
std::string short_duration(double seconds);

// Prints progress lines to `out`, from any thread. Live mode rewrites one line
// ("\r" + line + "\x1b[K") at most every 200 ms, the first at once; plain mode prints
// "line\n" at most every 10 s, the first 10 s after `start`; off prints nothing.
// The caller passes the clock, so that tests need no sleeping. `out` must outlive
// the printer.
class ProgressPrinter {
 public:
  ProgressPrinter(ProgressMode mode, std::ostream& out,
                  std::chrono::steady_clock::time_point start);

  // Prints `snapshot` when the mode's interval has passed since the last line; no-op after
  // finish().
  void update(const ProgressSnapshot& snapshot, std::chrono::steady_clock::time_point now);
  // Prints the final line, whatever the time (live: then ends the line with "\n").
  // Only the first call prints.
  void finish(const ProgressSnapshot& snapshot);

 private:
  void print(const ProgressSnapshot& snapshot, bool last);

  ProgressMode m_mode;
  std::ostream& m_out;
  std::mutex m_mutex;
  std::optional<std::chrono::steady_clock::time_point> m_next_due;  // nullopt: print at once
  bool m_finished = false;
};

}  // namespace host
