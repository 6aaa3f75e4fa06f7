#pragma once
// Where the database is, and how to talk about it without leaking secrets.
#include <optional>
#include <string>

namespace host {

// --db if given, else $DATABASE_URL, else "" (libpq then reads the PG* variables).
std::string resolve_conninfo(const std::optional<std::string>& db_option);

// The conninfo (URL or key=value form) with any password replaced by "***".
std::string redact_conninfo(const std::string& conninfo);

// Removes every occurrence of the password in `conninfo` from `text`, so that a
// server or library message can be printed safely.
std::string scrub_secrets(const std::string& text, const std::string& conninfo);

}  // namespace host
