#pragma once
// Content hashes: FNV-1a, 64 bits, as 16 hex digits. Enough to notice that a
// recipe, module or input file changed; not a defence against a forger.
#include <cstddef>
#include <string>

namespace host {

// Fed in pieces; hex() of the whole equals the hash of the bytes fed so far.
class ContentHash {
 public:
  void add(const char* data, std::size_t size);
  std::string hex() const;

 private:
  unsigned long long m_state = 14695981039346656037ull;
};

// The hash of a whole file, read in pieces (input files can be large); a
// RecipeError naming the file when it cannot be read.
std::string file_hash(const std::string& path);

}  // namespace host
