#pragma once
// The subcommands of RECIPE_API.md section 8, each returning its exit code.
// Errors leave as the exceptions of host/errors.hpp; main() maps them.
#include <optional>
#include <string>

#include "host/runner.hpp"

namespace host {

ExitCode command_run(const RunOptions& options);
ExitCode command_check(const RunOptions& options);
ExitCode command_verify(RunOptions options);
ExitCode command_resume(const std::string& run_id, const std::optional<std::string>& db,
                        const std::string& ledger_schema,
                        const std::vector<std::string>& report_paths, bool quiet);
ExitCode command_revert(const std::string& run_id, bool dry_run,
                        const std::optional<std::string>& db, const std::string& ledger_schema,
                        bool json);
ExitCode command_runs(const std::optional<std::string>& db, const std::string& ledger_schema,
                      bool json);
ExitCode command_show(const std::string& run_id, const std::optional<std::string>& db,
                      const std::string& ledger_schema, bool json);
ExitCode command_test(const std::vector<std::string>& paths, bool verbose);
// The demo: the shipped demo test, verbose, on its own throwaway cluster.
ExitCode command_demo();

}  // namespace host
