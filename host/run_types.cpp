#include "host/run_types.hpp"

#include "host/catalog.hpp"

namespace host {

const char* confidence_name(Confidence confidence) {
  switch (confidence) {
    case Confidence::low:
      return "low";
    case Confidence::medium:
      return "medium";
    case Confidence::high:
      return "high";
  }
  return "high";
}

bool parse_confidence(const std::string& text, Confidence& out) {
  if (text == "high") out = Confidence::high;
  else if (text == "medium") out = Confidence::medium;
  else if (text == "low") out = Confidence::low;
  else return false;
  return true;
}

nlohmann::json RunStats::to_json() const {
  return {{"scanned", scanned},     {"patched", patched}, {"protected", protected_fields},
          {"inserted", inserted},   {"review", review},   {"errors", errors},
          {"audit_events", audit_events}, {"ids_mapped", ids_mapped}};
}

RunStats& RunStats::operator+=(const RunStats& other) {
  scanned += other.scanned;
  patched += other.patched;
  protected_fields += other.protected_fields;
  inserted += other.inserted;
  review += other.review;
  errors += other.errors;
  audit_events += other.audit_events;
  ids_mapped += other.ids_mapped;
  return *this;
}

RunStats RunStats::since(const RunStats& earlier) const {
  RunStats delta;
  delta.scanned = scanned - earlier.scanned;
  delta.patched = patched - earlier.patched;
  delta.protected_fields = protected_fields - earlier.protected_fields;
  delta.inserted = inserted - earlier.inserted;
  delta.review = review - earlier.review;
  delta.errors = errors - earlier.errors;
  delta.audit_events = audit_events - earlier.audit_events;
  delta.ids_mapped = ids_mapped - earlier.ids_mapped;
  return delta;
}

RunStats RunStats::from_json(const nlohmann::json& json) {
  RunStats stats;
  auto get = [&](const char* name) { return json.contains(name) ? json[name].get<long long>() : 0; };
  stats.scanned = get("scanned");
  stats.patched = get("patched");
  stats.protected_fields = get("protected");
  stats.inserted = get("inserted");
  stats.review = get("review");
  stats.errors = get("errors");
  stats.audit_events = get("audit_events");
  stats.ids_mapped = get("ids_mapped");
  return stats;
}

nlohmann::json key_json(const TableInfo* table, const std::vector<std::string>& columns,
                        const Params& values) {
  auto key = nlohmann::json::object();
  for (size_t i = 0; i < columns.size() && i < values.size(); ++i) {
    if (!values[i]) {
      key[columns[i]] = nullptr;
      continue;
    }
    const Column* column = table ? table->column(columns[i]) : nullptr;
    bool integer = column && (column->type_oid == 20 || column->type_oid == 21 ||
                              column->type_oid == 23);
    if (integer && values[i]->size() < 16)
      key[columns[i]] = std::stoll(*values[i]);
    else
      key[columns[i]] = *values[i];
  }
  return key;
}

nlohmann::json RowIdentity::key() const {
  return key_columns ? key_json(table, *key_columns, key_values) : given_key;
}

std::string describe_key(const std::vector<std::string>& columns, const Params& values) {
  std::string text;
  for (size_t i = 0; i < columns.size() && i < values.size(); ++i) {
    if (!text.empty()) text += ", ";
    text += columns[i];
    text += '=';
    text += values[i] ? *values[i] : "NULL";
  }
  return text;
}

}  // namespace host
