// host/sql_text: identifiers are quoted, array literals survive every character.
#include "host/sql_text.hpp"

#include <catch2/catch.hpp>

#include "host/database.hpp"
#include "tests/support/test_support.hpp"

using namespace host;
using host::testing::fresh_database;
using host::testing::rows_as_text;

TEST_CASE("quote_ident double-quotes and doubles embedded quotes", "[unit][sql_text]") {
  CHECK(quote_ident("status") == "\"status\"");
  CHECK(quote_ident("Mixed Case") == "\"Mixed Case\"");
  CHECK(quote_ident("a\"b") == "\"a\"\"b\"");
  CHECK(quote_ident("\"") == "\"\"\"\"");
  CHECK(quote_ident("x; DROP TABLE t; --") == "\"x; DROP TABLE t; --\"");
  CHECK(quote_ident("café") == "\"café\"");
}

TEST_CASE("quote_ident names a table with awkward characters on the server", "[unit][sql_text]") {
  Database database(fresh_database());
  std::string name = "we\"ird; name";
  database.exec("CREATE TABLE " + quote_ident(name) + " (" + quote_ident("col\"1") + " int)");
  database.exec("INSERT INTO " + quote_ident(name) + " VALUES (7)");
  CHECK(rows_as_text(database, "SELECT " + quote_ident("col\"1") + " FROM " + quote_ident(name)) ==
        std::vector<std::string>{"7"});
}

TEST_CASE("array_literal escapes quotes and backslashes and keeps NULL", "[unit][sql_text]") {
  CHECK(array_literal({}) == "{}");
  CHECK(array_literal({std::string("a"), std::nullopt, std::string("b\"c")}) ==
        "{\"a\",NULL,\"b\\\"c\"}");
  CHECK(array_literal({std::string("back\\slash")}) == "{\"back\\\\slash\"}");
  // The text NULL is a value, not SQL NULL: it is quoted.
  CHECK(array_literal({std::string("NULL")}) == "{\"NULL\"}");
  CHECK(array_literal({std::string("")}) == "{\"\"}");
}

TEST_CASE("array_literal round-trips every element exactly through PostgreSQL",
          "[unit][sql_text]") {
  Database database(fresh_database());
  std::vector<std::optional<std::string>> elements = {std::string("plain"),
                                                      std::nullopt,
                                                      std::string("NULL"),
                                                      std::string("with \"quotes\""),
                                                      std::string("back\\slash\\"),
                                                      std::string("comma, {brace}"),
                                                      std::string(""),
                                                      std::string("  "),
                                                      std::string("Zoë – café ✓ 日本"),
                                                      std::string("line\nbreak\ttab"),
                                                      std::string("'single'")};
  Params params{array_literal(elements)};
  auto result = database.exec(
      "SELECT ord, coalesce(quote_literal(e), 'SQLNULL') FROM unnest($1::text[]) WITH ORDINALITY "
      "AS x(e, ord) ORDER BY ord",
      params);
  REQUIRE(result.size() == elements.size());
  for (std::size_t i = 0; i < elements.size(); ++i) {
    auto element_on_server = database.exec("SELECT ($1::text[])[$2::int]",
                                           {array_literal(elements), std::to_string(i + 1)});
    INFO("element " << i);
    if (!elements[i]) {
      CHECK(element_on_server[0][0].is_null());
    } else {
      REQUIRE_FALSE(element_on_server[0][0].is_null());
      CHECK(std::string(element_on_server[0][0].c_str()) == *elements[i]);
    }
  }
}

TEST_CASE("column_list quotes every name and applies the alias", "[unit][sql_text]") {
  CHECK(column_list({"id", "my col"}) == "\"id\", \"my col\"");
  CHECK(column_list({"id", "x"}, "t") == "t.\"id\", t.\"x\"");
  CHECK(column_list({}) == "");
}

TEST_CASE("is_simple_name accepts only [a-z0-9_]+", "[unit][sql_text]") {
  CHECK(is_simple_name("projects"));
  CHECK(is_simple_name("legacy_2"));
  CHECK_FALSE(is_simple_name(""));
  CHECK_FALSE(is_simple_name("Projects"));
  CHECK_FALSE(is_simple_name("a-b"));
  CHECK_FALSE(is_simple_name("a b"));
  CHECK_FALSE(is_simple_name("x\"; drop"));
  CHECK_FALSE(is_simple_name("café"));
}
