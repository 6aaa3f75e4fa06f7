// host: runs sandboxed Lua recipes that backfill and migrate PostgreSQL data.
// Parses the command line, dispatches, and maps every error to one printed
// line and the exit codes of RECIPE_API.md section 8.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <iostream>

#include "host/commands.hpp"
#include "host/errors.hpp"
#include "host/json_log.hpp"
#include "host/run_control.hpp"

namespace {

using host::ExitCode;

std::map<std::string, std::string> key_values(const std::vector<std::string>& items,
                                              const char* option) {
  std::map<std::string, std::string> pairs;
  for (const auto& item : items) {
    auto eq = item.find('=');
    if (eq == std::string::npos || eq == 0)
      throw host::UsageError(std::string(option) + " expects NAME=VALUE, got '" + item + "'");
    pairs[item.substr(0, eq)] = item.substr(eq + 1);
  }
  return pairs;
}

// A whole number from `low` to `high` written in decimal digits: CLI11 alone would
// read 0x10 as 16 and call 1.5 "not in range".
CLI::Validator whole_number(long long low, long long high) {
  return CLI::Validator(
      [low, high](std::string& text) -> std::string {
        long long value = 0;
        bool whole = !text.empty();
        for (char c : text) {
          // Not a digit, or already past `high` (checked before it could overflow).
          if (c < '0' || c > '9' || value > high / 10) {
            whole = false;
            break;
          }
          value = value * 10 + (c - '0');
        }
        if (whole && value >= low && value <= high) return "";
        return "must be a whole number from " + std::to_string(low) + " to " +
               std::to_string(high) + " (got '" + text + "')";
      },
      "INT in [" + std::to_string(low) + " - " + std::to_string(high) + "]");
}

struct Common {
  std::optional<std::string> db;
  std::string ledger_schema;
};

void add_common(CLI::App* command, Common& common) {
  command->add_option("--db", common.db, "libpq conninfo or URL (default: DATABASE_URL, then PG*)");
  command->add_option("--ledger-schema", common.ledger_schema,
                      "ledger schema (default: HOST_LEDGER_SCHEMA or host_ledger)");
}

struct RunArgs {
  std::string recipe;
  std::vector<std::string> recipes;  // `host check` takes several
  bool dry_run = false;
  std::vector<std::string> inputs, vars, libs, reports;
  std::string min_confidence = "high";
  std::optional<long long> batch_size, limit;
  std::string commit;
  bool quiet = false;
  std::string audit_file;
  long long timeout_ms = 10000;
  long long memory_mb = 512;
  host::OperatingOptions operating;
  std::optional<int> workers;
};

// Section 10: --workers and --max-rate are also taken by `resume` and `join`.
void add_workers_options(CLI::App* command, std::optional<int>& workers,
                         std::optional<double>& max_rate) {
  command->add_option("--workers", workers, "chunks worked on at once, each on its own connection")
      ->check(whole_number(1, 64));
  command->add_option("--max-rate", max_rate, "at most this many rows scanned per second")
      ->check(CLI::PositiveNumber);
}

void add_operating_options(CLI::App* command, RunArgs& args) {
  host::OperatingOptions& operating = args.operating;
  add_workers_options(command, args.workers, operating.max_rate);
  command->add_option("--lease-seconds", operating.lease_seconds,
                      "a chunk's lease, renewed by every batch (default 60)")
      ->check(whole_number(1, 86400));
  command->add_option("--lock-timeout", operating.lock_timeout_ms,
                      "lock_timeout of every statement, ms (default 2000)")
      ->check(whole_number(1, 86400000));
  command->add_option("--statement-timeout", operating.statement_timeout_ms,
                      "statement_timeout of every statement, ms (default 30000)")
      ->check(whole_number(1, 86400000));
  command->add_option("--retries", operating.retries,
                      "tries after the first of a batch that failed (default 10)")
      ->check(whole_number(0, 1000));
  command->add_option("--pause-when", operating.pause_when,
                      "read-only SQL returning one boolean: no batch starts while it is true");
  command->add_option("--target-batch-ms", operating.target_batch_ms,
                      "adaptive batch size aims at batches this long (default 1000)")
      ->check(whole_number(1, 3600000));
  command->add_option("--progress", operating.progress, "auto|plain|off")
      ->check(CLI::IsMember({"auto", "plain", "off"}));
}

enum class Recipes { one, many };

void add_run_options(CLI::App* command, RunArgs& args, bool with_dry_run,
                     Recipes recipes = Recipes::one) {
  if (recipes == Recipes::many)
    command->add_option("RECIPE", args.recipes, "recipe files")->required();
  else
    command->add_option("RECIPE", args.recipe, "recipe file")->required();
  if (with_dry_run) command->add_flag("--dry-run", args.dry_run, "do everything, then roll back");
  command->add_option("--input", args.inputs, "named input file NAME=PATH (CSV or JSON Lines)");
  command->add_option("--var", args.vars, "recipe variable K=V (read through vars)");
  command->add_option("--min-confidence", args.min_confidence, "high|medium|low")
      ->check(CLI::IsMember({"high", "medium", "low"}));
  command->add_option("--batch-size", args.batch_size, "rows per batch")
      ->check(whole_number(1, 1000000));
  command->add_option("--commit", args.commit, "atomic|batch")
      ->check(CLI::IsMember({"atomic", "batch"}));
  command->add_option("--lib", args.libs, "folder of shared Lua modules for require");
  command->add_option("--report", args.reports, "write the report to PATH.json or PATH.md");
  command->add_option("--limit", args.limit, "process at most N source rows")
      ->check(whole_number(0, 1LL << 62));
  command->add_flag("--quiet", args.quiet, "do not print the report");
  command->add_option("--audit-file", args.audit_file,
                      "append the run's audit events to this JSON Lines file");
  command->add_option("--timeout-ms", args.timeout_ms, "Lua time limit per row (ms)")
      ->check(whole_number(1, 86400000));
  command->add_option("--memory-mb", args.memory_mb, "Lua memory limit (MiB)")
      ->check(whole_number(8, 65536));
}

host::RunOptions to_options(const RunArgs& args, const Common& common) {
  host::RunOptions options;
  options.recipe_path = args.recipe;
  options.dry_run = args.dry_run;
  options.db = common.db;
  options.ledger_schema = common.ledger_schema;
  options.inputs = key_values(args.inputs, "--input");
  options.vars = key_values(args.vars, "--var");
  host::parse_confidence(args.min_confidence, options.min_confidence);
  options.batch_size = args.batch_size;
  if (args.commit == "atomic") options.commit = host::CommitMode::atomic;
  if (args.commit == "batch") options.commit = host::CommitMode::batch;
  options.libs = args.libs;
  options.report_paths = args.reports;
  options.limit = args.limit;
  options.quiet = args.quiet;
  options.audit_file = args.audit_file;
  options.limits.time_per_call = std::chrono::milliseconds(args.timeout_ms);
  options.limits.memory_bytes = static_cast<std::size_t>(args.memory_mb) * 1024 * 1024;
  options.operating = args.operating;
  if (args.workers) {
    options.operating.workers = *args.workers;
    options.operating.workers_given = true;
  }
  return options;
}

// `--log-format` comes before anything is parsed, so that even a usage error
// is logged in the format asked for. Accepts "--log-format json" and "--log-format=json".
host::LogFormat log_format_of(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--log-format=json" ||
        (arg == "--log-format" && i + 1 < argc && std::string(argv[i + 1]) == "json"))
      return host::LogFormat::json;
  }
  return host::LogFormat::human;
}

// Errors are one line: whatever a library put on further lines is folded in.
std::string one_line(std::string text) {
  for (char& c : text)
    if (c == '\n' || c == '\t' || c == '\r') c = ' ';
  return text;
}

// The last line of a failed command: one human line on stderr, or one JSON log line.
int fail(host::ExitCode code, const std::string& prefix, const std::string& message) {
  if (host::log_format() == host::LogFormat::json)
    spdlog::error("{}{}", prefix, one_line(message));
  else
    std::cerr << "host: " << prefix << one_line(message) << "\n";
  return static_cast<int>(code);
}

}  // namespace

int main(int argc, char** argv) {
  host::setup_logging(log_format_of(argc, argv));

  CLI::App app{"host: runs sandboxed Lua recipes that backfill and migrate PostgreSQL data"};
  app.require_subcommand(1);
  app.fallthrough();  // --log-format after the subcommand too
  std::string log_format = "human";
  app.add_option("--log-format", log_format,
                 "human|json: log lines for people, or one JSON object per line")
      ->check(CLI::IsMember({"human", "json"}))
      ->configurable(false);
  Common common;
  RunArgs run_args, check_args, verify_args;
  std::string run_id;
  bool dry_run = false, json = false, verbose = false, quiet = false;
  std::vector<std::string> paths, reports;

  auto* run =
      app.add_subcommand("run", "run a recipe (add --dry-run to only see what would change)");
  add_run_options(run, run_args, true);
  add_operating_options(run, run_args);
  add_common(run, common);
  auto* check = app.add_subcommand(
      "check", "validate recipes against the live schema, or --offline without a database");
  bool offline = false;
  add_run_options(check, check_args, false, Recipes::many);
  check->add_flag("--offline", offline,
                  "no database: fields, names, writes and the require graph only");
  add_common(check, common);
  auto* verify = app.add_subcommand(
      "verify", "dry run that fails (exit 3) unless nothing is left to change and verify passes");
  add_run_options(verify, verify_args, false);
  add_common(verify, common);
  auto* resume = app.add_subcommand("resume", "continue an interrupted batch-mode run");
  resume->add_option("RUN_ID", run_id)->required();
  resume->add_option("--report", reports, "write the report to PATH.json or PATH.md");
  resume->add_flag("--quiet", quiet, "do not print the report");
  host::TakeUpArgs take_up;
  add_workers_options(resume, take_up.workers, take_up.max_rate);
  resume->add_option("--progress", take_up.progress, "auto|plain|off")
      ->check(CLI::IsMember({"auto", "plain", "off"}));
  add_common(resume, common);
  auto* join = app.add_subcommand("join", "add workers to a running batch run (any machine)");
  join->add_option("RUN_ID", run_id)->required();
  add_workers_options(join, take_up.workers, take_up.max_rate);
  join->add_option("--recipe", take_up.recipe, "the recipe file, if not at the recorded path");
  add_common(join, common);
  auto* revert = app.add_subcommand("revert", "undo a committed run (conflict-safe)");
  revert->add_option("RUN_ID", run_id)->required();
  revert->add_flag("--dry-run", dry_run, "show what reverting would do");
  revert->add_flag("--json", json, "print the outcome as JSON");
  add_common(revert, common);
  auto* runs = app.add_subcommand("runs", "list runs from the ledger");
  runs->add_flag("--json", json, "print JSON");
  add_common(runs, common);
  auto* show = app.add_subcommand("show", "one run: stats, changes, review items, audit");
  show->add_option("RUN_ID", run_id)->required();
  show->add_flag("--json", json, "print the JSON report");
  add_common(show, common);
  auto* status = app.add_subcommand("status", "progress of a run, from any machine");
  status->add_option("RUN_ID", run_id)->required();
  status->add_flag("--json", json, "print JSON");
  add_common(status, common);
  auto* pause =
      app.add_subcommand("pause", "ask every process of a run to stop after its current batch");
  pause->add_option("RUN_ID", run_id)->required();
  add_common(pause, common);
  auto* cancel =
      app.add_subcommand("cancel", "stop a run like pause, for good: it can no longer be resumed");
  cancel->add_option("RUN_ID", run_id)->required();
  add_common(cancel, common);
  auto* test =
      app.add_subcommand("test", "run recipe tests (*_test.lua) on a throwaway PostgreSQL");
  test->add_option("PATH", paths, "test files or folders")->required();
  test->add_flag("--verbose", verbose, "print what tests show()");
  auto* demo = app.add_subcommand("demo", "the guided demo on a throwaway PostgreSQL");
  auto* create = app.add_subcommand("new", "write a skeleton: `host new recipe NAME --table T`");
  auto* new_recipe = create->add_subcommand(
      "recipe", "a recipe and its *_test.lua for a table, from the live catalog");
  create->require_subcommand(1);
  create->fallthrough();
  new_recipe->fallthrough();
  host::ScaffoldOptions scaffold;
  bool force = false;
  new_recipe->add_option("NAME", scaffold.name, "recipe name ([a-z0-9._-]+), also the file name")
      ->required();
  new_recipe->add_option("--table", scaffold.table, "the source table (schema-qualified allowed)")
      ->required();
  new_recipe->add_option("--dir", scaffold.folder, "where to write the files (default: .)");
  new_recipe->add_flag("--force", force, "overwrite existing files");
  add_common(new_recipe, common);

  if (argc > 1 && argv[1][0] != '-') {
    std::string names;
    bool known = false;
    for (const auto* command : app.get_subcommands([](CLI::App*) { return true; })) {
      known = known || command->get_name() == argv[1];
      names += (names.empty() ? "" : ", ") + command->get_name();
    }
    if (!known)
      return fail(ExitCode::usage_error, "usage error: ",
                  "unknown command '" + std::string(argv[1]) + "' (commands: " + names + ")");
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    if (host::log_format() == host::LogFormat::json)
      return fail(ExitCode::usage_error, "usage error: ", e.what());
    std::cerr << "host: usage error: " << e.what() << "\n"
              << "Run 'host --help' for usage.\n";
    return static_cast<int>(ExitCode::usage_error);
  }

  try {
    ExitCode code = ExitCode::ok;
    if (*run)
      code = host::command_run(to_options(run_args, common));
    else if (*check && offline)
      code = host::command_check_offline(check_args.recipes, check_args.libs,
                                         key_values(check_args.vars, "--var"),
                                         to_options(check_args, common).limits);
    else if (*check)
      code = host::command_check(check_args.recipes, to_options(check_args, common));
    else if (*verify)
      code = host::command_verify(to_options(verify_args, common));
    else if (*resume) {
      take_up.report_paths = reports;
      take_up.quiet = quiet;
      code = host::command_resume(run_id, common.db, common.ledger_schema, take_up);
    } else if (*join)
      code = host::command_join(run_id, common.db, common.ledger_schema, take_up);
    else if (*revert)
      code = host::command_revert(run_id, dry_run, common.db, common.ledger_schema, json);
    else if (*runs)
      code = host::command_runs(common.db, common.ledger_schema, json);
    else if (*show)
      code = host::command_show(run_id, common.db, common.ledger_schema, json);
    else if (*status)
      code = host::command_status(run_id, common.db, common.ledger_schema, json);
    else if (*pause)
      code = host::command_stop(run_id, host::StopRequest::pause, common.db, common.ledger_schema);
    else if (*cancel)
      code = host::command_stop(run_id, host::StopRequest::cancel, common.db, common.ledger_schema);
    else if (*test)
      code = host::command_test(paths, verbose);
    else if (*demo)
      code = host::command_demo();
    else if (*new_recipe) {
      scaffold.db = common.db;
      scaffold.overwrite = force ? host::Overwrite::yes : host::Overwrite::no;
      code = host::command_new_recipe(scaffold);
    }
    if (host::log_format() == host::LogFormat::json)
      spdlog::info("finished with exit code {}", static_cast<int>(code));
    return static_cast<int>(code);
  } catch (const host::UsageError& e) {
    return fail(ExitCode::usage_error, "usage error: ", e.what());
  } catch (const host::DatabaseUnreachable& e) {
    return fail(ExitCode::database_unreachable, "database unreachable: ", e.what());
  } catch (const host::RecipeError& e) {
    return fail(ExitCode::runtime_error, "error: ", e.what());
  } catch (const host::DatabaseError& e) {
    return fail(ExitCode::runtime_error, "database error: ", e.what());
  } catch (const std::exception& e) {
    return fail(ExitCode::runtime_error, "error: ", e.what());
  }
}
