#pragma once
// Running another program and collecting what it printed.
#include <optional>
#include <string>
#include <vector>

namespace host {

struct ProcessResult {
  int exit_code = -1;  // 128 + signal when killed by a signal
  std::string output;  // stdout and stderr, interleaved
};

// Runs `argv` (argv[0] searched in PATH), optionally as the system user `run_as`
// (requires root), with extra environment entries "K=V". Never throws for a
// failing program; throws std::runtime_error when it cannot be started.
ProcessResult run_process(const std::vector<std::string>& argv,
                          const std::optional<std::string>& run_as = std::nullopt,
                          const std::vector<std::string>& environment = {});

// The path of the running executable.
std::string current_executable();

}  // namespace host
