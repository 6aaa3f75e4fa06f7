#include "host/filter.hpp"

#include "host/catalog.hpp"
#include "host/errors.hpp"
#include "host/sql_text.hpp"

namespace host {

std::string empty_condition(const Column& column, const std::string& expression, EmptyRule rule) {
  if (column.is_text && rule == EmptyRule::blank)
    return "(" + expression + " IS NULL OR " + expression + "::text ~ '^[[:space:]]*$')";
  return "(" + expression + " IS NULL)";
}

std::string render_filter(const Filter& filter, const TableInfo& table, const std::string& alias,
                          Params& params) {
  std::string sql;
  auto add = [&](const std::string& predicate) {
    if (!sql.empty()) sql += " AND ";
    sql += predicate;
  };
  for (const auto& condition : filter.conditions) {
    const Column& column = table.require_column(condition.column);
    std::string expression = (alias.empty() ? "" : alias + ".") + quote_ident(column.name);
    switch (condition.kind) {
      case Condition::Kind::equals:
        params.push_back(condition.values.at(0));
        add(expression + " = $" + std::to_string(params.size()) + "::" + column.cast_type);
        break;
      case Condition::Kind::in_list:
        params.push_back(array_literal(condition.values));
        add(expression + " = ANY($" + std::to_string(params.size()) + "::" + column.cast_type +
            "[])");
        break;
      case Condition::Kind::empty:
        add(empty_condition(column, expression, EmptyRule::blank));
        break;
      case Condition::Kind::not_empty:
        add("NOT " + empty_condition(column, expression, EmptyRule::blank));
        break;
    }
  }
  if (filter.sql) add("(" + *filter.sql + "\n)");
  return sql.empty() ? "TRUE" : sql;
}

}  // namespace host
