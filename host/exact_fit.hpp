#pragma once
// PostgreSQL rounds, without an error, a value with more fractional digits than
// a numeric(p,s) or time(p)/timestamp(p)/interval(p) column keeps. The contract
// says no value is ever silently rounded, so writes are checked here first.
#include <optional>
#include <string>

#include "host/catalog.hpp"

namespace host {

// Why `value` (PostgreSQL text form) would be rounded when stored in `column`,
// or nullopt when it is stored exactly (or the server will refuse it anyway).
std::optional<std::string> rounding_problem(const Column& column, const std::string& value);

}  // namespace host
