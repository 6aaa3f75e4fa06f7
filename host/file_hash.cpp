#include "host/file_hash.hpp"

#include <cstdio>
#include <fstream>
#include <vector>

#include "host/errors.hpp"

namespace host {

void ContentHash::add(const char* data, std::size_t size) {
  for (std::size_t i = 0; i < size; ++i) {
    m_state ^= static_cast<unsigned char>(data[i]);
    m_state *= 1099511628211ull;
  }
}

std::string ContentHash::hex() const {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", m_state);
  return hex;
}

std::string file_hash(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw RecipeError(path + ": cannot be read");
  ContentHash hash;
  std::vector<char> buffer(1 << 16);
  while (file) {
    file.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    hash.add(buffer.data(), static_cast<std::size_t>(file.gcount()));
  }
  if (file.bad()) throw RecipeError(path + ": cannot be read");
  return hash.hex();
}

}  // namespace host
