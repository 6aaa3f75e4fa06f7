#include "host/writer_thread.hpp"

namespace host {

WriterThread::WriterThread() : m_thread([this] { run(); }) {}

WriterThread::~WriterThread() {
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_stopping = true;
  }
  m_posted.notify_one();
  m_thread.join();
}

std::future<void> WriterThread::post(std::function<void()> job) {
  std::packaged_task<void()> task(std::move(job));
  std::future<void> done = task.get_future();
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_jobs.push_back(std::move(task));
  }
  m_posted.notify_one();
  return done;
}

void WriterThread::run() {
  for (;;) {
    std::packaged_task<void()> task;
    {
      std::unique_lock<std::mutex> lock(m_mutex);
      m_posted.wait(lock, [&] { return m_stopping || !m_jobs.empty(); });
      if (m_jobs.empty()) return;  // stopping, and nothing left to run
      task = std::move(m_jobs.front());
      m_jobs.pop_front();
    }
    task();
  }
}

}  // namespace host
