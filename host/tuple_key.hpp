#pragma once
// Map keys built from several strings. Joining them with a separator lets
// ("x\x1fy", "z") and ("x", "y\x1fz") collide; a length prefix per part cannot.
#include <string>

namespace host {

// Appends `part` to `key` so that no two different sequences of parts give the same key.
inline void append_key_part(std::string& key, const std::string& part) {
  key += std::to_string(part.size());
  key += ':';
  key += part;
}

template <typename... Parts>
std::string tuple_key(const Parts&... parts) {
  std::string key;
  (append_key_part(key, std::string(parts)), ...);
  return key;
}

}  // namespace host
