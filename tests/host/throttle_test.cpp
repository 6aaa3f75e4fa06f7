// host/throttle: --max-rate and pause_when against a real database. Timings are
// asserted as lower bounds (a loaded machine only makes waits longer), except where a
// wait must end early (stop()), where the bound is loose.
#include "host/throttle.hpp"

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "bindings/module_loader.hpp"
#include "bindings/recipe.hpp"
#include "bindings/sandbox.hpp"
#include "host/database.hpp"
#include "host/errors.hpp"
#include "tests/support/test_support.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using host::Throttle;
using host::ThrottleOptions;

const auto k_never = [] { return false; };

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

Throttle pausing_on(const std::string& conninfo, const std::string& sql,
                    long long lock_timeout_ms = 2000) {
  return Throttle(conninfo, ThrottleOptions{std::nullopt, sql}, std::nullopt, lock_timeout_ms,
                  30000);
}

// The message of the UsageError the constructor throws for `sql`, or "" when none.
std::string refusal(const std::string& conninfo, const std::string& sql) {
  try {
    pausing_on(conninfo, sql, 300);
  } catch (const host::UsageError& e) {
    return e.what();
  }
  return "";
}

void sql(const std::string& conninfo, const std::string& statements) {
  host::Database database(conninfo);
  database.exec(statements);
}

// How long wait_before_batch takes to give up (it must return false) when stop()
// turns true 300 ms after the call.
double seconds_to_stop(Throttle& throttle) {
  std::atomic<bool> stop{false};
  // Before the thread starts, which a loaded machine may do late.
  auto start = Clock::now();
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    stop = true;
  });
  bool started = throttle.wait_before_batch([&] { return stop.load(); });
  double elapsed = seconds_since(start);
  stopper.join();
  CHECK_FALSE(started);
  return elapsed;
}

// The pause_when of a recipe whose text sets it (the stdlib is on the module path).
std::string recipe_pause_when(const std::string& assignment) {
  host::Sandbox sandbox;
  host::install_module_loader(sandbox, {host::stdlib_folder()});
  auto recipe = host::load_recipe_text(
      sandbox, "pause.lua",
      "return { name = 'p', table = 't', each = function() end, " + assignment + " }");
  REQUIRE(recipe.pause_when);
  return *recipe.pause_when;
}

}  // namespace

TEST_CASE("without options a throttle opens nothing and never waits", "[throttle]") {
  // No server behind this conninfo: nothing may try to reach it.
  Throttle throttle("host=/nonexistent-folder port=1", ThrottleOptions{}, std::nullopt, 2000,
                    30000);
  auto start = Clock::now();
  for (int i = 0; i < 5; ++i) {
    CHECK(throttle.wait_before_batch(k_never));
    throttle.account(1000000);
  }
  CHECK(seconds_since(start) < 1.0);
  CHECK(throttle.throttled_seconds() == 0.0);
  CHECK_FALSE(throttle.throttled_now());
}

TEST_CASE("max_rate spaces the batches: 2000 rows at 1000 rows/s take 2 s", "[throttle]") {
  Throttle throttle("host=/nonexistent-folder port=1", ThrottleOptions{1000.0, std::nullopt},
                    std::nullopt, 2000, 30000);
  auto start = Clock::now();
  for (int batch = 0; batch < 4; ++batch) {
    REQUIRE(throttle.wait_before_batch(k_never));
    throttle.account(500);
  }
  REQUIRE(throttle.wait_before_batch(k_never));  // the next batch waits for the last one
  CHECK(seconds_since(start) >= 1.95);
  CHECK(throttle.throttled_seconds() >= 1.8);
  CHECK(throttle.throttled_seconds() <= seconds_since(start));
  CHECK_FALSE(throttle.throttled_now());

  CHECK_THROWS_AS(Throttle("x", ThrottleOptions{0.0, std::nullopt}, std::nullopt, 0, 0),
                  host::UsageError);
  CHECK_THROWS_AS(Throttle("x", ThrottleOptions{-5.0, std::nullopt}, std::nullopt, 0, 0),
                  host::UsageError);
}

TEST_CASE("workers waiting together count once in throttled_seconds", "[throttle]") {
  Throttle throttle("x", ThrottleOptions{100.0, std::nullopt}, std::nullopt, 0, 0);
  throttle.account(100);  // the next batch may start in 1 s
  auto start = Clock::now();
  std::thread other([&] { throttle.wait_before_batch(k_never); });
  CHECK(throttle.wait_before_batch(k_never));
  other.join();
  double elapsed = seconds_since(start);
  CHECK(elapsed >= 0.9);
  CHECK(throttle.throttled_seconds() >= 0.9);
  CHECK(throttle.throttled_seconds() <= elapsed + 0.05);
}

TEST_CASE("pause_when holds every batch until the flag row flips", "[throttle]") {
  std::string conninfo = host::testing::fresh_database();
  sql(conninfo,
      "CREATE TABLE ops_flags (pause boolean NOT NULL); INSERT INTO ops_flags VALUES (true)");
  Throttle throttle = pausing_on(conninfo, "SELECT pause FROM ops_flags");
  CHECK(throttle.throttled_now());  // the first check already said true

  auto start = Clock::now();
  std::thread operator_thread([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    sql(conninfo, "UPDATE ops_flags SET pause = false");
  });
  bool seen_throttled = false;
  std::thread watcher([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
    seen_throttled = throttle.throttled_now();
  });
  CHECK(throttle.wait_before_batch(k_never));
  double elapsed = seconds_since(start);
  operator_thread.join();
  watcher.join();
  CHECK(elapsed >= 1.5);
  CHECK(seen_throttled);
  CHECK(throttle.throttled_seconds() >= 1.4);
  CHECK_FALSE(throttle.throttled_now());

  // False now: the next batches start at once (the answer is reused within the second).
  start = Clock::now();
  CHECK(throttle.wait_before_batch(k_never));
  CHECK(seconds_since(start) < 1.0);
}

TEST_CASE("stop() ends a wait within about 100 ms", "[throttle]") {
  std::string conninfo = host::testing::fresh_database();

  SECTION("a wait on pause_when") {
    Throttle throttle = pausing_on(conninfo, "SELECT true");
    double elapsed = seconds_to_stop(throttle);
    CHECK(elapsed >= 0.29);
    CHECK(elapsed < 3.0);  // about 0.4 s; the margin is for a loaded machine
  }
  SECTION("a wait on the rate") {
    Throttle throttle(conninfo, ThrottleOptions{1.0, std::nullopt}, std::nullopt, 2000, 30000);
    throttle.account(100);  // 100 s to wait
    CHECK(seconds_to_stop(throttle) < 3.0);
    CHECK(throttle.throttled_seconds() >= 0.25);
  }
  SECTION("a stop already requested returns at once") {
    Throttle throttle = pausing_on(conninfo, "SELECT false");
    CHECK_FALSE(throttle.wait_before_batch([] { return true; }));
  }
}

TEST_CASE("pause_when must be one row with one boolean column, read-only and stable",
          "[throttle]") {
  std::string conninfo = host::testing::fresh_database();
  sql(conninfo,
      "CREATE TABLE ops_flags (pause boolean); INSERT INTO ops_flags VALUES (false); "
      "CREATE SEQUENCE ops_seq");
  struct Case {
    std::string sql, expected;
  };
  const std::vector<Case> cases = {
      {"SELECT true, false",
       "pause_when: must return one row with one boolean column, got 2 columns"},
      {"SELECT true FROM generate_series(1, 2)",
       "pause_when: must return one row with one boolean column, got 2 rows"},
      {"SELECT true WHERE false",
       "pause_when: must return one row with one boolean column, got 0 rows"},
      {"SELECT 1", "got a column of type integer"},
      {"SELECT 'yes'::text", "got a column of type text"},
      {"SELECT NULL::boolean", "got NULL"},
      {"WITH u AS (UPDATE ops_flags SET pause = true RETURNING 1) SELECT true",
       "read-only transaction"},
      {"SELECT nextval('ops_seq') > 0", "nextval"},
      {"SELECT random() > 2", "volatile"},
      {"SELECT pause FROM no_such_table", "no_such_table"},
      {"SELECT true; SELECT false", "pause_when: "},
      // The views an operator would reach for call pg_stat_get_activity(), which shows
      // other sessions' statements: refused (stdlib/throttle.lua reads around it).
      {"SELECT count(*) > 100 FROM pg_stat_activity", "pg_stat_get_activity"},
      {"SELECT count(*) > 0 FROM pg_stat_replication", "pg_stat_get_activity"},
  };
  for (const auto& c : cases) {
    INFO(c.sql);
    std::string message = refusal(conninfo, c.sql);
    INFO(message);
    CHECK(message.rfind("pause_when: ", 0) == 0);
    CHECK(message.find(c.expected) != std::string::npos);
  }
  host::Database database(conninfo);
  CHECK(host::testing::rows_as_text(database, "SELECT pause FROM ops_flags") ==
        std::vector<std::string>{"f"});
  CHECK(host::testing::rows_as_text(database, "SELECT last_value, is_called FROM ops_seq") ==
        std::vector<std::string>{"1|f"});

  // The query runs under the given lock_timeout.
  database.begin();
  database.exec("LOCK TABLE ops_flags IN ACCESS EXCLUSIVE MODE");
  std::string message = refusal(conninfo, "SELECT pause FROM ops_flags");
  database.rollback();
  INFO(message);
  CHECK(message.rfind("pause_when: ", 0) == 0);
  CHECK(message.find("lock timeout") != std::string::npos);
}

TEST_CASE("a pause_when that goes wrong during the run throws, naming pause_when", "[throttle]") {
  std::string conninfo = host::testing::fresh_database();
  sql(conninfo, "CREATE TABLE ops_flags (pause boolean); INSERT INTO ops_flags VALUES (false)");
  Throttle throttle = pausing_on(conninfo, "SELECT pause FROM ops_flags");
  CHECK(throttle.wait_before_batch(k_never));

  std::string expected;
  SECTION("NULL stops the run rather than guessing") {
    sql(conninfo, "UPDATE ops_flags SET pause = NULL");
    expected = "pause_when: must return one row with one boolean column, got NULL";
  }
  SECTION("no row") {
    sql(conninfo, "DELETE FROM ops_flags");
    expected = "got 0 rows";
  }
  // Checked again only a second after the last check.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  try {
    throttle.wait_before_batch(k_never);
    FAIL("no error");
  } catch (const host::RecipeError& e) {
    INFO(e.what());
    CHECK(std::string(e.what()).rfind("pause_when: ", 0) == 0);
    CHECK(std::string(e.what()).find(expected) != std::string::npos);
  }
}

TEST_CASE("a server error of pause_when during the run is a DatabaseError", "[throttle]") {
  std::string conninfo = host::testing::fresh_database();
  sql(conninfo, "CREATE TABLE ops_flags (pause text); INSERT INTO ops_flags VALUES ('false')");
  Throttle throttle = pausing_on(conninfo, "SELECT pause::boolean FROM ops_flags");
  CHECK(throttle.wait_before_batch(k_never));
  sql(conninfo, "UPDATE ops_flags SET pause = 'maybe'");
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  CHECK_THROWS_AS(throttle.wait_before_batch(k_never), host::DatabaseError);
  // The connection is still usable: the next check works once the data is fixed.
  sql(conninfo, "UPDATE ops_flags SET pause = 'false'");
  CHECK(throttle.wait_before_batch(k_never));
}

TEST_CASE("pause_when opens its connection again once when it was lost", "[throttle]") {
  std::string conninfo = host::testing::fresh_database();
  sql(conninfo,
      "CREATE SCHEMA ops; CREATE TABLE ops.flags (pause boolean); "
      "INSERT INTO ops.flags VALUES (false)");
  Throttle throttle(conninfo, ThrottleOptions{std::nullopt, "SELECT pause FROM flags"},
                    std::string("ops"), 2000, 30000);
  CHECK(throttle.wait_before_batch(k_never));
  // The throttle's is the only other connection to this fresh database.
  sql(conninfo,
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
      "WHERE datname = current_database() AND pid <> pg_backend_pid()");
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  CHECK(throttle.wait_before_batch(k_never));  // on a new connection, search_path and all
}

TEST_CASE("pause_when resolves names through the given search_path", "[throttle]") {
  std::string conninfo = host::testing::fresh_database();
  sql(conninfo,
      "CREATE SCHEMA ops; CREATE TABLE ops.flags (pause boolean); "
      "INSERT INTO ops.flags VALUES (false)");
  CHECK(refusal(conninfo, "SELECT pause FROM flags").find("flags") != std::string::npos);
  Throttle throttle(conninfo, ThrottleOptions{std::nullopt, "SELECT pause FROM flags"},
                    std::string("ops, public"), 2000, 30000);
  CHECK(throttle.wait_before_batch(k_never));
}

TEST_CASE("the recipe key pause_when is a string; the stdlib's queries pass the guard",
          "[throttle]") {
  CHECK_THROWS_WITH(recipe_pause_when("pause_when = true"),
                    Catch::Contains("pause.lua: recipe field 'pause_when' must be a string"));
  CHECK(recipe_pause_when("pause_when = 'SELECT false'") == "SELECT false");

  std::string conninfo = host::testing::fresh_database();
  std::string lag = recipe_pause_when("pause_when = require('throttle').replica_lag_over('30 s')");
  Throttle no_replica = pausing_on(conninfo, lag);
  CHECK_FALSE(no_replica.throttled_now());  // no replica: false

  std::string long_queries =
      recipe_pause_when("pause_when = require('throttle').long_queries_over('1 second')");
  Throttle quiet = pausing_on(conninfo, long_queries);
  CHECK_FALSE(quiet.throttled_now());

  // Another session runs one statement for 6 s: after a second it counts. An idle
  // session in a transaction does not.
  host::Database idle(conninfo);
  idle.begin();
  idle.exec("SELECT 1");
  std::thread sleeper([&] { sql(conninfo, "SELECT pg_sleep(6)"); });
  // Once the sleep has run for over a second, however late its session started.
  host::Database watcher(conninfo);
  for (int i = 0; i < 100; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    auto running = watcher.exec(
        "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(6)' AND "
        "state = 'active' AND clock_timestamp() - query_start > interval '1.2 s'");
    if (running[0][0].as<long long>() > 0) break;
  }
  Throttle busy = pausing_on(conninfo, long_queries);
  CHECK(busy.throttled_now());
  sleeper.join();
  idle.rollback();
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  idle.begin();
  idle.exec("SELECT 1");  // idle in transaction from now on
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  Throttle calm = pausing_on(conninfo, long_queries);
  CHECK_FALSE(calm.throttled_now());
}
