#pragma once
// Deterministic ids for legacy keys (RECIPE_API.md section 4).
#include <optional>
#include <string>

namespace host {

// The namespace of an entity: UUIDv5 of "host:entity:<entity>" in the URL namespace,
// so the same entity name gives the same namespace on every machine.
std::string entity_namespace(const std::string& entity);

// UUIDv5 of `legacy_id` in the entity's namespace, lower-case text.
std::string uuid_v5(const std::string& entity, const std::string& legacy_id);

// The canonical lower-case form when `text` is a hyphenated UUID (any case), else nullopt.
std::optional<std::string> canonical_uuid(const std::string& text);

}  // namespace host
