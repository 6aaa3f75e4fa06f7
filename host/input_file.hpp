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
  // Reads `contents` as if it were the file `path`: the same format rule and the
  // same records and messages, without a file (tests, fuzz targets).
  InputFile(const std::string& path, std::string contents);
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
  void start();
  // Up to `size` bytes of the input into `buffer`; 0 at the end.
  std::size_t read(char* buffer, std::size_t size);
  // The next byte of the input, or EOF.
  int read_byte();
  bool fill_csv();
  bool fill_jsonl();

  std::string m_path;
  bool m_json_lines = false;
  std::FILE* m_file = nullptr;  // null when reading m_contents
  std::string m_contents;
  std::size_t m_contents_at = 0;
  std::unique_ptr<CsvState> m_csv;
  std::deque<InputRecord> m_ready;
  long long m_records_read = 0;
  long long m_line = 0;
  bool m_eof = false;
};

// True when `text` is well-formed UTF-8.
bool is_valid_utf8(const std::string& text);

}  // namespace host
