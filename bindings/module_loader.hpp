#pragma once
// `require` for recipes: Lua *source* modules only, found by name in a fixed
// list of folders (the recipe's folder, each --lib, stdlib/), loaded once per state.
#include <string>
#include <vector>

namespace host {

class Sandbox;

// Installs `require` as a protected global searching `folders` in order.
void install_module_loader(Sandbox& sandbox, std::vector<std::string> folders);

// The folder holding the shipped stdlib: $HOST_STDLIB, else next to the source tree.
std::string stdlib_folder();

}  // namespace host
