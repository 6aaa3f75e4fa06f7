#pragma once
// The paper trail: runs, changed cells and inserted rows, audit events, review
// items, failed rows and id maps, in one schema the host creates and migrates.
// Every method works inside the caller's transaction.
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "host/run_types.hpp"

namespace host {

class Database;

struct RunRecord {
  std::string run_id;
  std::string recipe;
  std::string recipe_path;
  std::string recipe_hash;
  std::string recipe_version;
  std::string mode;         // "dry-run" | "commit"
  std::string commit_mode;  // "atomic" | "batch"
  std::string status;       // "running" | "succeeded" | "failed" | "verify_failed"
  nlohmann::json options;
  nlohmann::json checkpoint;
  nlohmann::json stats;
  nlohmann::json report;
  std::string started_at;
  std::string finished_at;
  std::string reverted_at;
  long long last_sequence = 0;
};

class Ledger {
 public:
  // `schema` defaults to $HOST_LEDGER_SCHEMA or "host_ledger".
  Ledger(Database& database, std::string schema);

  static std::string default_schema();
  const std::string& schema() const { return m_schema; }
  // "schema"."name", quoted.
  std::string table(const std::string& name) const;

  // Creates the schema or migrates it to the current version (idempotent, locked).
  void ensure_schema();
  // True when the ledger schema exists (read-only commands do not create it).
  bool exists();

  void insert_run(const RunRecord& run);
  void update_progress(const std::string& run_id, const nlohmann::json& checkpoint,
                       const nlohmann::json& stats);
  void finish_run(const std::string& run_id, const std::string& status, const nlohmann::json& stats,
                  const nlohmann::json& report);
  std::optional<RunRecord> find_run(const std::string& run_id);
  std::vector<RunRecord> list_runs();
  void mark_reverted(const std::string& run_id, const nlohmann::json& revert_report);

  void record_reviews(const std::string& run_id, long long& sequence,
                      const std::vector<ReviewItem>& items);
  void record_audit(const std::string& run_id, long long& sequence,
                    const std::vector<AuditEvent>& events);
  // A batch number, unique in the ledger, for what is numbered outside a chunk's
  // renewal (which draws its own): a batch written beside the one before, verify's
  // review items and audit events.
  long long next_batch_number();
  void record_failed_rows(const std::string& run_id, long long& sequence,
                          const std::vector<FailedRow>& rows);

  // Per table and column: how many cells the run changed (report "changes").
  nlohmann::json change_counts(const std::string& run_id);
  // Per table: how many rows the run inserted.
  nlohmann::json insert_counts(const std::string& run_id);
  // Per table and column (null for row-level items): how many review items.
  nlohmann::json review_counts(const std::string& run_id);
  nlohmann::json reviews(const std::string& run_id, long long limit);
  nlohmann::json audit_events(const std::string& run_id, long long limit);
  nlohmann::json failed_rows(const std::string& run_id, long long limit);

  // "schema"."<entity>_id_map", created on first use.
  std::string id_map_table(const std::string& entity);

 private:
  Database& m_database;
  std::string m_schema;
  std::vector<std::string> m_known_maps;
};

}  // namespace host
