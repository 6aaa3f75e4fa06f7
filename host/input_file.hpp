#pragma once
// Records from a named --input file: CSV (RFC 4180, UTF-8, optional BOM) or
// JSON Lines, streamed a batch at a time. Every error names file, line and column.
#include <cstdio>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace host {

struct InputRecord {
  long long line = 0;      // physical line where the record starts
  nlohmann::json fields;   // header name -> text (CSV, empty cells absent) or JSON value
};

class InputFile {
 public:
  // Opens `path`; the format follows the extension (.jsonl/.ndjson/.json: JSON Lines,
  // anything else: CSV). A RecipeError when it cannot be read.
  explicit InputFile(const std::string& path);
  ~InputFile();
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  // Up to `count` records; fewer only at the end of the file.
  std::vector<InputRecord> next(std::size_t count);
  // Skips records already processed (resume).
  void skip(long long records);
  long long records_read() const { return m_records_read; }
  const std::string& path() const { return m_path; }

  struct CsvState;

 private:
  bool fill_csv();
  bool fill_jsonl();

  std::string m_path;
  bool m_json_lines = false;
  std::FILE* m_file = nullptr;
  std::unique_ptr<CsvState> m_csv;
  std::deque<InputRecord> m_ready;
  long long m_records_read = 0;
  long long m_line = 0;
  bool m_eof = false;
};

// True when `text` is well-formed UTF-8.
bool is_valid_utf8(const std::string& text);

}  // namespace host
