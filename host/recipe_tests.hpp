#pragma once
// `host test`: recipe tests written in Lua (tests/HOST_TEST_FORMAT.md, README),
// each run in a fresh database of one throwaway PostgreSQL cluster.
#include <string>
#include <vector>

namespace host {

struct RecipeTestOptions {
  std::vector<std::string> paths;  // files or folders holding *_test.lua
  bool verbose = false;            // print show() output and host output of failures
};

// Runs every test; prints one line per test and "N passed, M failed".
// Returns the number of failed tests.
int run_recipe_tests(const RecipeTestOptions& options);

}  // namespace host
