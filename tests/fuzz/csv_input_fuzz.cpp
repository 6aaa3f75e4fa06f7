// Fuzzes the CSV reader (host/input_file): any bytes as an --input file.
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/input_records.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  host::fuzz::read_input("fuzz/input.csv", data, size);
  return 0;
}
