#include "host/exact_fit.hpp"

#include <catch2/catch.hpp>

using host::Column;
using host::rounding_problem;

namespace {

Column column_of(const std::string& type) {
  Column column;
  column.name = "c";
  column.type = type;
  return column;
}

Column domain_over(const std::string& storage_type) {
  Column column = column_of("price");
  column.storage_type = storage_type;
  return column;
}

}  // namespace

TEST_CASE("numeric(p,s) refuses values it would round", "[unit][exact_fit]") {
  auto money = column_of("numeric(10,2)");
  CHECK_FALSE(rounding_problem(money, "12.34"));
  CHECK_FALSE(rounding_problem(money, "12.3400"));  // trailing zeros change nothing
  CHECK_FALSE(rounding_problem(money, "-7"));
  CHECK_FALSE(rounding_problem(money, "1.5e1"));
  CHECK_FALSE(rounding_problem(money, "NaN"));  // not a decimal: the server decides
  auto problem = rounding_problem(money, "1.005");
  REQUIRE(problem);
  CHECK(problem->find("'1.005' has 3 decimal places; numeric(10,2) keeps 2") != std::string::npos);
  CHECK_FALSE(rounding_problem(money, "1.2345e2"));  // 123.45
  CHECK(rounding_problem(money, "1.23456e2"));       // 123.456
  CHECK(rounding_problem(column_of("numeric(5)"), "3.5"));
  CHECK_FALSE(rounding_problem(column_of("numeric"), "3.14159265358979"));
  CHECK_FALSE(rounding_problem(column_of("numeric(5,1)"), "150e-2"));  // 1.5
  CHECK_FALSE(rounding_problem(column_of("numeric(5,0)"), "10e-1"));   // 1
  CHECK(rounding_problem(money, " 1.234 "));  // the server trims, then would round
  CHECK_FALSE(rounding_problem(money, ".5"));
  CHECK_FALSE(rounding_problem(money, "1."));
  CHECK_FALSE(rounding_problem(money, "Infinity"));
}

TEST_CASE("time types with a precision refuse finer fractions of a second", "[unit][exact_fit]") {
  auto stamp = column_of("timestamp(0) without time zone");
  CHECK_FALSE(rounding_problem(stamp, "2024-03-18 10:00:00"));
  CHECK_FALSE(rounding_problem(stamp, "2024-03-18 10:00:00.000"));
  CHECK(rounding_problem(stamp, "2024-03-18 10:00:00.7"));
  auto millis = column_of("timestamp(3) with time zone");
  CHECK_FALSE(rounding_problem(millis, "2024-03-18 10:00:00.123+00"));
  CHECK(rounding_problem(millis, "2024-03-18T10:00:00.1234Z"));
  CHECK(rounding_problem(column_of("time(2) without time zone"), "10:00:00.125"));
  CHECK(rounding_problem(column_of("interval(0)"), "00:00:01.5"));
  CHECK_FALSE(
      rounding_problem(column_of("timestamp with time zone"), "2024-03-18 10:00:00.123456"));
  CHECK_FALSE(rounding_problem(column_of("text"), "1.23456"));
}

TEST_CASE("a domain is checked by the type it stores", "[unit][exact_fit]") {
  CHECK(rounding_problem(domain_over("numeric(10,2)"), "1.234"));
  CHECK_FALSE(rounding_problem(domain_over("numeric(10,2)"), "1.23"));
}
