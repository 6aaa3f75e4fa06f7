#pragma once
// Files the host writes that hold data values (reports, audit trails): created
// readable by their owner only, from the first byte on.
#include <string>

namespace host {

// A file open for writing. A file that does not exist yet is created with mode 0600
// (before the umask, which can only narrow it); an existing file keeps its mode, so
// a mode its owner chose is never widened. Closed by the destructor.
class PrivateFile {
 public:
  enum class Mode { truncate, append };

  // Opens (or creates) `path`; ok() says whether that worked, error() why not.
  PrivateFile(const std::string& path, Mode mode);
  ~PrivateFile();
  PrivateFile(const PrivateFile&) = delete;
  PrivateFile& operator=(const PrivateFile&) = delete;

  bool ok() const { return m_fd >= 0 && m_error.empty(); }
  // What failed (strerror text), or "" while ok().
  const std::string& error() const { return m_error; }

  // Writes all of `text`; false (and error() set) when that fails.
  bool write(const std::string& text);
  // Closes the file, reporting a failure of the last write-back; false and error() set then.
  bool close();

 private:
  int m_fd = -1;
  std::string m_error;
};

}  // namespace host
