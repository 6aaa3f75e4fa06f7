#pragma once
// The body of the CSV and JSON Lines fuzz targets: reads every record of an
// input given in memory, as the runner does (in batches), and hands each to Lua.
#include <cstddef>
#include <cstdint>
#include <string>

namespace host::fuzz {

// Reads `data` as the input file `name` (its extension picks the format) in
// batches of a size taken from the data, pushes every record into Lua and
// checks what the reader promises. A RecipeError (bad input) is an answer, not a
// failure; anything else escapes and is a crash.
void read_input(const std::string& name, const std::uint8_t* data, std::size_t size);

}  // namespace host::fuzz
