// Fuzzes the rounding check (host/exact_fit): a column type and a value text.
// Input: the type ("numeric(10,2)", "timestamp(3) with time zone"), a newline,
// the value (anything a recipe may write).
#include <cstddef>
#include <cstdint>
#include <string>

#include "host/exact_fit.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string input(reinterpret_cast<const char*>(data), size);
  std::size_t newline = input.find('\n');
  host::Column column;
  column.name = "c";
  column.type = input.substr(0, newline);
  std::string value = newline == std::string::npos ? "" : input.substr(newline + 1);
  host::rounding_problem(column, value);
  // A domain: the check follows the type values are stored as.
  column.storage_type = column.type;
  column.type = "a_domain";
  host::rounding_problem(column, value);
  return 0;
}
