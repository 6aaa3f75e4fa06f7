#pragma once
// Undoing a committed run from its ledger, conflict-safe: a cell goes back only
// where it still holds what the run wrote; an inserted row is deleted only while
// it is exactly as inserted. Everything else is left alone and reported.
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace host {

struct RevertOutcome {
  long long restored_cells = 0;
  long long deleted_rows = 0;
  long long conflicts = 0;
  nlohmann::json report;  // run_id, dry_run, restored, deleted, conflicts: [...]
};

// Reverts (or with `dry_run`, shows what reverting would do to) run `run_id`.
RevertOutcome revert_run(const std::string& run_id, bool dry_run,
                         const std::optional<std::string>& db, const std::string& ledger_schema);

// Human-readable summary of a revert.
std::string describe_revert(const RevertOutcome& outcome);

}  // namespace host
