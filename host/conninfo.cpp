#include "host/conninfo.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <vector>

namespace host {

std::string resolve_conninfo(const std::optional<std::string>& db_option) {
  if (db_option && !db_option->empty()) return *db_option;
  if (const char* url = std::getenv("DATABASE_URL"); url && *url) return url;
  return "";
}

namespace {

bool is_space(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

// Keywords whose values are secrets: the server password and the client key's.
bool is_secret_keyword(std::string keyword) {
  for (char& c : keyword) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return keyword == "password" || keyword == "sslpassword";
}

std::string percent_decoded(const std::string& text) {
  std::string decoded;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() &&
        std::isxdigit(static_cast<unsigned char>(text[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(text[i + 2]))) {
      decoded += static_cast<char>(std::stoi(text.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      decoded += text[i];
    }
  }
  return decoded;
}

// Secrets of a key=value conninfo, read as libpq's conninfo_parse reads it: spaces
// around '=', values in single quotes, and a backslash escaping the next character
// (quoted or not: `password=Wrong\ Pass4` is one value). Each secret is kept both as
// written (to find it in the conninfo) and as libpq reads it (to find it in messages).
// A keyword without '=' is skipped rather than ending the scan, so a malformed
// conninfo still has its password found.
void keyword_secrets(const std::string& conninfo, std::vector<std::string>& found) {
  std::size_t i = 0, n = conninfo.size();
  auto skip_spaces = [&] {
    while (i < n && is_space(conninfo[i])) ++i;
  };
  for (;;) {
    skip_spaces();
    if (i >= n) return;
    std::size_t keyword_start = i;
    while (i < n && conninfo[i] != '=' && !is_space(conninfo[i])) ++i;
    std::string keyword = conninfo.substr(keyword_start, i - keyword_start);
    skip_spaces();
    if (i >= n || conninfo[i] != '=') continue;
    ++i;
    skip_spaces();
    std::size_t value_start = i;
    std::string value;
    bool quoted = i < n && conninfo[i] == '\'';
    if (quoted) ++i;
    while (i < n) {
      char c = conninfo[i];
      if (quoted ? c == '\'' : is_space(c)) break;
      ++i;
      if (c == '\\') {
        if (i < n) value += conninfo[i++];
      } else {
        value += c;
      }
    }
    if (quoted && i < n) ++i;  // the closing quote
    if (is_secret_keyword(keyword)) {
      found.push_back(conninfo.substr(value_start, i - value_start));
      found.push_back(value);
    }
  }
}

// Secrets of a postgresql:// URL, where libpq finds them: the password of the user
// info (up to the first '@' before any '/'), and password parameters of the query
// (everything after the first '?' that follows the user info).
void url_secrets(const std::string& conninfo, std::vector<std::string>& found) {
  std::size_t start = conninfo.find("://") + 3;
  std::size_t at = conninfo.find_first_of("@/", start);
  bool user_info = at != std::string::npos && conninfo[at] == '@';
  if (user_info) {
    std::size_t colon = conninfo.find(':', start);
    if (colon < at) {
      std::string password = conninfo.substr(colon + 1, at - colon - 1);
      found.push_back(password);
      found.push_back(percent_decoded(password));
    }
  }
  // A '?' inside the user info is part of it, as libpq reads it.
  std::size_t query = conninfo.find('?', user_info ? at + 1 : start);
  if (query == std::string::npos) return;
  // To the end: libpq knows no '#fragment' ("?password=a#b" sends the password "a#b").
  std::string parameters = conninfo.substr(query + 1);
  for (std::size_t from = 0; from <= parameters.size();) {
    std::size_t amp = parameters.find('&', from);
    std::string pair = parameters.substr(from, amp == std::string::npos ? amp : amp - from);
    std::size_t eq = pair.find('=');
    if (eq != std::string::npos && is_secret_keyword(percent_decoded(pair.substr(0, eq)))) {
      found.push_back(pair.substr(eq + 1));
      found.push_back(percent_decoded(pair.substr(eq + 1)));
    }
    if (amp == std::string::npos) break;
    from = amp + 1;
  }
}

// Every secret the conninfo (or PGPASSWORD) holds; none empty.
std::vector<std::string> passwords_in(const std::string& conninfo) {
  std::vector<std::string> found;
  bool url = conninfo.rfind("postgresql://", 0) == 0 || conninfo.rfind("postgres://", 0) == 0;
  if (url)
    url_secrets(conninfo, found);
  else
    keyword_secrets(conninfo, found);
  if (const char* env = std::getenv("PGPASSWORD"); env && *env) found.push_back(env);
  found.erase(std::remove(found.begin(), found.end(), std::string()), found.end());
  return found;
}

}  // namespace

std::string redact_conninfo(const std::string& conninfo) {
  return scrub_secrets(conninfo, conninfo);
}

std::string scrub_secrets(const std::string& text, const std::string& conninfo) {
  // Every character of `text` inside an occurrence of a secret is masked (overlaps
  // too), then each run of masked characters becomes one "***". No part of a secret
  // is left, and the "***" written is never searched again: replacing secret after
  // secret in the result made a password "*" triple the asterisks once per secret.
  std::vector<int> depth(text.size() + 1, 0);  // occurrences opening minus closing here
  for (const auto& password : passwords_in(conninfo))
    for (auto at = text.find(password); at != std::string::npos; at = text.find(password, at + 1)) {
      ++depth[at];
      --depth[at + password.size()];
    }
  std::string scrubbed;
  int open = 0;
  bool was_masked = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    open += depth[i];
    if (open == 0)
      scrubbed += text[i];
    else if (!was_masked)
      scrubbed += "***";
    was_masked = open > 0;
  }
  return scrubbed;
}

}  // namespace host
