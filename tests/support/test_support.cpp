#include "tests/support/test_support.hpp"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>

#include "host/temp_cluster.hpp"

namespace host::testing {

namespace {

TempCluster& cluster() {
  static std::unique_ptr<TempCluster> instance = std::make_unique<TempCluster>();
  return *instance;
}

struct Scratch {
  std::string folder;
  Scratch() {
    char pattern[] = "/tmp/host-tests-XXXXXX";
    folder = mkdtemp(pattern);
  }
  ~Scratch() {
    std::error_code ignored;
    std::filesystem::remove_all(folder, ignored);
  }
};

}  // namespace

std::string fresh_database() {
  static std::atomic<int> counter{0};
  return cluster().create_database("t" + std::to_string(++counter));
}

namespace {

// Client settings that change how values are written as text. Under
// HOST_TEST_SETTINGS_MATRIX each host invocation gets the next of these, so a
// run and its revert or resume always differ (the probe's class of bug).
const char* const k_client_settings[] = {
    "-c DateStyle=SQL,DMY -c TimeZone=Asia/Kolkata -c IntervalStyle=sql_standard "
    "-c search_path=public,pg_catalog -c extra_float_digits=-3 -c bytea_output=escape",
    "-c DateStyle=SQL,MDY -c TimeZone=America/New_York -c IntervalStyle=iso_8601 "
    "-c search_path=pg_catalog,public -c extra_float_digits=0",
    "-c DateStyle=German -c TimeZone=Pacific/Chatham -c IntervalStyle=postgres_verbose "
    "-c search_path=\"$user\",public",
};

std::vector<std::string> client_environment() {
  const char* matrix = std::getenv("HOST_TEST_SETTINGS_MATRIX");
  if (!matrix || !*matrix) return {};
  static std::atomic<unsigned> next{0};
  constexpr unsigned count = sizeof k_client_settings / sizeof k_client_settings[0];
  return {std::string("PGOPTIONS=") + k_client_settings[next++ % count]};
}

}  // namespace

ProcessResult run_host(const std::vector<std::string>& args,
                       const std::vector<std::string>& environment) {
  std::vector<std::string> argv = {HOST_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  auto entries = client_environment();
  entries.insert(entries.end(), environment.begin(), environment.end());
  return run_process(argv, std::nullopt, entries);
}

std::string scratch_folder() {
  static Scratch scratch;
  return scratch.folder;
}

std::string write_file(const std::string& name, const std::string& content) {
  std::string path = scratch_folder() + "/" + name;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file << content;
  return path;
}

std::vector<std::string> rows_as_text(Database& database, const std::string& sql) {
  std::vector<std::string> rows;
  for (const auto& row : database.exec(sql)) {
    std::string text;
    for (int i = 0; i < static_cast<int>(row.size()); ++i) {
      if (i) text += "|";
      text += row[i].is_null() ? "NULL" : row[i].c_str();
    }
    rows.push_back(text);
  }
  return rows;
}

std::string dump_database(const std::string& conninfo) {
  Database database(conninfo);
  std::string dump;
  auto tables = database.exec(
      "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_class c "
      "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname NOT IN "
      "('pg_catalog', 'information_schema') ORDER BY 1");
  for (const auto& table : tables) {
    std::string name = table[0].c_str();
    dump += "== " + name + "\n";
    for (const auto& line : rows_as_text(database, "SELECT t::text FROM " + name + " t ORDER BY 1"))
      dump += line + "\n";
  }
  return dump;
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream file(path);
  return nlohmann::json::parse(file);
}

}  // namespace host::testing
