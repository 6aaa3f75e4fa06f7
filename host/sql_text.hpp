#pragma once
// Building SQL text safely: identifiers are validated and quoted here, values
// never are (they travel as bound parameters, see Database::exec).
#include <optional>
#include <string>
#include <vector>

namespace host {

// Double-quotes an identifier, doubling embedded quotes.
std::string quote_ident(const std::string& name);

// PostgreSQL array literal of text elements ('{"a",NULL,"b\"c"}'), sent as one
// bound parameter and cast to the element type on the server.
std::string array_literal(const std::vector<std::optional<std::string>>& elements);

// "c1, c2" with every name quoted and optionally prefixed with `alias.`.
std::string column_list(const std::vector<std::string>& columns, const std::string& alias = "");

// True for names a recipe may use for entities and map tables: [a-z0-9_]+.
bool is_simple_name(const std::string& name);

}  // namespace host
