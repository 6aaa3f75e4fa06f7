#pragma once
// Writes queued by the primitives of one batch, sent as a few set-based
// statements that carry their own guards ("still empty", "still equals") and
// write their ledger rows in the same statement.
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "host/filter.hpp"
#include "host/run_types.hpp"

namespace host {

class Database;
class Ledger;

enum class WriteKind { patch_if_empty, patch_if, insert_if_absent, fill_from };

inline const std::string k_no_reason;

struct QueuedWrite {
  WriteKind kind = WriteKind::patch_if_empty;
  const TableInfo* table = nullptr;
  // Updates: the row's key. Inserts: the columns deciding "already there".
  // Lives as long as the run (see RowOrigin).
  const std::vector<std::string>* key_columns = nullptr;
  Params key;
  // Updates.
  std::string column;
  Param value;
  Param expected;  // patch_if: nullopt means "expected empty"
  // Inserts and fill_from: columns sorted by name, and their values.
  std::vector<std::string> columns;
  Params values;

  Confidence confidence = Confidence::high;
  // Kept once by the queue (WriteQueue::reason): a batch's writes share a few.
  const std::string* reason = &k_no_reason;
  EmptyRule empty = EmptyRule::blank;

  std::size_t row_index = 0;  // the source row whose `each` queued it
  // The call site, for errors found at flush time: the chunk name ("@recipe.lua",
  // owned by the recipe's functions, which live as long as the run) and the line.
  const char* call_source = nullptr;
  int call_line = 0;
  std::shared_ptr<const RowIdentity> row;
  // A patch of the scanned row whose `each` queued it (not of a row read or named).
  bool own_row = false;

  // "recipe.lua:12:", or "" when unknown.
  std::string call_site() const;
};

struct FlushResult {
  long long patched = 0;
  long long protected_fields = 0;
  long long inserted = 0;
  // Per (table, column): the report breaks protection down by field.
  std::map<std::pair<std::string, std::string>, long long> protected_by_column;
};

// Whether a flush may wrap its writes in a savepoint. A released savepoint that
// wrote keeps its subtransaction id until the transaction ends, and past 64 of
// them in one backend every session of the server slows down (subxid overflow):
// an atomic run uses savepoints for its first batches only.
enum class FlushIsolation { savepoint, none };

class WriteQueue {
 public:
  // Not copied: the writes point at the queue's reasons.
  WriteQueue() = default;
  WriteQueue(const WriteQueue&) = delete;
  WriteQueue& operator=(const WriteQueue&) = delete;
  WriteQueue(WriteQueue&&) = default;
  WriteQueue& operator=(WriteQueue&&) = default;
  void push(QueuedWrite&& write) {
    m_only_own_row_patches = m_only_own_row_patches && write.own_row &&
                             (write.kind == WriteKind::patch_if_empty ||
                              write.kind == WriteKind::patch_if);
    m_writes.push_back(std::move(write));
  }
  // Room for a batch's writes, which are many and alike from batch to batch.
  void reserve(std::size_t writes) { m_writes.reserve(writes); }
  std::size_t size() const { return m_writes.size(); }
  // Forgets what the given source row queued (its `each` failed, on_error = "skip").
  void drop_row(std::size_t row_index);
  bool empty() const { return m_writes.empty(); }
  // True when every write patches the scanned row that queued it: writing them
  // then changes no row another batch reads.
  bool only_own_row_patches() const { return m_only_own_row_patches; }
  // The queue's copy of a write's reason, kept while the queue holds writes.
  const std::string& reason(std::string_view text) {
    auto it = m_reasons.find(text);
    if (it == m_reasons.end()) it = m_reasons.emplace(text).first;
    return *it;
  }
  void clear();

  // Sends everything queued, with ledger rows, inside the caller's transaction,
  // and empties the queue. A value the database refuses becomes a RecipeError
  // naming the call site, row key, column and value; with `failed` given
  // (on_error = "skip") that row's writes are dropped and listed there instead.
  // Without a savepoint a refused value ends the transaction: it is rolled back
  // and the RecipeError still names the write.
  FlushResult flush(Database& database, Ledger& ledger, const std::string& run_id, int batch,
                    long long& sequence, std::vector<FailedRow>* failed, FlushIsolation isolation);

 private:
  // Keeps the writes a flush sent until the queue is cleared or destroyed: they
  // are freed by the thread that queued them, not by the one that sent them.
  void retire_sent();

  std::vector<QueuedWrite> m_writes;
  std::vector<QueuedWrite> m_sent;
  std::set<std::string, std::less<>> m_reasons;  // nodes stay put when the queue is swapped
  bool m_only_own_row_patches = true;  // of every write pushed since the queue was empty
};

}  // namespace host
