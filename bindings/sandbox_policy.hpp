#pragma once
// The sandbox policy as data: what a recipe's Lua state may see.
#include <string>
#include <utility>
#include <vector>

namespace host::sandbox_policy {

// Base-library functions copied into the recipe globals.
const std::vector<std::string>& allowed_base_functions();

// Libraries opened one by one, and the members of each that recipes may use.
const std::vector<std::pair<std::string, std::vector<std::string>>>& allowed_libraries();

}  // namespace host::sandbox_policy
