#include "host/exact_fit.hpp"

#include <cctype>
#include <cstdlib>

namespace host {

namespace {

// The number in parentheses after `prefix` in a formatted type: "numeric(10,2)" -> 10, 2.
bool type_modifiers(const std::string& type, const std::string& prefix, int& first, int& second) {
  if (type.rfind(prefix + "(", 0) != 0) return false;
  const char* cursor = type.c_str() + prefix.size() + 1;
  char* end = nullptr;
  first = static_cast<int>(std::strtol(cursor, &end, 10));
  second = -1;
  if (*end == ',') second = static_cast<int>(std::strtol(end + 1, &end, 10));
  return *end == ')';
}

// Digits after the decimal point that matter (trailing zeros dropped), taking an
// exponent into account: "150e-2" is 1.5, one place. -1 when the text is not a
// plain decimal number (NaN, Infinity: the server decides).
int significant_fraction_digits(const std::string& text) {
  std::size_t i = 0;
  if (i < text.size() && (text[i] == '+' || text[i] == '-')) ++i;
  std::string digits;
  long long point = 0;  // digits before the decimal point
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) digits += text[i++];
  point = static_cast<long long>(digits.size());
  if (i < text.size() && text[i] == '.') {
    ++i;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])))
      digits += text[i++];
  }
  if (digits.empty()) return -1;
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    char* end = nullptr;
    long long exponent = std::strtoll(text.c_str() + i + 1, &end, 10);
    if (end == text.c_str() + i + 1) return -1;
    if (exponent > 100000 || exponent < -100000) return -1;  // the server refuses those
    point += exponent;
    i = static_cast<std::size_t>(end - text.c_str());
  }
  if (i != text.size()) return -1;
  while (!digits.empty() && digits.back() == '0') digits.pop_back();
  long long places = static_cast<long long>(digits.size()) - point;
  return places < 0 ? 0 : static_cast<int>(places);
}

// Fractional-second digits that matter in a time, timestamp or interval text.
int significant_second_digits(const std::string& text) {
  int best = 0;
  for (std::size_t dot = text.find('.'); dot != std::string::npos; dot = text.find('.', dot + 1)) {
    // Only a dot after "hh:mm:ss" is a fraction of a second.
    if (dot < 3 || text[dot - 3] != ':') continue;
    std::string digits;
    for (std::size_t i = dot + 1;
         i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])); ++i)
      digits += text[i];
    while (!digits.empty() && digits.back() == '0') digits.pop_back();
    if (static_cast<int>(digits.size()) > best) best = static_cast<int>(digits.size());
  }
  return best;
}

}  // namespace

std::optional<std::string> rounding_problem(const Column& column, const std::string& raw) {
  // Only a type with modifiers (numeric(p,s), timestamp(p), ...) is checked: asked for
  // every value written, this returns at once for the others.
  const std::string& declared = column.storage_type.empty() ? column.type : column.storage_type;
  if (declared.find('(') == std::string::npos) return std::nullopt;
  // PostgreSQL ignores surrounding white space in these input forms ("1.234 " from a CSV).
  auto first = raw.find_first_not_of(" \t\r\n");
  auto last = raw.find_last_not_of(" \t\r\n");
  const std::string value = first == std::string::npos ? "" : raw.substr(first, last - first + 1);
  const std::string& type = declared;
  int precision = 0, scale = 0;
  if (type_modifiers(type, "numeric", precision, scale)) {
    if (scale < -1) return std::nullopt;  // negative scales (PostgreSQL 15) are not checked
    if (scale < 0) scale = 0;
    int places = significant_fraction_digits(value);
    if (places > scale)
      return "'" + value + "' has " + std::to_string(places) + " decimal places; " + type +
             " keeps " + std::to_string(scale) + " and would round it";
    return std::nullopt;
  }
  for (const char* prefix : {"timestamp", "time", "interval"}) {
    int seconds_precision = 0, unused = 0;
    if (!type_modifiers(type.substr(0, type.find(')') + 1), prefix, seconds_precision, unused))
      continue;
    int places = significant_second_digits(value);
    if (places > seconds_precision)
      return "'" + value + "' has " + std::to_string(places) + " fractional second digits; " +
             type + " keeps " + std::to_string(seconds_precision) + " and would round it";
    return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace host
