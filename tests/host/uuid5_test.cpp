// host/uuid5: deterministic, standard UUIDv5 ids for legacy keys (RECIPE_API.md section 4).
#include "host/uuid5.hpp"

#include <catch2/catch.hpp>

using namespace host;

TEST_CASE("uuid_v5 is deterministic and matches an independent UUIDv5 implementation",
          "[unit][uuid5]") {
  // Expected values computed with Python's uuid module:
  //   ns = uuid5(NAMESPACE_URL, "host:entity:projects"); uuid5(ns, "42")
  CHECK(entity_namespace("projects") == "97c1cd55-9e8a-54e6-9c70-7806b352eb63");
  CHECK(uuid_v5("projects", "42") == "6c9fa3fb-2fe3-56ce-b549-6789ab4774bb");
  CHECK(uuid_v5("projects", "P-0007") == "9f126dd5-df23-57eb-8d90-9df29af48929");
  CHECK(uuid_v5("customers", "42") == "50eba11b-8c58-5a63-ad28-10a8b997d1e5");
  CHECK(uuid_v5("projects", "42") == uuid_v5("projects", "42"));
}

TEST_CASE("uuid_v5 differs by entity and by legacy id", "[unit][uuid5]") {
  CHECK(uuid_v5("projects", "1") != uuid_v5("customers", "1"));
  CHECK(uuid_v5("projects", "1") != uuid_v5("projects", "2"));
  CHECK(uuid_v5("projects", "1") != uuid_v5("projects", "1 "));
}

TEST_CASE("uuid_v5 carries version 5 and the RFC 4122 variant, in lower case", "[unit][uuid5]") {
  for (const char* legacy : {"1", "abc", "", "Zoë", "9007199254740993"}) {
    std::string id = uuid_v5("things", legacy);
    INFO(legacy << " -> " << id);
    REQUIRE(id.size() == 36);
    CHECK(id[8] == '-');
    CHECK(id[13] == '-');
    CHECK(id[18] == '-');
    CHECK(id[23] == '-');
    CHECK(id[14] == '5');
    CHECK(std::string("89ab").find(id[19]) != std::string::npos);
    CHECK(canonical_uuid(id) == id);
    for (char c : id) CHECK((c == '-' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')));
  }
}

TEST_CASE("canonical_uuid lower-cases hyphenated UUIDs and rejects anything else",
          "[unit][uuid5]") {
  CHECK(canonical_uuid("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11") ==
        std::optional<std::string>("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"));
  CHECK(canonical_uuid("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11") ==
        std::optional<std::string>("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"));
  CHECK(canonical_uuid("A0eEbC99-9c0B-4Ef8-bB6d-6bB9Bd380A11") ==
        std::optional<std::string>("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"));
  CHECK_FALSE(canonical_uuid("a0eebc999c0b4ef8bb6d6bb9bd380a11"));        // no hyphens
  CHECK_FALSE(canonical_uuid("{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}"));  // braces
  CHECK_FALSE(canonical_uuid("g0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"));    // not hex
  CHECK_FALSE(canonical_uuid("a0eebc99-9c0b4-ef8-bb6d-6bb9bd380a11"));    // hyphen misplaced
  CHECK_FALSE(canonical_uuid(" a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1"));
  CHECK_FALSE(canonical_uuid(""));
  CHECK_FALSE(canonical_uuid("42"));
}
