#include "host/sql_text.hpp"

namespace host {

std::string quote_ident(const std::string& name) {
  std::string quoted = "\"";
  for (char c : name) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  return quoted + "\"";
}

std::string array_literal(const std::vector<std::optional<std::string>>& elements) {
  std::size_t size = 2;
  for (const auto& element : elements) size += (element ? element->size() + 2 : 4) + 1;
  std::string text;
  text.reserve(size);
  text += '{';
  bool first = true;
  for (const auto& element : elements) {
    if (!first) text += ',';
    first = false;
    if (!element) {
      text += "NULL";
      continue;
    }
    text += '"';
    // Batches hold thousands of elements: whole runs of plain characters at once.
    std::size_t from = 0;
    for (;;) {
      std::size_t special = element->find_first_of("\"\\", from);
      text.append(*element, from, special == std::string::npos ? std::string::npos : special - from);
      if (special == std::string::npos) break;
      text += '\\';
      text += (*element)[special];
      from = special + 1;
    }
    text += '"';
  }
  text += '}';
  return text;
}

std::string column_list(const std::vector<std::string>& columns, const std::string& alias) {
  std::string text;
  for (const auto& column : columns) {
    if (!text.empty()) text += ", ";
    if (!alias.empty()) text += alias + ".";
    text += quote_ident(column);
  }
  return text;
}

bool is_simple_name(const std::string& name) {
  if (name.empty() || name.size() > 50) return false;
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  return true;
}

}  // namespace host
