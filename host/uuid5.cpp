#include "host/uuid5.hpp"

#include <uuid/uuid.h>

#include <cctype>

namespace host {

namespace {

std::string unparse(const uuid_t id) {
  char text[37];
  uuid_unparse_lower(id, text);
  return text;
}

void namespace_of(const std::string& entity, uuid_t out) {
  const uuid_t* url_namespace = uuid_get_template("url");
  std::string name = "host:entity:" + entity;
  uuid_generate_sha1(out, *url_namespace, name.data(), name.size());
}

}  // namespace

std::string entity_namespace(const std::string& entity) {
  uuid_t ns;
  namespace_of(entity, ns);
  return unparse(ns);
}

std::string uuid_v5(const std::string& entity, const std::string& legacy_id) {
  uuid_t ns, id;
  namespace_of(entity, ns);
  uuid_generate_sha1(id, ns, legacy_id.data(), legacy_id.size());
  return unparse(id);
}

std::optional<std::string> canonical_uuid(const std::string& text) {
  if (text.size() != 36) return std::nullopt;
  std::string lower;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    bool hyphen_place = i == 8 || i == 13 || i == 18 || i == 23;
    if (hyphen_place != (c == '-')) return std::nullopt;
    if (!hyphen_place && !std::isxdigit(static_cast<unsigned char>(c))) return std::nullopt;
    lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return lower;
}

}  // namespace host
