#include "tests/fuzz/input_records.hpp"

#include <cstdlib>
#include <lua.hpp>
#include <nlohmann/json.hpp>

#include "bindings/lua_value.hpp"
#include "host/errors.hpp"
#include "host/input_file.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace host::fuzz {

namespace {

// What a record may hold: strings, booleans, null, exact numbers, nesting within the cap.
void check_value(const nlohmann::json& value, int depth) {
  FUZZ_CHECK(!value.is_structured() || depth <= k_max_json_depth, "nesting beyond the cap");
  if (value.is_number_integer() || value.is_number_unsigned()) {
    // Integers beyond +-2^53 arrive as their digits (a string).
    double number = value.get<double>();
    FUZZ_CHECK(number >= -9007199254740992.0 && number <= 9007199254740992.0,
               "an integer a double cannot hold exactly arrived as a number");
  } else if (value.is_number_float()) {
    double number = value.get<double>();
    FUZZ_CHECK(std::strtod(format_number(number).c_str(), nullptr) == number,
               "a number does not print back to itself");
  } else if (value.is_string()) {
    FUZZ_CHECK(is_valid_utf8(value.get_ref<const std::string&>()), "a string is not UTF-8");
  }
  // (Iterating a scalar would visit the scalar itself.)
  if (value.is_structured())
    for (const auto& element : value) check_value(element, depth + 1);
}

}  // namespace

void read_input(const std::string& name, const std::uint8_t* data, std::size_t size) {
  static lua_State* L = luaL_newstate();
  bool csv = name.find(".csv") != std::string::npos;
  InputFile input(name, std::string(reinterpret_cast<const char*>(data), size));
  // The runner asks for batch_size records at a time; vary it without touching the data.
  std::size_t batch = 1 + size % 5;
  long long last_line = 0, count = 0;
  try {
    for (;;) {
      auto records = input.next(batch);
      if (records.empty()) break;
      FUZZ_CHECK(records.size() <= batch, "more records than asked for");
      for (const auto& record : records) {
        FUZZ_CHECK(record.line > last_line, "record lines do not increase");
        FUZZ_CHECK(!csv || record.line >= 2, "a CSV record on the header line");
        FUZZ_CHECK(record.fields.is_object(), "a record is not an object");
        last_line = record.line;
        ++count;
        for (const auto& [key, value] : record.fields.items()) {
          FUZZ_CHECK(!csv || (value.is_string() && !value.get_ref<const std::string&>().empty()),
                     "a CSV field is not a non-empty string");
          FUZZ_CHECK(!csv || is_valid_utf8(key), "a CSV header name is not UTF-8");
          check_value(value, 1);
        }
        // Whatever the reader accepts, Lua takes (push_json throws on what it cannot).
        int top = lua_gettop(L);
        push_json(L, record.fields);
        FUZZ_CHECK(lua_gettop(L) == top + 1 && lua_istable(L, -1), "push_json pushed no table");
        lua_settop(L, top);
      }
    }
  } catch (const RecipeError& e) {
    FUZZ_CHECK(std::string(e.what()).rfind(name + ":", 0) == 0, "an error does not name the file");
  }
  FUZZ_CHECK(input.records_read() == count, "records_read is not the records returned");
}

}  // namespace host::fuzz
