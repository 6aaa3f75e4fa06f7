#include "host/file_hash.hpp"

#include <cstdio>
#include <fstream>
#include <vector>

#include "host/errors.hpp"

namespace host {

std::string file_hash(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw RecipeError(path + ": cannot be read");
  unsigned long long hash = 14695981039346656037ull;
  std::vector<char> buffer(1 << 16);
  while (file) {
    file.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    for (std::streamsize i = 0; i < file.gcount(); ++i) {
      hash ^= static_cast<unsigned char>(buffer[static_cast<std::size_t>(i)]);
      hash *= 1099511628211ull;
    }
  }
  if (file.bad()) throw RecipeError(path + ": cannot be read");
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", hash);
  return hex;
}

}  // namespace host
