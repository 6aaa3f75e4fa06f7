#pragma once
// What the fuzz targets share: a property check that fails loudly (libFuzzer then
// saves the input), whatever NDEBUG says.
#include <cstdio>
#include <cstdlib>

// Aborts with `what` when `condition` is false: a broken contract is a crash.
#define FUZZ_CHECK(condition, what)                                           \
  do {                                                                        \
    if (!(condition)) {                                                       \
      std::fprintf(stderr, "fuzz check failed: %s (%s)\n", what, #condition); \
      std::abort();                                                           \
    }                                                                         \
  } while (0)
