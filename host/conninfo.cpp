#include "host/conninfo.hpp"

#include <cstdlib>
#include <regex>
#include <vector>

namespace host {

std::string resolve_conninfo(const std::optional<std::string>& db_option) {
  if (db_option && !db_option->empty()) return *db_option;
  if (const char* url = std::getenv("DATABASE_URL"); url && *url) return url;
  return "";
}

namespace {

// Every password the conninfo (or PGPASSWORD) holds: a URL may carry one in its
// user info and another as a query parameter, and libpq uses the latter.
std::vector<std::string> passwords_in(const std::string& conninfo) {
  static const std::regex url_password(R"(^[a-z]+://[^:/@?]*:([^@/?]*)@)");
  static const std::regex url_query_password(R"([?&]password=([^&#]*))");
  static const std::regex keyword_password(R"((?:^|\s)password\s*=\s*('(?:[^'\\]|\\.)*'|\S+))");
  std::vector<std::string> found;
  auto keep = [&](std::string value) {
    if (!value.empty()) found.push_back(std::move(value));
  };
  bool url = conninfo.find("://") != std::string::npos;
  std::smatch match;
  if (url && std::regex_search(conninfo, match, url_password)) keep(match[1].str());
  if (url)
    for (std::sregex_iterator it(conninfo.begin(), conninfo.end(), url_query_password), end;
         it != end; ++it)
      keep((*it)[1].str());
  if (!url && std::regex_search(conninfo, match, keyword_password)) {
    std::string value = match[1].str();
    if (value.size() >= 2 && value.front() == '\'') value = value.substr(1, value.size() - 2);
    keep(value);
  }
  if (const char* env = std::getenv("PGPASSWORD"); env && *env) keep(env);
  return found;
}

std::string replace_all(std::string text, const std::string& needle, const std::string& with) {
  if (needle.empty()) return text;
  for (size_t at = text.find(needle); at != std::string::npos;
       at = text.find(needle, at + with.size()))
    text.replace(at, needle.size(), with);
  return text;
}

}  // namespace

std::string redact_conninfo(const std::string& conninfo) {
  return scrub_secrets(conninfo, conninfo);
}

std::string scrub_secrets(const std::string& text, const std::string& conninfo) {
  std::string scrubbed = text;
  for (const auto& password : passwords_in(conninfo))
    scrubbed = replace_all(scrubbed, password, "***");
  return scrubbed;
}

}  // namespace host
