#include "host/shipped_files.hpp"

#include <filesystem>
#include <system_error>

#include "host/process.hpp"

// Both set by CMakeLists.txt from packaging/layout.cmake.
#ifndef HOST_DATA_FROM_EXEC
#define HOST_DATA_FROM_EXEC "../../share/pg-backfill-host"
#endif
#ifndef HOST_INSTALL_DATA_DIR
#define HOST_INSTALL_DATA_DIR "share/pg-backfill-host"
#endif

namespace host {

std::string shipped_folder(const std::string& name) {
  namespace fs = std::filesystem;
  std::error_code ignored;
  try {
    // /proc/self/exe has every symlink resolved: /usr/bin/pg-host leads here too.
    fs::path installed = fs::path(current_executable()).parent_path() / HOST_DATA_FROM_EXEC / name;
    if (fs::is_directory(installed, ignored)) return installed.lexically_normal().string();
  } catch (const std::exception&) {
    // No /proc: fall back to the source tree.
  }
#ifdef HOST_NO_SOURCE_FALLBACK
  // A packaged binary: the build machine's source tree is not there to fall back to.
  return (fs::path("/usr") / HOST_INSTALL_DATA_DIR / name).string();
#else
  return (fs::path(HOST_SOURCE_DIR) / name).string();
#endif
}

}  // namespace host
