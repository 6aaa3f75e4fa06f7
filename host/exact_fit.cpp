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
// exponent into account; -1 when the text is not a plain decimal number.
int significant_fraction_digits(const std::string& text) {
  std::size_t i = 0;
  if (i < text.size() && (text[i] == '+' || text[i] == '-')) ++i;
  std::string fraction;
  bool digits = false;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i, digits = true;
  if (i < text.size() && text[i] == '.') {
    ++i;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])))
      fraction += text[i++], digits = true;
  }
  long exponent = 0;
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    char* end = nullptr;
    exponent = std::strtol(text.c_str() + i + 1, &end, 10);
    i = static_cast<std::size_t>(end - text.c_str());
  }
  if (!digits || i != text.size()) return -1;
  while (!fraction.empty() && fraction.back() == '0') fraction.pop_back();
  long places = static_cast<long>(fraction.size()) - exponent;
  return places < 0 ? 0 : static_cast<int>(places);
}

// Fractional-second digits that matter in a time, timestamp or interval text.
int significant_second_digits(const std::string& text) {
  int best = 0;
  for (std::size_t dot = text.find('.'); dot != std::string::npos; dot = text.find('.', dot + 1)) {
    // Only a dot after "hh:mm:ss" is a fraction of a second.
    if (dot < 3 || text[dot - 3] != ':') continue;
    std::string digits;
    for (std::size_t i = dot + 1; i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])); ++i)
      digits += text[i];
    while (!digits.empty() && digits.back() == '0') digits.pop_back();
    if (static_cast<int>(digits.size()) > best) best = static_cast<int>(digits.size());
  }
  return best;
}

}  // namespace

std::optional<std::string> rounding_problem(const Column& column, const std::string& value) {
  int precision = 0, scale = 0;
  if (type_modifiers(column.type, "numeric", precision, scale)) {
    if (scale < 0) scale = 0;
    int places = significant_fraction_digits(value);
    if (places > scale)
      return "'" + value + "' has " + std::to_string(places) + " decimal places; " +
             column.type + " keeps " + std::to_string(scale) + " and would round it";
    return std::nullopt;
  }
  for (const char* prefix : {"timestamp", "time", "interval"}) {
    int seconds_precision = 0, unused = 0;
    if (!type_modifiers(column.type.substr(0, column.type.find(')') + 1), prefix, seconds_precision,
                        unused))
      continue;
    int places = significant_second_digits(value);
    if (places > seconds_precision)
      return "'" + value + "' has " + std::to_string(places) + " fractional second digits; " +
             column.type + " keeps " + std::to_string(seconds_precision) + " and would round it";
    return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace host
