#include "host/worker_pool.hpp"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace host {

std::exception_ptr run_workers(WorkerShared& shared, int count, const std::function<void()>& tick) {
  std::mutex mutex;
  std::condition_variable finished;
  int running = count;
  std::exception_ptr first_failure;
  std::vector<std::thread> threads;
  for (int n = 1; n <= count; ++n) {
    threads.emplace_back([&, n] {
      std::exception_ptr failure;
      try {
        BatchWorker worker(shared, n);
        worker.run();
      } catch (...) {
        failure = std::current_exception();
        shared.failed = true;
      }
      std::lock_guard<std::mutex> lock(mutex);
      if (failure && !first_failure) first_failure = failure;
      --running;
      finished.notify_all();
    });
  }
  {
    std::unique_lock<std::mutex> lock(mutex);
    while (running > 0) {
      finished.wait_for(lock, std::chrono::milliseconds(200));
      lock.unlock();
      if (tick) tick();
      lock.lock();
    }
  }
  for (auto& thread : threads) thread.join();
  return first_failure;
}

}  // namespace host
