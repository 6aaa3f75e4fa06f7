#include "host/report.hpp"

#include "host/errors.hpp"
#include "host/private_file.hpp"

namespace host {

namespace {

std::string text_of(const nlohmann::json& value) {
  if (value.is_null()) return "NULL";
  if (value.is_string()) return value.get<std::string>();
  return value.dump();
}

// Table cells must not break the Markdown table.
std::string cell(const nlohmann::json& value) {
  std::string text = text_of(value), escaped;
  if (text.size() > 80) text = text.substr(0, 77) + "...";
  for (char c : text) {
    if (c == '|')
      escaped += "\\|";
    else if (c == '\n')
      escaped += ' ';
    else
      escaped += c;
  }
  return escaped;
}

// A failed run's report may hold null where a text is expected (no run id yet).
std::string text_field(const nlohmann::json& report, const char* key, const char* otherwise = "") {
  auto found = report.find(key);
  return found != report.end() && found->is_string() ? found->get<std::string>() : otherwise;
}

long long stat(const nlohmann::json& report, const char* name) {
  return report["stats"].value(name, 0LL);
}

}  // namespace

std::string markdown_report(const nlohmann::json& report) {
  std::string md;
  bool dry = text_field(report, "mode") == "dry-run";
  md += "# Run report: " + text_field(report, "recipe", "?") + "\n\n";
  md += "| | |\n|---|---|\n";
  md += "| Run | `" + text_field(report, "run_id") + "` |\n";
  md += "| Mode | " + std::string(dry ? "dry run (nothing was committed)" : "commit") + " |\n";
  md += "| Commit | " + text_field(report, "commit", "atomic") + " |\n";
  md += "| Status | **" + text_field(report, "status") + "** |\n";
  md += "| Recipe file | `" + text_field(report, "recipe_path") + "` |\n";
  if (report.contains("started_at") && report["started_at"].is_string())
    md += "| Started | " + report["started_at"].get<std::string>() + " |\n";
  if (report.contains("duration_ms"))
    md += "| Duration | " + std::to_string(report["duration_ms"].get<long long>()) + " ms |\n";
  if (report.contains("error") && report["error"].is_string())
    md += "\n**Error:** " + report["error"].get<std::string>() + "\n";

  md +=
      "\n## Summary\n\n| scanned | patched | protected | inserted | review | errors | audit events "
      "| ids mapped |\n";
  md += "|---:|---:|---:|---:|---:|---:|---:|---:|\n| ";
  for (const char* name : {"scanned", "patched", "protected", "inserted", "review", "errors",
                           "audit_events", "ids_mapped"})
    md += std::to_string(stat(report, name)) + " | ";
  md += "\n";

  md += "\n## Tables\n\n";
  const auto tables = report.value("tables", nlohmann::json::array());
  if (tables.empty()) {
    md += "No table was touched.\n";
  } else {
    md += "| table | scanned | patched | protected | inserted | review | errors |\n";
    md += "|---|---:|---:|---:|---:|---:|---:|\n";
    for (const auto& row : tables) {
      md += "| " + cell(row["table"]);
      for (const char* name : {"scanned", "patched", "protected", "inserted", "review", "errors"})
        md += " | " + std::to_string(row.value(name, 0LL));
      md += " |\n";
    }
  }

  md += "\n## Columns" + std::string(dry ? " (changes that would be made)" : "") + "\n\n";
  const auto columns = report.value("columns", nlohmann::json::array());
  if (columns.empty()) {
    md += report.value("inserts", nlohmann::json::array()).empty()
              ? "Nothing to change.\n"
              : "No cell of an existing row to change (inserted rows: see Tables).\n";
  } else {
    md += "| table | column | patched | protected | review |\n|---|---|---:|---:|---:|\n";
    for (const auto& row : columns)
      md += "| " + cell(row["table"]) + " | " + cell(row["column"]) + " | " +
            std::to_string(row.value("patched", 0LL)) + " | " +
            std::to_string(row.value("protected", 0LL)) + " | " +
            std::to_string(row.value("review", 0LL)) + " |\n";
  }
  if (stat(report, "protected") > 0)
    md += "\n*protected*: the field already held a value and was left alone.\n";

  const auto& review = report["review"];
  md += "\n## Review items\n\n";
  if (review.empty()) {
    md += "None.\n";
  } else {
    md += "Proposed values below the confidence gate; nothing here was written.\n\n";
    md += "| table | key | column | value | confidence | reason |\n|---|---|---|---|---|---|\n";
    for (const auto& item : review)
      md += "| " + cell(item["table"]) + " | " + cell(item["key"]) + " | " + cell(item["column"]) +
            " | " + cell(item["value"]) + " | " + cell(item["confidence"]) + " | " +
            cell(item["reason"]) + " |\n";
  }

  const auto& verify = report["verify"];
  md += "\n## Verification\n\n";
  if (verify.empty()) {
    md += "No checks.\n";
  } else {
    md += "| | check | detail |\n|---|---|---|\n";
    for (const auto& check : verify)
      md += std::string("| ") + (check["ok"].get<bool>() ? "ok" : "**FAILED**") + " | " +
            cell(check["check"]) + " | " + cell(check["detail"]) + " |\n";
  }

  const auto orphans = report.value("orphans", nlohmann::json::array());
  if (!orphans.empty()) {
    md += "\n## Orphans\n\nReferences that point at no row.\n\n";
    md += "| reference | orphans | sample |\n|---|---:|---|\n";
    for (const auto& found : orphans)
      md += "| " + cell(found["child"]) + "." + cell(found["fk"]) + " -> " + cell(found["parent"]) +
            "." + cell(found["key"]) + " | " + std::to_string(found["count"].get<long long>()) +
            " | " + cell(found["sample"]) + " |\n";
  }

  const auto audit = report.value("audit", nlohmann::json::array());
  md += "\n## Audit events\n\n";
  if (audit.empty()) {
    md += "None.\n";
  } else {
    md += "| event | row | data |\n|---|---|---|\n";
    for (const auto& event : audit)
      md += "| " + cell(event["event"]) + " | " + cell(event["key"]) + " | " + cell(event["data"]) +
            " |\n";
  }
  const auto failed = report.value("failed_rows", nlohmann::json::array());
  if (!failed.empty()) {
    md += "\n## Failed rows (skipped)\n\n| row | error |\n|---|---|\n";
    for (const auto& row : failed)
      md += "| " + cell(row["key"]) + " | " + cell(row["error"]) + " |\n";
  }
  md += "\n## Undo\n\n";
  if (dry)
    md += "This was a dry run: nothing was committed, there is nothing to revert.\n";
  else
    md += "```\n" + text_field(report, "revert_command") + "\n```\n";
  return md;
}

void write_report(const nlohmann::json& report, const std::string& path) {
  // Reports hold data values: a new one is readable by its owner only.
  PrivateFile file(path, PrivateFile::Mode::truncate);
  if (!file.ok()) throw UsageError("cannot write the report to '" + path + "': " + file.error());
  bool markdown = path.size() >= 3 && path.compare(path.size() - 3, 3, ".md") == 0;
  if (!file.write(markdown ? markdown_report(report) : report.dump(2) + "\n") || !file.close())
    throw UsageError("cannot write the report to '" + path + "': " + file.error());
}

}  // namespace host
