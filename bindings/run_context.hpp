#pragma once
// What the primitives of one run can reach: the database, the catalog, the
// ledger, the write queue, the counters, and the state of the current batch.
#include <exception>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <unordered_set>
#include <vector>

#include "host/query_guard.hpp"
#include "host/read_batcher.hpp"
#include "host/run_types.hpp"
#include "host/write_queue.hpp"

struct lua_State;

namespace host {

class Catalog;
struct Column;
class Database;
class Ledger;

// A read() or map_id() that a row's coroutine is waiting on.
struct PendingCall {
  lua_State* thread = nullptr;
  enum class Kind { read, map_id } kind = Kind::read;
  ReadRequest read;
  std::string entity;
  std::string legacy_id;
};

struct RunContext {
  Database* database = nullptr;
  Catalog* catalog = nullptr;
  Ledger* ledger = nullptr;
  // Checks the SQL a recipe writes and the relations it names (host/query_guard.hpp).
  QueryGuard query_guard;
  std::string run_id;
  std::string recipe_name;
  Confidence min_confidence = Confidence::high;
  std::map<std::string, std::string> vars;
  // Qualified table name -> writable columns; "*" allows every column.
  std::map<std::string, std::set<std::string>> allowed_writes;
  // Columns check_writable has let through.
  struct WritableColumn {
    const TableInfo* table;
    std::string name;
    const Column* column;
  };
  std::vector<WritableColumn> writable_seen;
  // False while the recipe file itself runs, and in `host check`: nothing may be queued.
  bool writes_enabled = false;

  WriteQueue writes;
  RunStats stats;
  // What each orphans{} call found, for the report.
  nlohmann::json orphan_findings = nlohmann::json::array();
  // Per (table, column): fields left alone because they held a value.
  std::map<std::pair<std::string, std::string>, long long> protected_by_column;
  std::vector<ReviewItem> reviews;  // queued for the ledger with this batch
  std::vector<AuditEvent> audit;
  std::vector<VerifyCheck> checks;
  std::map<std::string, std::string> id_cache;  // entity '\x1f' legacy -> uuid

  // Key columns a recipe named (opts.key), kept for the run: rows and writes
  // point at them instead of each holding a copy.
  const std::vector<std::string>& lasting_key(const std::vector<std::string>& columns) {
    return *named_keys.insert(columns).first;
  }

  // The current batch.
  std::vector<RowOrigin> rows;
  std::unordered_set<lua_State*> row_threads;
  std::vector<PendingCall> pending;
  std::size_t current_row = 0;
  // Per row of a scanned batch, the index in `rows` of the row itself.
  std::vector<std::size_t> scanned_slots;
  std::shared_ptr<const RowIdentity> current_identity = outside_rows();

  // The identity while no row is processed (load, verify).
  static std::shared_ptr<const RowIdentity> outside_rows() {
    static const auto outside = std::make_shared<const RowIdentity>(
        RowIdentity{nullptr, "the recipe", "", "", nullptr, nullptr, {}});
    return outside;
  }

  // A failure that must end the run whatever the recipe does with the Lua error
  // (a lost connection, for example); rethrown by the runner.
  std::exception_ptr fatal;

  std::function<void(bool warning, const std::string& message)> log;

 private:
  std::set<std::vector<std::string>> named_keys;  // nodes never move
};

}  // namespace host
