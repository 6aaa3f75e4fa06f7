#pragma once
// A thread that runs the jobs posted to it, one at a time, in order. A worker
// writes its batches on one while its own thread runs `each` over the next batch
// (host/batch_worker.cpp). The thread lives as long as the worker: one started
// per batch is scheduled late on a busy machine, often only once the poster's
// time slice ends, and the overlap is lost.
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>

namespace host {

class WriterThread {
 public:
  WriterThread();
  ~WriterThread();
  WriterThread(const WriterThread&) = delete;
  WriterThread& operator=(const WriterThread&) = delete;

  // The future is ready when `job` has run; it holds what `job` threw.
  std::future<void> post(std::function<void()> job);

 private:
  void run();

  std::mutex m_mutex;
  std::condition_variable m_posted;
  std::deque<std::packaged_task<void()>> m_jobs;
  bool m_stopping = false;
  std::thread m_thread;
};

}  // namespace host
