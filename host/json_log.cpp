#include "host/json_log.hpp"

#include <spdlog/formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <ctime>
#include <mutex>
#include <nlohmann/json.hpp>

namespace host {

namespace {

LogFormat g_format = LogFormat::human;
std::mutex g_run_id_mutex;  // watchdog and worker threads log too
std::string g_run_id;

std::string run_id() {
  std::lock_guard<std::mutex> lock(g_run_id_mutex);
  return g_run_id;
}

// ISO-8601 UTC with milliseconds: "2024-03-18T09:15:02.123Z".
std::string iso_time(spdlog::log_clock::time_point when) {
  auto seconds = std::chrono::time_point_cast<std::chrono::seconds>(when);
  auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(when - seconds).count();
  std::time_t t = spdlog::log_clock::to_time_t(seconds);
  std::tm utc{};
  gmtime_r(&t, &utc);
  char text[40];
  std::size_t n = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &utc);
  std::snprintf(text + n, sizeof text - n, ".%03dZ", static_cast<int>(millis));
  return text;
}

class JsonFormatter : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    std::string id = run_id();
    nlohmann::json line = {
        {"time", iso_time(msg.time)},
        {"level", std::string(spdlog::level::to_string_view(msg.level).data(),
                              spdlog::level::to_string_view(msg.level).size())},
        {"logger", std::string(msg.logger_name.data(), msg.logger_name.size())},
        {"run_id", id.empty() ? nlohmann::json() : nlohmann::json(id)},
        {"message", std::string(msg.payload.data(), msg.payload.size())},
    };
    // Invalid UTF-8 in a recipe's message must not make the line unwritable.
    std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    text += '\n';
    dest.append(text.data(), text.data() + text.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

}  // namespace

void setup_logging(LogFormat format) {
  g_format = format;
  auto logger = spdlog::get("host");
  if (!logger) logger = spdlog::stderr_color_mt("host");
  if (format == LogFormat::json)
    logger->set_formatter(std::make_unique<JsonFormatter>());
  else
    logger->set_pattern("%^%l%$: %v");
  spdlog::set_default_logger(logger);
}

LogFormat log_format() { return g_format; }

void set_log_run_id(const std::string& id) {
  {
    std::lock_guard<std::mutex> lock(g_run_id_mutex);
    g_run_id = id;
  }
  if (g_format == LogFormat::json && !id.empty()) spdlog::info("run started");
}

}  // namespace host
