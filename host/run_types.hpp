#pragma once
// Plain data shared by the runner, the primitives, the ledger and the reports.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "host/database.hpp"

namespace host {

struct TableInfo;

enum class Confidence { low = 0, medium = 1, high = 2 };
const char* confidence_name(Confidence confidence);
// "high"/"medium"/"low", or false when the text is none of them.
bool parse_confidence(const std::string& text, Confidence& out);

enum class CommitMode { atomic, batch };
enum class RunMode { dry_run, commit };

// Counters of RECIPE_API.md section 9.
struct RunStats {
  long long scanned = 0, patched = 0, protected_fields = 0, inserted = 0, review = 0, errors = 0,
            audit_events = 0, ids_mapped = 0;
  nlohmann::json to_json() const;
  static RunStats from_json(const nlohmann::json& json);
  RunStats& operator+=(const RunStats& other);
  // What happened between `earlier` and this (a batch's share of a worker's counters).
  RunStats since(const RunStats& earlier) const;
};

// A row the host can write back to: which table, and its key.
struct RowOrigin {
  const TableInfo* table = nullptr;
  // Not copied per row: it points into what lives as long as the run (the
  // catalog's primary key, the session's key, or RunContext::lasting_key).
  const std::vector<std::string>* key_columns = nullptr;
  Params key;
};

// Which source row is being processed: its key for the ledger and reports, and
// words for messages. Shared (not copied) by everything the row's `each` queues.
struct RowIdentity {
  // {"id": 5} / {"input": "projects", "line": 7}; null outside rows.
  nlohmann::json key() const;
  nlohmann::json given_key;  // the key of a row that is not of a table
  std::string description;   // "row id=5" / "record projects.csv:7" / "the recipe"
  // A scanned row: the table it lies in (a partition or child has its own) and its
  // ctid when scanned, which lets a batch's UPDATE find it without the key's index.
  std::string table_oid, place;
  // A scanned row's key, made into JSON only when asked for: most rows never are.
  const TableInfo* table = nullptr;
  const std::vector<std::string>* key_columns = nullptr;  // as in RowOrigin
  Params key_values;
};

struct ReviewItem {
  std::string table;
  nlohmann::json key;
  std::string column;
  nlohmann::json value;
  std::string confidence;
  std::string reason;
};

struct AuditEvent {
  std::string event;
  nlohmann::json data;
  nlohmann::json row_key;
};

struct FailedRow {
  nlohmann::json key;
  std::string error;
};

struct VerifyCheck {
  std::string check;
  bool ok = false;
  std::string detail;
};

// {"id": 5} from key columns and their text values; integer columns of `table`
// (when given) become JSON numbers.
nlohmann::json key_json(const TableInfo* table, const std::vector<std::string>& columns,
                        const Params& values);
// "id=5" / "a=1, b=x" for messages.
std::string describe_key(const std::vector<std::string>& columns, const Params& values);

}  // namespace host
