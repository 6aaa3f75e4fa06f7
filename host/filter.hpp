#pragma once
// A `where` filter (RECIPE_API.md section 3) in host terms, and its SQL.
#include <optional>
#include <string>
#include <vector>

#include "host/database.hpp"

namespace host {

struct Column;
struct TableInfo;

// What "empty" means for a write or a filter: NULL, or (for text) blank too.
enum class EmptyRule { blank, null_only };

struct Condition {
  enum class Kind { equals, in_list, empty, not_empty };
  std::string column;
  Kind kind = Kind::equals;
  std::vector<Param> values;  // one for equals, any number for in_list
};

struct Filter {
  std::vector<Condition> conditions;
  std::optional<std::string> sql;  // a recipe's read-only SQL predicate, used as-is

  bool empty() const { return conditions.empty() && !sql; }
};

// SQL that is true when `expression` (a column of type `column`) is empty.
std::string empty_condition(const Column& column, const std::string& expression, EmptyRule rule);

// The filter as a predicate over `alias`; bound values are appended to `params`
// and referenced by position. Unknown columns are a RecipeError. Returns "TRUE"
// for an empty filter.
std::string render_filter(const Filter& filter, const TableInfo& table, const std::string& alias,
                          Params& params);

}  // namespace host
