#pragma once
// The run report: JSON with the keys of RECIPE_API.md section 9 (and more), and
// the same facts as Markdown for people.
#include <string>

#include <nlohmann/json.hpp>

namespace host {

// Markdown rendering of a JSON run report.
std::string markdown_report(const nlohmann::json& report);

// Writes the report to `path`: Markdown when it ends in .md, JSON otherwise.
// A UsageError when the file cannot be written.
void write_report(const nlohmann::json& report, const std::string& path);

}  // namespace host
