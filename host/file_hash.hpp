#pragma once
// The content hash of a whole file, read in pieces (input files can be large).
#include <string>

namespace host {

// FNV-1a, 64 bits, hex, as text_hash() of the file's content; a RecipeError
// naming the file when it cannot be read.
std::string file_hash(const std::string& path);

}  // namespace host
