#include "host/audit_file.hpp"

#include <spdlog/spdlog.h>

#include <mutex>

#include "host/errors.hpp"
#include "host/private_file.hpp"

namespace host {

AuditFile::AuditFile(std::string path, std::string run_id, std::string recipe, std::string mode)
    : m_path(std::move(path)),
      m_run_id(std::move(run_id)),
      m_recipe(std::move(recipe)),
      m_mode(std::move(mode)) {
  if (m_path.empty()) return;
  if (!PrivateFile(m_path, PrivateFile::Mode::append).close())
    throw UsageError("cannot append to the audit file '" + m_path + "'");
  m_spool = std::tmpfile();  // removed by the system when closed, even after a crash
  if (!m_spool) throw UsageError("cannot create a spool file for the audit file '" + m_path + "'");
}

AuditFile::~AuditFile() {
  if (m_spool) std::fclose(m_spool);
}

void AuditFile::stage(const std::vector<AuditEvent>& events) {
  if (!m_spool) return;
  for (const auto& event : events) {
    nlohmann::json line = {{"event", event.event}, {"data", event.data}, {"key", event.row_key},
                           {"run_id", m_run_id},   {"recipe", m_recipe}, {"mode", m_mode}};
    std::string text = line.dump() + '\n';
    std::fwrite(text.data(), 1, text.size(), m_spool);
  }
}

void AuditFile::publish() {
  if (!m_spool) return;
  // The workers of a run append to one file: a spool goes in whole, not interleaved.
  static std::mutex appending;
  std::lock_guard<std::mutex> lock(appending);
  std::fflush(m_spool);
  std::rewind(m_spool);
  PrivateFile file(m_path, PrivateFile::Mode::append);
  bool ok = file.ok();
  char buffer[1 << 15];
  for (std::size_t n; ok && (n = std::fread(buffer, 1, sizeof buffer, m_spool)) > 0;)
    ok = file.write(std::string(buffer, n));
  ok = file.close() && ok;
  if (!ok)
    spdlog::warn("could not append the audit events to '{}' (they are in the ledger)", m_path);
  discard();
}

void AuditFile::discard() {
  if (!m_spool) return;
  std::fclose(m_spool);
  m_spool = std::tmpfile();
}

}  // namespace host
