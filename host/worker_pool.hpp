#pragma once
// The workers of one process (--workers N): N threads, each a BatchWorker with its
// own connection and Lua state, all on the same run. The calling thread waits and
// keeps the progress line; the first failure stops the others after their batch.
#include <exception>
#include <functional>

#include "host/batch_worker.hpp"

namespace host {

// Runs `count` workers to the end; `tick` is called on the calling thread about
// five times a second while they work. Returns the first worker's failure, if any.
std::exception_ptr run_workers(WorkerShared& shared, int count, const std::function<void()>& tick);

}  // namespace host
