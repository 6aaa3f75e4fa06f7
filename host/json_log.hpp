#pragma once
// `--log-format json`: log lines for log shippers, one JSON object per line
// ({"time", "level", "logger", "run_id", "message"}), instead of the human
// "level: message" lines.
#include <string>

namespace host {

enum class LogFormat { human, json };

// Sets up the default "host" logger on stderr in `format`. Called once, first thing.
void setup_logging(LogFormat format);

LogFormat log_format();

// The run the following log lines belong to (empty: none). In JSON mode it also
// logs a "run started" line, so that a shipper sees every run even when quiet.
void set_log_run_id(const std::string& run_id);

}  // namespace host
