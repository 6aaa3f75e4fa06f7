#pragma once
// `host check --offline`: validates recipe files without a database, so that a
// recipe library's CI can check every recipe on every change.
#include <map>
#include <string>
#include <vector>

#include "bindings/sandbox.hpp"

namespace host {

struct OfflineCheckOptions {
  std::vector<std::string> libs;            // --lib folders, searched by require
  std::map<std::string, std::string> vars;  // --var pairs, as a run would see them
  SandboxLimits limits;
};

// What one recipe's offline check found.
struct OfflineCheckResult {
  std::vector<std::string> problems;  // one line each, naming the file (and line)
  std::vector<std::string> modules;   // every module of the require graph, by name
};

// Loads `path` in a sandbox with every recipe global installed (those that need
// the database raise a clear error when called while the file loads), validates
// the recipe table (fields, name, source, key, columns, where, writes, batch_size,
// commit, on_error, each, verify), then requires every module named by a literal
// `require "name"` in the recipe and, transitively, in the modules it loads, so
// that a require inside `each` is checked too. Throws UsageError when the file
// does not exist; every other finding is a problem in the result.
OfflineCheckResult check_recipe_offline(const std::string& path,
                                        const OfflineCheckOptions& options);

// The globals a recipe sees beyond the sandbox's base allow list
// (bindings/sandbox_policy.cpp): read from a sandbox set up as a run sets it up,
// so that documentation (editor/host.d.lua) can be checked against the code. Sorted.
std::vector<std::string> recipe_global_names();

// The module names of every literal `require "x"`, `require('x')` or
// `require [[x]]` in Lua `source`, with their line numbers; comments skipped.
std::vector<std::pair<std::string, int>> literal_requires(const std::string& source);

}  // namespace host
