#pragma once
// The --audit-file: audit events appended as JSON Lines, but only once the
// transaction that recorded them has committed (or, in a dry run, once the run
// has been shown). Until then they wait in an anonymous spool file, so memory
// stays flat whatever the number of events.
#include <cstdio>
#include <string>
#include <vector>

#include "host/run_types.hpp"

namespace host {

class AuditFile {
 public:
  // `path` empty: every call does nothing. Otherwise the file must be appendable
  // (a UsageError says so when it is not).
  AuditFile(std::string path, std::string run_id, std::string recipe, std::string mode);
  ~AuditFile();
  AuditFile(const AuditFile&) = delete;
  AuditFile& operator=(const AuditFile&) = delete;

  // Spools events of the open transaction.
  void stage(const std::vector<AuditEvent>& events);
  // Appends what is spooled to the file (after a commit) and empties the spool.
  // A file that cannot be written gets a warning: the events are in the ledger.
  void publish();
  // Forgets what is spooled (the transaction rolled back).
  void discard();
  // Whether there is a file at all.
  bool active() const { return !m_path.empty(); }

 private:
  std::string m_path, m_run_id, m_recipe, m_mode;
  std::FILE* m_spool = nullptr;
};

}  // namespace host
