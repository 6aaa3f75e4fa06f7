#pragma once
// One recipe, loaded and checked, on one connection: the sandboxed Lua state, the
// context its primitives reach, and the machinery that runs `each` over a batch of
// rows with their reads answered set-at-a-time. A Lua state and a connection
// serve one thread, so every worker of a run has a session of its own, and so
// does the run's lifecycle (for loading, verify and the report).
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "bindings/module_loader.hpp"
#include "bindings/recipe.hpp"
#include "bindings/run_context.hpp"
#include "bindings/sandbox.hpp"
#include "host/read_batcher.hpp"
#include "host/table_scan.hpp"
#include "host/runner.hpp"

struct lua_State;

namespace host {

class AuditFile;
class Catalog;
class Database;
class Ledger;

// Runs the work of one source row in its own coroutine, so that its reads can wait
// for the batch's set-at-a-time answer.
struct RowTask {
  lua_State* thread = nullptr;
  std::size_t index = 0;
  std::shared_ptr<const RowIdentity> identity = RunContext::outside_rows();
};

using RowPusher = std::function<void(lua_State*, std::size_t, RowTask&)>;

class RecipeSession {
 public:
  // `source` is the recipe file's text, read once by the run, so that every
  // session of a run runs the same recipe even if the file changes meanwhile.
  RecipeSession(const RunOptions& options, std::string conninfo, std::string source);
  ~RecipeSession();
  RecipeSession(const RecipeSession&) = delete;
  RecipeSession& operator=(const RecipeSession&) = delete;

  // Connects (with the run's timeouts and search_path) and loads the recipe.
  void load();
  // Checks the source table, key, columns, filters and writes against the catalog;
  // returns the problems found (empty when sound).
  std::vector<std::string> validate();

  // Runs `each` for `count` rows pushed by `push_row`, answering their reads.
  void process_rows(std::size_t count, const RowPusher& push_row);
  // The next batch of `scan`; an error the recipe's `where` SQL caused is a RecipeError.
  pqxx::result scan_next(TableScan& scan);
  // The same for the first `count` rows of a scan of the source table.
  void process_scanned(const pqxx::result& rows, std::size_t count);
  // Sends what the batch queued, with its ledger rows, review items, audit events
  // and failed rows, numbered from `sequence`; adds to the counters.
  void flush_batch(int batch, long long& sequence, FlushIsolation isolation);
  // The counters a batch changes, taken before it: a batch the database rolls
  // back is undone in memory too.
  struct Counters {
    RunStats stats;
    std::map<std::pair<std::string, std::string>, long long> protected_by_column;
    Counters& operator+=(const Counters& other);
    // Adds these counts to `stats` and `by_column`.
    void add_to(RunStats& stats,
                std::map<std::pair<std::string, std::string>, long long>& by_column) const;
  };
  // flush_batch in three steps, so that a batch can be written on another thread
  // while `each` runs over the next one: take_output() moves what the batch left
  // to write out of the session; write_output() touches only the connection, the
  // ledger and the audit file's spool, and returns what it adds to the counters;
  // add_written() adds that.
  struct BatchOutput {
    WriteQueue writes;
    std::vector<ReviewItem> reviews;
    std::vector<AuditEvent> audit;
    std::vector<FailedRow> failed_rows;
  };
  BatchOutput take_output();
  Counters write_output(BatchOutput& output, int batch, long long& sequence,
                        FlushIsolation isolation);
  // The same through another connection and its ledger (a batch written while the
  // one before is still being written on the session's): no audit file.
  Counters write_output(BatchOutput& output, int batch, long long& sequence,
                        FlushIsolation isolation, Database& database, Ledger& ledger);
  void add_written(const Counters& written);
  void run_verify();
  // Moves the review items and audit events gathered since the last call to the
  // ledger (and the audit file's spool), numbering them from `sequence`.
  void record_events(long long& sequence);
  Counters counters() const { return {m_context.stats, m_context.protected_by_column}; }
  // After a batch failed: rolls its transaction back (nothing to do when the
  // connection is gone), forgets what its rows left behind, puts `before` back.
  void roll_back_batch(const Counters& before);

  std::string restore_source_paths(const std::string& message) const;
  // The schemas the recipe's names resolved in, for resume and join.
  std::string resolved_search_path();
  nlohmann::json recorded_writes() const;
  nlohmann::json modules_json() const;

  Database& database() { return *m_database; }
  // The session's second connection (reads aside, scans ahead), opened when first
  // needed; forget_reader() drops it after a failure, to be opened afresh.
  Database& reader();
  void forget_reader() { m_reader.reset(); }
  Catalog& catalog() { return *m_catalog; }
  Ledger& ledger() { return *m_ledger; }
  RunContext& context() { return m_context; }
  const Recipe& recipe() const { return m_recipe; }
  const LoadedModules& modules() const { return m_modules; }
  std::vector<FailedRow>& failed_rows() { return m_failed_rows; }
  AuditFile* audit_file() { return m_audit_file.get(); }
  void open_audit_file(const std::string& run_id);

  // Set by validate(): the source table (nullptr for input recipes), scan key and columns.
  const TableInfo* source() const { return m_source; }
  const std::vector<std::string>& key() const { return m_key; }
  const std::vector<std::string>& columns() const { return m_columns; }

 private:
  void refuse_protected_target(const TableInfo& table) const;
  void resume(RowTask& task, int arguments);
  void answer_pending(std::vector<RowTask>& tasks);
  // To `ledger` and the audit file's spool, numbered from `sequence`.
  void record_events(long long& sequence, const std::vector<ReviewItem>& reviews,
                     const std::vector<AuditEvent>& audit, Ledger& ledger);
  // Whether `request` may be answered on a connection of its own while the batch
  // before is being written on the session's (Database::lend): a plain table the
  // run neither scans nor writes, not in the source's partition or inheritance tree,
  // without row security (a policy could read the tables being written), with no
  // SQL where.
  bool readable_aside(const ReadRequest& request);
  std::vector<ReadAnswer> answer_reads_aside(const std::vector<const ReadRequest*>& reads);

  const RunOptions& m_options;
  std::string m_conninfo;
  std::string m_source_text;
  std::unique_ptr<Database> m_database;
  std::unique_ptr<Catalog> m_catalog;
  std::unique_ptr<Ledger> m_ledger;
  std::unique_ptr<Sandbox> m_sandbox;
  LoadedModules m_modules;
  std::unique_ptr<AuditFile> m_audit_file;
  RunContext m_context;
  Recipe m_recipe;
  const TableInfo* m_source = nullptr;
  std::vector<std::string> m_key;
  std::vector<std::string> m_columns;
  std::vector<FailedRow> m_failed_rows;
  std::unique_ptr<Database> m_reader;  // reader()
  std::map<std::string, bool> m_aside_tables;  // table oid -> readable_aside()
};

}  // namespace host
