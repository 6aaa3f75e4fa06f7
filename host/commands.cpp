#include "host/commands.hpp"

#include <iostream>

#include "host/conninfo.hpp"
#include "host/database.hpp"
#include "host/ledger.hpp"
#include "host/offline_check.hpp"
#include "host/recipe_tests.hpp"
#include "host/report.hpp"
#include "host/revert.hpp"
#include "host/shipped_files.hpp"

namespace host {

ExitCode command_run(const RunOptions& options) { return run_recipe(options).exit; }

ExitCode command_check(const std::vector<std::string>& recipes, RunOptions options) {
  ExitCode code = ExitCode::ok;
  for (const auto& recipe : recipes) {
    options.recipe_path = recipe;
    std::vector<std::string> problems;
    try {
      problems = check_recipe(options);
    } catch (const RecipeError& e) {
      if (recipes.size() == 1) throw;  // main prints it, as ever
      std::cerr << "host: error: " << e.what() << "\n";
      code = ExitCode::runtime_error;
      continue;
    }
    if (problems.empty()) {
      std::cout << recipe << ": ok (names, types and writes match the database)\n";
      continue;
    }
    for (const auto& problem : problems) std::cerr << recipe << ": " << problem << "\n";
    code = ExitCode::runtime_error;
  }
  return code;
}

ExitCode command_check_offline(const std::vector<std::string>& recipes,
                               const std::vector<std::string>& libs,
                               const std::map<std::string, std::string>& vars,
                               const SandboxLimits& limits) {
  OfflineCheckOptions options;
  options.libs = libs;
  options.vars = vars;
  options.limits = limits;
  bool problems = false, missing = false;
  for (const auto& recipe : recipes) {
    OfflineCheckResult result;
    try {
      result = check_recipe_offline(recipe, options);
    } catch (const UsageError& e) {
      std::cerr << "host: usage error: " << e.what() << "\n";
      missing = true;
      continue;
    }
    if (result.problems.empty()) {
      std::cout << recipe << ": ok (offline: fields, names, writes and " << result.modules.size()
                << " required module" << (result.modules.size() == 1 ? "" : "s") << ")\n";
      continue;
    }
    // Each problem names its file already (the recipe's, or a module's).
    for (const auto& problem : result.problems) std::cerr << problem << "\n";
    problems = true;
  }
  if (missing) return ExitCode::usage_error;
  return problems ? ExitCode::runtime_error : ExitCode::ok;
}

ExitCode command_verify(RunOptions options) {
  options.dry_run = true;
  options.expect_no_changes = true;
  return run_recipe(options).exit;
}

ExitCode command_resume(const std::string& run_id, const std::optional<std::string>& db,
                        const std::string& ledger_schema, const TakeUpArgs& args) {
  RunOptions options = resume_options(run_id, db, ledger_schema);
  options.report_paths = args.report_paths;
  options.quiet = args.quiet;
  options.operating.progress = args.progress;
  if (args.workers) options.operating.workers = *args.workers;
  if (args.max_rate) options.operating.max_rate = *args.max_rate;
  return run_recipe(options).exit;
}

ExitCode command_join(const std::string& run_id, const std::optional<std::string>& db,
                      const std::string& ledger_schema, const TakeUpArgs& args) {
  return join_run(run_id, db, ledger_schema, args.recipe, args.workers.value_or(1),
                  args.max_rate);
}

ExitCode command_revert(const std::string& run_id, bool dry_run,
                        const std::optional<std::string>& db, const std::string& ledger_schema,
                        bool json) {
  auto outcome = revert_run(run_id, dry_run, db, ledger_schema);
  if (json)
    std::cout << outcome.report.dump(2) << "\n";
  else
    std::cout << describe_revert(outcome);
  return outcome.conflicts > 0 ? ExitCode::revert_conflicts : ExitCode::ok;
}

ExitCode command_runs(const std::optional<std::string>& db, const std::string& ledger_schema,
                      bool json) {
  Database database(resolve_conninfo(db));
  Ledger ledger(database, ledger_schema);
  auto runs = ledger.list_runs();
  if (json) {
    auto array = nlohmann::json::array();
    for (const auto& run : runs)
      array.push_back({{"run_id", run.run_id},
                       {"recipe", run.recipe},
                       {"mode", run.mode},
                       {"commit", run.commit_mode},
                       {"status", run.status},
                       {"started_at", run.started_at},
                       {"finished_at", run.finished_at.empty() ? nlohmann::json()
                                                               : nlohmann::json(run.finished_at)},
                       {"reverted", !run.reverted_at.empty()}});
    std::cout << array.dump(2) << "\n";
    return ExitCode::ok;
  }
  if (runs.empty()) std::cout << "No runs yet.\n";
  for (const auto& run : runs)
    std::cout << run.run_id << "  " << run.started_at << "  " << run.status
              << (run.reverted_at.empty() ? "" : " (reverted)") << "  " << run.recipe << "\n";
  return ExitCode::ok;
}

ExitCode command_show(const std::string& run_id, const std::optional<std::string>& db,
                      const std::string& ledger_schema, bool json) {
  Database database(resolve_conninfo(db));
  Ledger ledger(database, ledger_schema);
  auto run = ledger.find_run(run_id);
  if (!run) throw UsageError("no run " + run_id + " in the ledger");
  nlohmann::json report = run->report;
  if (!report.is_object()) {
    // Interrupted before it could write its report: rebuild what the ledger knows.
    report = {{"run_id", run->run_id},
              {"recipe", run->recipe},
              {"recipe_path", run->recipe_path},
              {"mode", run->mode},
              {"commit", run->commit_mode},
              {"status", run->status},
              {"stats", run->stats.is_object() ? run->stats : nlohmann::json::object()},
              {"verify", nlohmann::json::array()},
              {"revert_command", "host revert " + run->run_id}};
  }
  report["changes"] = ledger.change_counts(run->run_id);
  report["inserts"] = ledger.insert_counts(run->run_id);
  report["review"] = ledger.reviews(run->run_id, 10000);
  report["audit"] = ledger.audit_events(run->run_id, 10000);
  report["failed_rows"] = ledger.failed_rows(run->run_id, 10000);
  report["started_at"] = run->started_at;
  report["finished_at"] =
      run->finished_at.empty() ? nlohmann::json() : nlohmann::json(run->finished_at);
  report["reverted"] = !run->reverted_at.empty();
  if (json)
    std::cout << report.dump(2) << "\n";
  else
    std::cout << markdown_report(report);
  return ExitCode::ok;
}

ExitCode command_test(const std::vector<std::string>& paths, bool verbose) {
  RecipeTestOptions options;
  options.paths = paths;
  options.verbose = verbose;
  return run_recipe_tests(options) == 0 ? ExitCode::ok : ExitCode::runtime_error;
}

ExitCode command_new_recipe(const ScaffoldOptions& options) {
  auto paths = write_recipe_scaffold(options);
  for (const auto& path : paths) std::cout << "wrote " << path << "\n";
  std::cout << "next: fill in `writes` and `each`, then `host check " << paths[0]
            << "` and `host test " << paths[1] << "`\n";
  return ExitCode::ok;
}

ExitCode command_demo() { return command_test({shipped_folder("recipes/demo")}, true); }

}  // namespace host
