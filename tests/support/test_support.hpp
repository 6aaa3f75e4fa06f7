#pragma once
// Shared by the Catch2 tests: one throwaway PostgreSQL cluster per test binary,
// a fresh database per test, and a way to drive the built `host` binary.
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "host/database.hpp"
#include "host/process.hpp"

namespace host::testing {

// A new, empty database on the shared cluster (started on first use); its conninfo.
std::string fresh_database();

// Runs the built host binary with `args` (no shell) and extra environment entries
// ("K=V"); stdout+stderr and exit code.
ProcessResult run_host(const std::vector<std::string>& args,
                       const std::vector<std::string>& environment = {});

// A temporary folder removed at process exit; `write_file` puts files in it.
std::string scratch_folder();
std::string write_file(const std::string& name, const std::string& content);

// All rows of `sql` as text, one string per row ("a|b|NULL"), for exact comparisons.
std::vector<std::string> rows_as_text(Database& database, const std::string& sql);

// Every user table and the ledger dumped as text, to prove a dry run changed nothing.
std::string dump_database(const std::string& conninfo);

// Parses a JSON file written by --report.
nlohmann::json read_json(const std::string& path);

}  // namespace host::testing
