// The progress line and its printer (RECIPE_API.md section 10, "Progress"):
// formatting, rate and ETA, the percent clamp, the plain and live intervals, and
// which mode --progress, --quiet and a terminal choose.
#include "host/progress.hpp"

#include <catch2/catch.hpp>
#include <limits>
#include <sstream>

#include "host/errors.hpp"

using host::ProgressMode;
using host::ProgressPrinter;
using host::ProgressSnapshot;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {

ProgressSnapshot example() {
  ProgressSnapshot snapshot;
  snapshot.rows_done = 12000;
  snapshot.rows_total_estimate = 1000000;
  snapshot.elapsed_seconds = 12000.0 / 8400.0;
  snapshot.patched = 3;
  snapshot.protected_fields = 1;
  snapshot.throttled = true;
  return snapshot;
}

int lines_in(const std::string& text) {
  int lines = 0;
  for (char c : text) lines += c == '\n';
  return lines;
}

bool has_control_characters(const std::string& text) {
  for (unsigned char c : text)
    if ((c < 0x20 && c != '\n') || c == 0x7f) return true;
  return false;
}

// What a printer in `mode` prints for one update `after` its start, then finish().
std::string update_then_finish(ProgressMode mode, Clock::duration after) {
  std::ostringstream out;
  auto start = Clock::now();
  ProgressPrinter printer(mode, out, start);
  printer.update(example(), start + after);
  printer.finish(example());
  return out.str();
}

}  // namespace

TEST_CASE("progress_line says rows, percent, rate, ETA and counters", "[progress]") {
  auto snapshot = example();
  // 988,000 rows left at 8,400 rows/s: 117.6 s.
  CHECK(host::progress_line(snapshot) ==
        "12,000 of ~1,000,000 rows (1.2%), 8,400 rows/s, ETA 1m58s; "
        "patched 3, protected 1, review 0, errors 0, throttled");
  snapshot.throttled = false;
  snapshot.review = 1234567;
  snapshot.errors = 2;
  CHECK(host::progress_line(snapshot) ==
        "12,000 of ~1,000,000 rows (1.2%), 8,400 rows/s, ETA 1m58s; "
        "patched 3, protected 1, review 1,234,567, errors 2");
}

TEST_CASE("progress_line without an estimate or a rate", "[progress]") {
  ProgressSnapshot snapshot;
  CHECK(host::progress_line(snapshot) ==
        "0 rows, 0 rows/s; patched 0, protected 0, review 0, errors 0");
  snapshot.rows_done = 5;
  snapshot.elapsed_seconds = 2;
  CHECK(host::progress_line(snapshot) ==
        "5 rows, 2.5 rows/s; patched 0, protected 0, review 0, errors 0");
  snapshot.rows_total_estimate = 10;
  CHECK(host::progress_line(snapshot) ==
        "5 of ~10 rows (50.0%), 2.5 rows/s, ETA 2s; patched 0, protected 0, review 0, errors 0");
}

TEST_CASE("rate and ETA", "[progress]") {
  ProgressSnapshot snapshot;
  CHECK(snapshot.rows_per_second() == 0);
  CHECK_FALSE(snapshot.eta_seconds());
  snapshot.rows_done = 1000;
  snapshot.elapsed_seconds = 10;
  CHECK(snapshot.rows_per_second() == Approx(100));
  CHECK_FALSE(snapshot.eta_seconds());  // estimate unknown
  snapshot.rows_total_estimate = 5000;
  REQUIRE(snapshot.eta_seconds());
  CHECK(*snapshot.eta_seconds() == Approx(40));
  snapshot.stopped = true;  // paused or ended: nothing moves, no ETA
  CHECK_FALSE(snapshot.eta_seconds());
  CHECK(host::progress_line(snapshot).find("ETA") == std::string::npos);
  snapshot.stopped = false;
  snapshot.elapsed_seconds = 0;  // no time yet: no rate, no ETA
  CHECK(snapshot.rows_per_second() == 0);
  CHECK_FALSE(snapshot.eta_seconds());
}

TEST_CASE("a low estimate: percent stays at 100 and the ETA is unknown", "[progress]") {
  ProgressSnapshot snapshot;
  snapshot.rows_done = 1300;
  snapshot.rows_total_estimate = 1000;
  snapshot.elapsed_seconds = 13;
  CHECK_FALSE(snapshot.eta_seconds());
  CHECK(host::progress_line(snapshot) ==
        "1,300 of ~1,000 rows (100.0%), 100 rows/s; "
        "patched 0, protected 0, review 0, errors 0");
  // 100% only when done, not when 99.96% would round up.
  snapshot.rows_done = 9996;
  snapshot.rows_total_estimate = 10000;
  CHECK(host::progress_line(snapshot).find("(99.9%)") != std::string::npos);
}

TEST_CASE("numbers and durations", "[progress]") {
  CHECK(host::with_thousands(0) == "0");
  CHECK(host::with_thousands(999) == "999");
  CHECK(host::with_thousands(1000) == "1,000");
  CHECK(host::with_thousands(123456789) == "123,456,789");
  CHECK(host::with_thousands(-1234) == "-1,234");
  CHECK(host::with_thousands(std::numeric_limits<long long>::min()) ==
        "-9,223,372,036,854,775,808");
  CHECK(host::short_duration(0) == "0s");
  CHECK(host::short_duration(59.4) == "59s");
  CHECK(host::short_duration(117) == "1m57s");
  CHECK(host::short_duration(3605) == "1h00m");
  CHECK(host::short_duration(3 * 3600 + 5 * 60) == "3h05m");
  CHECK(host::short_duration(2 * 86400 + 3 * 3600) == "2d03h");
}

TEST_CASE("plain mode: a line every 10 s at most, the first after 10 s", "[progress]") {
  std::ostringstream out;
  auto start = Clock::now();
  ProgressPrinter printer(ProgressMode::plain, out, start);
  auto snapshot = example();
  printer.update(snapshot, start);
  printer.update(snapshot, start + seconds(9));
  CHECK(out.str().empty());
  printer.update(snapshot, start + seconds(10));
  CHECK(lines_in(out.str()) == 1);
  printer.update(snapshot, start + seconds(15));
  printer.update(snapshot, start + milliseconds(19999));
  CHECK(lines_in(out.str()) == 1);
  printer.update(snapshot, start + seconds(20));
  CHECK(lines_in(out.str()) == 2);
  // After a long quiet spell the next line still waits 10 s from the last one.
  printer.update(snapshot, start + seconds(95));
  printer.update(snapshot, start + seconds(100));
  CHECK(lines_in(out.str()) == 3);
  printer.finish(snapshot);
  printer.finish(snapshot);
  printer.update(snapshot, start + seconds(1000));
  CHECK(lines_in(out.str()) == 4);
  CHECK_FALSE(has_control_characters(out.str()));
  std::string expected;
  for (int i = 0; i < 4; ++i) expected += host::progress_line(snapshot) + "\n";
  CHECK(out.str() == expected);
}

TEST_CASE("plain mode: a short run prints only the final line", "[progress]") {
  CHECK(update_then_finish(ProgressMode::plain, seconds(3)) ==
        host::progress_line(example()) + "\n");
}

TEST_CASE("live mode: one rewritten line, at most every 200 ms, ended by finish", "[progress]") {
  std::ostringstream out;
  auto start = Clock::now();
  ProgressPrinter printer(ProgressMode::live, out, start);
  auto snapshot = example();
  const std::string rewrite = "\r" + host::progress_line(snapshot) + "\x1b[K";
  printer.update(snapshot, start);
  CHECK(out.str() == rewrite);
  printer.update(snapshot, start + milliseconds(150));
  CHECK(out.str() == rewrite);
  printer.update(snapshot, start + milliseconds(200));
  CHECK(out.str() == rewrite + rewrite);
  printer.finish(snapshot);
  CHECK(out.str() == rewrite + rewrite + rewrite + "\n");
}

TEST_CASE("off mode prints nothing", "[progress]") {
  CHECK(update_then_finish(ProgressMode::off, seconds(60)).empty());
}

TEST_CASE("--progress, --quiet and a terminal choose the mode", "[progress]") {
  using host::choose_progress_mode;
  CHECK(choose_progress_mode("auto", false, true) == ProgressMode::live);
  CHECK(choose_progress_mode("auto", false, false) == ProgressMode::plain);
  CHECK(choose_progress_mode("plain", false, true) == ProgressMode::plain);
  CHECK(choose_progress_mode("plain", false, false) == ProgressMode::plain);
  CHECK(choose_progress_mode("off", false, true) == ProgressMode::off);
  CHECK(choose_progress_mode("auto", true, true) == ProgressMode::off);
  CHECK(choose_progress_mode("plain", true, false) == ProgressMode::off);
  CHECK_THROWS_AS(choose_progress_mode("live", false, true), host::UsageError);
  CHECK_THROWS_AS(choose_progress_mode("", false, true), host::UsageError);
  CHECK_THROWS_AS(choose_progress_mode("AUTO", true, true), host::UsageError);
}
