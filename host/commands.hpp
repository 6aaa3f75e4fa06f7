#pragma once
// The subcommands of RECIPE_API.md section 8, each returning its exit code.
// Errors leave as the exceptions of host/errors.hpp; main() maps them.
#include <optional>
#include <string>

#include "host/recipe_scaffold.hpp"
#include "host/runner.hpp"

namespace host {

ExitCode command_run(const RunOptions& options);
// `host check RECIPE...`: each recipe against the live schema; 1 if any has problems.
ExitCode command_check(const std::vector<std::string>& recipes, RunOptions options);
// `host check --offline RECIPE...`: no database (host/offline_check.hpp); every
// recipe is checked and reported, 1 if any has problems, 2 if a file is missing.
ExitCode command_check_offline(const std::vector<std::string>& recipes,
                               const std::vector<std::string>& libs,
                               const std::map<std::string, std::string>& vars,
                               const SandboxLimits& limits);
ExitCode command_verify(RunOptions options);
// `host resume` and `host join`: what may differ from the recorded run.
struct TakeUpArgs {
  std::optional<int> workers;
  std::optional<double> max_rate;
  std::optional<std::string> recipe;  // join --recipe
  std::string progress = "auto";
  std::vector<std::string> report_paths;
  bool quiet = false;
};

ExitCode command_resume(const std::string& run_id, const std::optional<std::string>& db,
                        const std::string& ledger_schema, const TakeUpArgs& args);
ExitCode command_join(const std::string& run_id, const std::optional<std::string>& db,
                      const std::string& ledger_schema, const TakeUpArgs& args);
ExitCode command_revert(const std::string& run_id, bool dry_run,
                        const std::optional<std::string>& db, const std::string& ledger_schema,
                        bool json);
ExitCode command_runs(const std::optional<std::string>& db, const std::string& ledger_schema,
                      bool json);
ExitCode command_show(const std::string& run_id, const std::optional<std::string>& db,
                      const std::string& ledger_schema, bool json);
ExitCode command_test(const std::vector<std::string>& paths, bool verbose);
// `host new recipe NAME --table T`: writes the two skeletons and says where.
ExitCode command_new_recipe(const ScaffoldOptions& options);
// The demo: the shipped demo test, verbose, on its own throwaway cluster.
ExitCode command_demo();

}  // namespace host
