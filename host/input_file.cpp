#include "host/input_file.hpp"

#include <csv.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <set>

#include "bindings/lua_value.hpp"
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
  bool crlf_tail =
      terminator == '\n' && state.previous_terminator == '\r' && !state.fields_since_terminator;
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

// The value of a JSON number's text (or of format_number's) as significant digits and
// a power of ten: "-0.0120" -> {true, "12", -3}; zero is {false, "", 0} whatever its sign.
struct Decimal {
  bool negative = false;
  std::string digits;
  long long exponent = 0;
  bool operator==(const Decimal& other) const {
    return negative == other.negative && digits == other.digits && exponent == other.exponent;
  }
};

Decimal decimal_of(const std::string& text) {
  Decimal decimal;
  std::size_t i = 0;
  if (i < text.size() && (text[i] == '-' || text[i] == '+')) decimal.negative = text[i++] == '-';
  long long fraction_digits = 0;
  bool in_fraction = false;
  for (; i < text.size() && text[i] != 'e' && text[i] != 'E'; ++i) {
    if (text[i] == '.') {
      in_fraction = true;
      continue;
    }
    decimal.digits += text[i];
    if (in_fraction) ++fraction_digits;
  }
  long long exponent = 0;
  if (i < text.size()) {
    bool negative_exponent = false;
    if (++i < text.size() && (text[i] == '-' || text[i] == '+'))
      negative_exponent = text[i++] == '-';
    // Clamped: far beyond any double's exponent, and it cannot overflow.
    for (; i < text.size(); ++i) exponent = std::min(exponent * 10 + (text[i] - '0'), 1000000000LL);
    if (negative_exponent) exponent = -exponent;
  }
  std::size_t first = decimal.digits.find_first_not_of('0');
  if (first == std::string::npos) return {};
  std::size_t last = decimal.digits.find_last_not_of('0');
  decimal.exponent =
      exponent - fraction_digits + static_cast<long long>(decimal.digits.size() - 1 - last);
  decimal.digits = decimal.digits.substr(first, last - first + 1);
  return decimal;
}

// Builds one JSON Lines record through nlohmann's SAX interface, so that each number's
// text is still at hand: a number a Lua number (a double) would not hold exactly is
// kept as its exact text (a JSON string), as RECIPE_API.md section 1 asks. Integers
// follow int8's rule: a number within +-2^53, text beyond. A number with a fraction or
// an exponent stays a number only when the double prints back (as format_number
// writes it) to the same decimal value: 0.1 and 1.5e3 are numbers,
// 0.12345678901234567890123 and 9007199254740993.0 are text.
class RecordBuilder {
 public:
  explicit RecordBuilder(nlohmann::json& root) : m_root(root) {}

  bool null() { return add(nullptr); }
  bool boolean(bool value) { return add(value); }
  bool number_integer(std::int64_t value) {
    if (value >= -k_exact_limit && value <= k_exact_limit) return add(value);
    return add(std::to_string(value));
  }
  bool number_unsigned(std::uint64_t value) {
    if (value <= static_cast<std::uint64_t>(k_exact_limit)) return add(value);
    return add(std::to_string(value));
  }
  bool number_float(double value, const std::string& text) {
    // An integer literal lands here only past 64 bits.
    bool integer_literal = text.find_first_of(".eE") == std::string::npos;
    if (!integer_literal && decimal_of(format_number(value)) == decimal_of(text)) return add(value);
    return add(text);
  }
  bool string(std::string& value) { return add(std::move(value)); }
  bool binary(nlohmann::json::binary_t&) { return add(nullptr); }  // not in JSON text
  bool start_object(std::size_t) { return open(nlohmann::json::object()); }
  bool key(std::string& name) {
    m_key = std::move(name);
    return true;
  }
  bool end_object() { return close(); }
  bool start_array(std::size_t) { return open(nlohmann::json::array()); }
  bool end_array() { return close(); }
  bool parse_error(std::size_t position, const std::string& token,
                   const nlohmann::json::exception& error) {
    m_error_position = position;
    m_error_token = token;
    m_error_id = error.id;
    m_error_what = error.what();
    return false;
  }

  // Why parsing stopped, as ":COLUMN: message" (COLUMN counts bytes from 1) or ": message".
  std::string error() const {
    if (m_too_deep)
      return ": arrays and objects nested deeper than " + std::to_string(k_max_json_depth) +
             " levels";
    if (m_error_id == 406) {  // a number beyond a double's range, e.g. 1e400
      std::size_t column = m_error_position - m_error_token.size() + 1;
      return ":" + std::to_string(column) + ": number " + m_error_token +
             " is out of range (beyond +-1.8e308); put it in quotes to pass it as text";
    }
    // "[json.exception.parse_error.101] parse error at line 1, column 7: syntax error ..."
    std::string message = m_error_what;
    auto at = message.find("column ");
    if (at != std::string::npos && message.find(": ", at) != std::string::npos)
      message = message.substr(message.find(": ", at) + 2);
    else if (message.find("] ") != std::string::npos)
      message = message.substr(message.find("] ") + 2);
    return ":" + std::to_string(m_error_position) + ": invalid JSON: " + message;
  }

 private:
  static constexpr std::int64_t k_exact_limit = std::int64_t{1} << 53;

  // Places `value` in the open container (or as the root); its address.
  nlohmann::json* place(nlohmann::json&& value) {
    if (m_open.empty()) {
      m_root = std::move(value);
      return &m_root;
    }
    nlohmann::json& parent = *m_open.back();
    if (parent.is_array()) {
      parent.push_back(std::move(value));
      return &parent.back();
    }
    nlohmann::json& slot = parent[m_key];
    slot = std::move(value);
    return &slot;
  }
  bool add(nlohmann::json value) {
    place(std::move(value));
    return true;
  }
  bool open(nlohmann::json container) {
    // Refused while parsing: a deep document would only fail later, in Lua.
    if (m_open.size() >= static_cast<std::size_t>(k_max_json_depth)) {
      m_too_deep = true;
      return false;
    }
    m_open.push_back(place(std::move(container)));
    return true;
  }
  bool close() {
    m_open.pop_back();
    return true;
  }

  nlohmann::json& m_root;
  std::vector<nlohmann::json*> m_open;  // containers being filled, innermost last
  std::string m_key;
  std::size_t m_error_position = 0;
  std::string m_error_token;
  int m_error_id = 0;
  std::string m_error_what;
  bool m_too_deep = false;
};

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

InputFile::InputFile(const std::string& path) : m_path(path) {
  m_file = std::fopen(path.c_str(), "rb");
  if (!m_file) throw RecipeError(path + ": cannot open input file: " + std::strerror(errno));
  start();
}

InputFile::InputFile(const std::string& path, std::string contents)
    : m_path(path), m_contents(std::move(contents)) {
  start();
}

void InputFile::start() {
  m_json_lines =
      ends_with(m_path, ".jsonl") || ends_with(m_path, ".ndjson") || ends_with(m_path, ".json");
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

std::size_t InputFile::read(char* buffer, std::size_t size) {
  if (m_file) return std::fread(buffer, 1, size, m_file);
  std::size_t length = std::min(size, m_contents.size() - m_contents_at);
  std::memcpy(buffer, m_contents.data() + m_contents_at, length);
  m_contents_at += length;
  return length;
}

int InputFile::read_byte() {
  if (m_file) return std::fgetc(m_file);
  if (m_contents_at == m_contents.size()) return EOF;
  return static_cast<unsigned char>(m_contents[m_contents_at++]);
}

bool InputFile::fill_csv() {
  char buffer[65536];
  std::size_t length = read(buffer, sizeof buffer);
  const char* start = buffer;
  if (m_csv->at_start) {
    m_csv->at_start = false;
    if (length >= 3 && std::memcmp(buffer, "\xEF\xBB\xBF", 3) == 0) {
      start += 3;
      length -= 3;
    }
  }
  if (length == 0) {
    // The open field starts after the lines completed so far (record_line is still
    // the previous record's when the open field is the record's first).
    if (csv_fini(&m_csv->parser, on_field, on_record, m_csv.get()) != 0)
      throw RecipeError(m_path + ":" + std::to_string(m_csv->line + 1) +
                        ": unterminated quoted field (a quote opened here is never closed)");
    if (!m_csv->error.empty()) throw RecipeError(m_csv->error);
    if (!m_csv->have_header) throw RecipeError(m_path + ": the file is empty (no header line)");
    return false;
  }
  std::size_t parsed = csv_parse(&m_csv->parser, start, length, on_field, on_record, m_csv.get());
  if (!m_csv->error.empty()) throw RecipeError(m_csv->error);
  if (parsed != length) {
    long long line =
        m_csv->line + 1;  // the parser stopped inside the line after the last one completed
    throw RecipeError(m_path + ":" + std::to_string(line) +
                      ": malformed CSV: a quote inside an unquoted field, or text after a "
                      "closing quote (" +
                      csv_strerror(csv_error(&m_csv->parser)) + ")");
  }
  return true;
}

bool InputFile::fill_jsonl() {
  std::string line;
  int c;
  bool any = false;
  while ((c = read_byte()) != EOF) {
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
  RecordBuilder builder(record.fields);
  if (!nlohmann::json::sax_parse(line, &builder))
    throw RecipeError(m_path + ":" + std::to_string(m_line) + builder.error());
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
