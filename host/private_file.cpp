#include "host/private_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace host {

PrivateFile::PrivateFile(const std::string& path, Mode mode) {
  int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (mode == Mode::append ? O_APPEND : O_TRUNC);
  // The mode is given to open(): a chmod afterwards would leave a window in which
  // the file is readable by others.
  m_fd = ::open(path.c_str(), flags, S_IRUSR | S_IWUSR);
  if (m_fd < 0) m_error = std::strerror(errno);
}

PrivateFile::~PrivateFile() { close(); }

bool PrivateFile::write(const std::string& text) {
  if (!ok()) return false;
  const char* data = text.data();
  std::size_t left = text.size();
  while (left > 0) {
    ssize_t written = ::write(m_fd, data, left);
    if (written < 0) {
      if (errno == EINTR) continue;
      m_error = std::strerror(errno);
      return false;
    }
    data += written;
    left -= static_cast<std::size_t>(written);
  }
  return true;
}

bool PrivateFile::close() {
  if (m_fd < 0) return m_error.empty();
  int fd = m_fd;
  m_fd = -1;
  if (::close(fd) != 0 && m_error.empty()) m_error = std::strerror(errno);
  return m_error.empty();
}

}  // namespace host
