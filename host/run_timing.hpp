#pragma once
// The "timing" of a run's report (RECIPE_API.md section 10): its batches, their
// sizes, the tries rolled back and made again, and the time throttled.
#include <algorithm>
#include <optional>

namespace host {

struct RunTiming {
  long long batches = 0, retries = 0;
  double throttled_seconds = 0;
  std::optional<long long> batch_rows_min, batch_rows_max;
  long long workers = 0;  // distinct workers that committed a batch

  void add_batch(long long rows) {
    ++batches;
    batch_rows_min = std::min(batch_rows_min.value_or(rows), rows);
    batch_rows_max = std::max(batch_rows_max.value_or(rows), rows);
  }
};

}  // namespace host
