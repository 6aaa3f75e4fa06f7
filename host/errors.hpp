#pragma once
// The few exception types of the host. Each maps to one documented exit code
// (RECIPE_API.md section 8); main() catches them once and prints one line.
#include <stdexcept>
#include <string>

namespace host {

enum class ExitCode : int {
  ok = 0,
  runtime_error = 1,
  usage_error = 2,
  verify_failed = 3,
  database_unreachable = 4,
  revert_conflicts = 5,
  stopped = 6,  // paused or cancelled (section 10); resumable unless cancelled
};

// A broken recipe or a failed row: Lua error, bad value, unknown column, write
// outside `writes`. The message already names file, line, key and column.
class RecipeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Bad command line or arguments that make no sense together.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The server cannot be reached or the connection was lost mid-run.
class DatabaseUnreachable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The server refused a statement. `sqlstate` is PostgreSQL's error class code.
class DatabaseError : public std::runtime_error {
 public:
  DatabaseError(const std::string& message, std::string sqlstate)
      : std::runtime_error(message), m_sqlstate(std::move(sqlstate)) {}
  const std::string& sqlstate() const { return m_sqlstate; }
  // Class 22 (data exception) and 23 (integrity violation): the value, not the program, is wrong.
  bool is_bad_value() const {
    return m_sqlstate.rfind("22", 0) == 0 || m_sqlstate.rfind("23", 0) == 0;
  }

 private:
  std::string m_sqlstate;
};

}  // namespace host
