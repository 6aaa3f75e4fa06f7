#include "host/stop_signal.hpp"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <mutex>
#include <thread>

namespace host {

namespace {

std::atomic<int> g_signals{0};
std::atomic<int> g_requested{static_cast<int>(StopKind::none)};
std::atomic<bool> g_watching{false};
std::mutex g_install_mutex;
std::function<void()> g_abandon;
std::thread g_watcher;

extern "C" void on_stop_signal(int) {
  // Only lock-free atomics here: the handler may interrupt anything.
  g_signals.fetch_add(1);
}

void watch() {
  while (g_watching.load()) {
    if (g_signals.load() >= 2) {
      if (g_abandon) g_abandon();
      _exit(6);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace

StopKind stop_kind_from(const std::string& request) {
  if (request == "cancel") return StopKind::cancel;
  if (request == "pause") return StopKind::pause;
  return StopKind::none;
}

const char* stop_status(StopKind kind) { return kind == StopKind::cancel ? "cancelled" : "paused"; }

void StopSignal::install(std::function<void()> abandon) {
  std::lock_guard<std::mutex> lock(g_install_mutex);
  g_abandon = std::move(abandon);
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  if (!g_watching.exchange(true)) g_watcher = std::thread(watch);
}

void StopSignal::uninstall() {
  std::lock_guard<std::mutex> lock(g_install_mutex);
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  if (g_watching.exchange(false) && g_watcher.joinable()) g_watcher.join();
  g_abandon = nullptr;
}

StopKind StopSignal::requested() {
  auto asked = static_cast<StopKind>(g_requested.load());
  if (asked == StopKind::none && g_signals.load() > 0) return StopKind::pause;
  return asked;
}

void StopSignal::request(StopKind kind) {
  int wanted = static_cast<int>(kind);
  int current = g_requested.load();
  while (current < wanted && !g_requested.compare_exchange_weak(current, wanted)) {
  }
}

bool StopSignal::by_signal() { return g_signals.load() > 0; }

void StopSignal::reset() {
  g_signals.store(0);
  g_requested.store(static_cast<int>(StopKind::none));
}

}  // namespace host
