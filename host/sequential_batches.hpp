#pragma once
// The single-connection batch loop: atomic runs (one transaction), dry runs (one
// transaction, rolled back) and runs over an --input file (batch mode: one
// transaction per batch with the checkpoint in the run's row, retried when the
// database rolled it back). A batch run over a table is worked in chunks instead
// (host/batch_worker.hpp).
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>

#include "host/run_timing.hpp"

namespace host {

class InputFile;
class RecipeSession;
class Throttle;
struct RunOptions;

struct SequentialRun {
  RecipeSession* session = nullptr;
  const RunOptions* options = nullptr;
  InputFile* input = nullptr;       // the recipe's input, or nullptr for a table
  Throttle* throttle = nullptr;     // nullptr without --max-rate / pause_when
  bool commit_per_batch = false;
  long long batch_size = 1000;
  long long* sequence = nullptr;    // the run's next ledger sequence number
  RunTiming* timing = nullptr;
  std::function<void()> progress;   // after every batch
};

// Works the run from `checkpoint` until its source is done or a stop is asked
// for (then an open run-wide transaction is rolled back). Errors leave as the
// exceptions of host/errors.hpp; committed batches stay.
void work_sequentially(const SequentialRun& run, nlohmann::json checkpoint);

}  // namespace host
