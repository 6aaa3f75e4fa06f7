#include "host/input_file.hpp"

#include <csv.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "host/errors.hpp"

namespace host {

bool is_valid_utf8(const std::string& text) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  std::size_t i = 0, n = text.size();
  while (i < n) {
    unsigned char c = bytes[i];
    int extra;
    unsigned int code_point;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      extra = 1;
      code_point = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2;
      code_point = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3;
      code_point = c & 0x07;
    } else {
      return false;
    }
    if (i + static_cast<std::size_t>(extra) >= n) return false;
    for (int k = 1; k <= extra; ++k) {
      if ((bytes[i + k] & 0xC0) != 0x80) return false;
      code_point = (code_point << 6) | (bytes[i + k] & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
    if ((extra == 1 && code_point < 0x80) || (extra == 2 && code_point < 0x800) ||
        (extra == 3 && code_point < 0x10000) || code_point > 0x10FFFF ||
        (code_point >= 0xD800 && code_point <= 0xDFFF))
      return false;
    i += static_cast<std::size_t>(extra) + 1;
  }
  return true;
}

struct InputFile::CsvState {
  csv_parser parser{};
  std::vector<std::string> header;
  bool have_header = false;
  std::vector<std::pair<bool, std::string>> fields;  // (present, text)
  long long record_line = 0;
  long long line = 0;  // lines completed so far
  int previous_terminator = 0;
  bool fields_since_terminator = false;
  bool at_start = true;
  std::string error;
  std::deque<InputRecord>* ready = nullptr;
  const std::string* path = nullptr;
};

namespace {

void on_field(void* data, std::size_t length, void* state_ptr) {
  auto& state = *static_cast<InputFile::CsvState*>(state_ptr);
  if (!state.error.empty()) return;
  if (state.fields.empty()) state.record_line = state.line + 1;
  state.fields_since_terminator = true;
  std::string text = data ? std::string(static_cast<const char*>(data), length) : std::string();
  if (!is_valid_utf8(text)) {
    std::size_t column = state.fields.size();
    std::string name = state.have_header && column < state.header.size()
                           ? "'" + state.header[column] + "'"
                           : std::to_string(column + 1);
    state.error = *state.path + ":" + std::to_string(state.record_line) + ": column " + name +
                  ": invalid UTF-8";
  }
  state.line += std::count(text.begin(), text.end(), '\n');
  state.fields.emplace_back(!text.empty(), std::move(text));
}

void on_record(int terminator, void* state_ptr) {
  auto& state = *static_cast<InputFile::CsvState*>(state_ptr);
  bool crlf_tail = terminator == '\n' && state.previous_terminator == '\r' &&
                   !state.fields_since_terminator;
  if (!crlf_tail && terminator != -1) ++state.line;
  state.previous_terminator = terminator;
  state.fields_since_terminator = false;
  if (state.fields.empty() || !state.error.empty()) {
    state.fields.clear();
    return;
  }
  if (!state.have_header) {
    std::set<std::string> seen;
    for (auto& [present, name] : state.fields) {
      if (name.empty()) {
        state.error = *state.path + ":" + std::to_string(state.record_line) +
                      ": the header has an empty column name";
        return;
      }
      if (!seen.insert(name).second) {
        state.error = *state.path + ":" + std::to_string(state.record_line) +
                      ": the header names column '" + name + "' twice";
        return;
      }
      state.header.push_back(name);
    }
    state.have_header = true;
    state.fields.clear();
    return;
  }
  if (state.fields.size() != state.header.size()) {
    state.error = *state.path + ":" + std::to_string(state.record_line) + ": expected " +
                  std::to_string(state.header.size()) + " fields (as in the header), found " +
                  std::to_string(state.fields.size());
    return;
  }
  InputRecord record;
  record.line = state.record_line;
  record.fields = nlohmann::json::object();
  for (std::size_t i = 0; i < state.fields.size(); ++i)
    if (state.fields[i].first) record.fields[state.header[i]] = std::move(state.fields[i].second);
  state.ready->push_back(std::move(record));
  state.fields.clear();
}

int never_space(unsigned char) { return 0; }

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

InputFile::InputFile(const std::string& path) : m_path(path) {
  m_file = std::fopen(path.c_str(), "rb");
  if (!m_file) throw RecipeError(path + ": cannot open input file: " + std::strerror(errno));
  m_json_lines = ends_with(path, ".jsonl") || ends_with(path, ".ndjson") || ends_with(path, ".json");
  if (!m_json_lines) {
    m_csv = std::make_unique<CsvState>();
    csv_init(&m_csv->parser, CSV_STRICT | CSV_STRICT_FINI | CSV_REPALL_NL);
    // RFC 4180: spaces belong to the field; libcsv would trim them by default.
    csv_set_space_func(&m_csv->parser, never_space);
    m_csv->ready = &m_ready;
    m_csv->path = &m_path;
  }
}

InputFile::~InputFile() {
  if (m_csv) csv_free(&m_csv->parser);
  if (m_file) std::fclose(m_file);
}

bool InputFile::fill_csv() {
  char buffer[65536];
  std::size_t length = std::fread(buffer, 1, sizeof buffer, m_file);
  const char* start = buffer;
  if (m_csv->at_start) {
    m_csv->at_start = false;
    if (length >= 3 && std::memcmp(buffer, "\xEF\xBB\xBF", 3) == 0) {
      start += 3;
      length -= 3;
    }
  }
  if (length == 0) {
    if (csv_fini(&m_csv->parser, on_field, on_record, m_csv.get()) != 0)
      throw RecipeError(m_path + ":" + std::to_string(m_csv->record_line) +
                        ": unterminated quoted field (a quote opened here is never closed)");
    if (!m_csv->error.empty()) throw RecipeError(m_csv->error);
    if (!m_csv->have_header) throw RecipeError(m_path + ": the file is empty (no header line)");
    return false;
  }
  std::size_t parsed = csv_parse(&m_csv->parser, start, length, on_field, on_record, m_csv.get());
  if (!m_csv->error.empty()) throw RecipeError(m_csv->error);
  if (parsed != length) {
    long long line = m_csv->line + 1;  // the parser stopped inside the line after the last one completed
    throw RecipeError(m_path + ":" + std::to_string(line) +
                      ": malformed CSV: a quote inside an unquoted field, or text after a "
                      "closing quote (" + csv_strerror(csv_error(&m_csv->parser)) + ")");
  }
  return true;
}

bool InputFile::fill_jsonl() {
  std::string line;
  int c;
  bool any = false;
  while ((c = std::fgetc(m_file)) != EOF) {
    any = true;
    if (c == '\n') break;
    line += static_cast<char>(c);
  }
  if (!any) return false;
  ++m_line;
  if (m_line == 1 && line.rfind("\xEF\xBB\xBF", 0) == 0) line = line.substr(3);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (line.find_first_not_of(" \t") == std::string::npos) return true;
  InputRecord record;
  record.line = m_line;
  try {
    record.fields = nlohmann::json::parse(line);
  } catch (const nlohmann::json::parse_error& e) {
    std::string what = e.what();
    auto colon = what.find("]");
    throw RecipeError(m_path + ":" + std::to_string(m_line) + ": invalid JSON: " +
                      (colon != std::string::npos ? what.substr(colon + 2) : what));
  }
  if (!record.fields.is_object())
    throw RecipeError(m_path + ":" + std::to_string(m_line) + ": expected a JSON object per line");
  m_ready.push_back(std::move(record));
  return true;
}

std::vector<InputRecord> InputFile::next(std::size_t count) {
  while (m_ready.size() < count && !m_eof) m_eof = !(m_json_lines ? fill_jsonl() : fill_csv());
  std::vector<InputRecord> records;
  while (!m_ready.empty() && records.size() < count) {
    records.push_back(std::move(m_ready.front()));
    m_ready.pop_front();
  }
  m_records_read += static_cast<long long>(records.size());
  return records;
}

void InputFile::skip(long long records) {
  while (records > 0) {
    auto batch = next(static_cast<std::size_t>(std::min<long long>(records, 10000)));
    if (batch.empty()) break;
    records -= static_cast<long long>(batch.size());
  }
}

}  // namespace host
