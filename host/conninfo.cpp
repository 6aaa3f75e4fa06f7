#include "host/conninfo.hpp"

#include <cstdlib>
#include <regex>

namespace host {

std::string resolve_conninfo(const std::optional<std::string>& db_option) {
  if (db_option && !db_option->empty()) return *db_option;
  if (const char* url = std::getenv("DATABASE_URL"); url && *url) return url;
  return "";
}

namespace {

std::optional<std::string> password_in(const std::string& conninfo) {
  static const std::regex url_password(R"(^[a-z]+://[^:/@]*:([^@]*)@)");
  static const std::regex url_query_password(R"(^[a-z]+://[^?]*\?(?:[^#]*&)?password=([^&#]*))");
  static const std::regex keyword_password(R"((?:^|\s)password\s*=\s*('(?:[^'\\]|\\.)*'|\S+))");
  std::smatch match;
  if (std::regex_search(conninfo, match, url_password)) return match[1].str();
  if (std::regex_search(conninfo, match, url_query_password)) return match[1].str();
  if (std::regex_search(conninfo, match, keyword_password)) {
    std::string value = match[1].str();
    if (value.size() >= 2 && value.front() == '\'') value = value.substr(1, value.size() - 2);
    return value;
  }
  if (const char* env = std::getenv("PGPASSWORD"); env && *env) return std::string(env);
  return std::nullopt;
}

std::string replace_all(std::string text, const std::string& needle, const std::string& with) {
  if (needle.empty()) return text;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + with.size()))
    text.replace(at, needle.size(), with);
  return text;
}

}  // namespace

std::string redact_conninfo(const std::string& conninfo) {
  auto password = password_in(conninfo);
  return password ? replace_all(conninfo, *password, "***") : conninfo;
}

std::string scrub_secrets(const std::string& text, const std::string& conninfo) {
  auto password = password_in(conninfo);
  return password && password->size() >= 1 ? replace_all(text, *password, "***") : text;
}

}  // namespace host
