#include "host/temp_cluster.hpp"

#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <utility>

#include "host/database.hpp"
#include "host/process.hpp"
#include "host/sql_text.hpp"

namespace host {

namespace {

std::optional<std::string> server_user() {
  if (geteuid() != 0) return std::nullopt;
  return std::string("postgres");  // initdb refuses to run as root
}

std::string read_log(const std::string& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

}  // namespace

std::string postgres_bin_folder() {
  if (const char* env = std::getenv("HOST_PG_BINDIR"); env && *env) return env;
  std::string best;
  int best_version = 0;
  std::error_code ignored;
  for (const auto& entry : std::filesystem::directory_iterator("/usr/lib/postgresql", ignored)) {
    int version = std::atoi(entry.path().filename().c_str());
    if (version > best_version && std::filesystem::exists(entry.path() / "bin" / "initdb")) {
      best_version = version;
      best = (entry.path() / "bin").string();
    }
  }
  if (best.empty())
    throw std::runtime_error("PostgreSQL server programs not found (install postgresql)");
  return best;
}

TempCluster::TempCluster(ClusterOptions options)
    : m_options(std::move(options)), m_bin(postgres_bin_folder()) {
  char pattern[] = "/tmp/host-pg-XXXXXX";
  if (!mkdtemp(pattern)) throw std::runtime_error("cannot create a temporary folder");
  m_folder = pattern;
  try {
    start_server();
  } catch (...) {
    remove();  // the destructor does not run for a constructor that throws
    throw;
  }
}

void TempCluster::start_server() {
  auto user = server_user();
  if (user) {
    passwd* pw = getpwnam(user->c_str());
    if (!pw) throw std::runtime_error("running as root needs the 'postgres' system user");
    if (chown(m_folder.c_str(), pw->pw_uid, pw->pw_gid) != 0)
      throw std::runtime_error("cannot hand " + m_folder + " to the postgres user");
  }
  std::string data = m_folder + "/data";
  auto init = run_process({m_bin + "/initdb", "-D", data, "-U", "host", "-A", "trust", "-E", "UTF8",
                           "--locale=C", "--no-sync"},
                          user);
  if (init.exit_code != 0) throw std::runtime_error("initdb failed:\n" + init.output);
  std::string options = "-k " + m_folder + " -c listen_addresses='' -c max_connections=50";
  if (m_options.durability == Durability::off)
    options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off";
  for (const auto& setting : m_options.settings) {
    if (setting.find_first_of(" '\\") != std::string::npos)
      throw std::runtime_error("a cluster setting may not hold spaces, quotes or backslashes: " +
                               setting);
    options += " -c " + setting;
  }
  auto start = run_process({m_bin + "/pg_ctl", "-D", data, "-o", options, "-l",
                            m_folder + "/server.log", "-w", "-t", "60", "start"},
                           user);
  if (start.exit_code != 0)
    throw std::runtime_error("the PostgreSQL server did not start:\n" + start.output +
                             read_log(m_folder + "/server.log"));
  m_started = true;
}

TempCluster::~TempCluster() { remove(); }

void TempCluster::remove() noexcept {
  try {
    if (m_started)
      run_process({m_bin + "/pg_ctl", "-D", m_folder + "/data", "-m", "immediate", "-w", "stop"},
                  server_user());
    m_started = false;
    std::error_code ignored;
    std::filesystem::remove_all(m_folder, ignored);
  } catch (...) {
    // Best effort: a leftover folder in /tmp is not worth a crash.
  }
}

std::string TempCluster::conninfo(const std::string& database) const {
  return "host=" + m_folder + " user=host dbname=" + database;
}

std::string TempCluster::create_database(const std::string& name) {
  Database admin(conninfo("postgres"));
  admin.exec("CREATE DATABASE " + quote_ident(name));
  return conninfo(name);
}

}  // namespace host
