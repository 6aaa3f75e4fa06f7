#pragma once
// `require` for recipes: Lua *source* modules only, found by name in a fixed
// list of folders (the recipe's folder, each --lib, stdlib/), loaded once per state.
#include <map>
#include <string>
#include <vector>

namespace host {

class Sandbox;

// A module as it was loaded: which file, and the hash of its text.
struct LoadedModule {
  std::string path;
  std::string hash;
};
using LoadedModules = std::map<std::string, LoadedModule>;  // by module name

// Installs `require` as a protected global searching `folders` in order. Every
// module loaded is recorded in `loaded` (when given; it must outlive the state),
// so that a resumed run can refuse modules that changed.
void install_module_loader(Sandbox& sandbox, std::vector<std::string> folders,
                           LoadedModules* loaded = nullptr);

// The folder holding the shipped stdlib: $HOST_STDLIB, else where the package installed
// it (next to the binary, host/shipped_files.hpp), else the source tree.
std::string stdlib_folder();

}  // namespace host
