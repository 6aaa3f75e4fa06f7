// host/input_file: CSV (RFC 4180, UTF-8, optional BOM) and JSON Lines records,
// with the physical line each record starts on.
#include "host/input_file.hpp"

#include <catch2/catch.hpp>

#include "host/errors.hpp"
#include "tests/support/test_support.hpp"

using namespace host;
using host::testing::write_file;

namespace {

std::vector<InputRecord> read_all_records(const std::string& path, std::size_t chunk = 1000) {
  InputFile file(path);
  std::vector<InputRecord> records;
  for (;;) {
    auto batch = file.next(chunk);
    if (batch.empty()) break;
    for (auto& r : batch) records.push_back(std::move(r));
  }
  return records;
}

std::string error_of(const std::string& path) {
  try {
    read_all_records(path);
  } catch (const RecipeError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("CSV: quoted commas, doubled quotes and spaces are kept exactly", "[unit][input_file]") {
  auto path = write_file("input/quoted.csv",
                         "id,name,note\n"
                         "1,\"Smith, John\",\"say \"\"hi\"\"\"\n"
                         "2, padded ,\"\"\"\"\n");
  auto records = read_all_records(path);
  REQUIRE(records.size() == 2);
  CHECK(records[0].fields["id"] == "1");
  CHECK(records[0].fields["name"] == "Smith, John");
  CHECK(records[0].fields["note"] == "say \"hi\"");
  CHECK(records[1].fields["name"] == " padded ");
  CHECK(records[1].fields["note"] == "\"");
  CHECK(records[0].line == 2);
  CHECK(records[1].line == 3);
}

TEST_CASE("CSV: embedded newlines keep the line numbers of following records right",
          "[unit][input_file]") {
  auto path = write_file("input/multiline.csv",
                         "id,text,tail\n"
                         "1,one,a\n"
                         "2,\"multi\nline\ntext\",b\n"
                         "3,after,c\n"
                         "4,\"x\ny\",d\n"
                         "5,last,e\n");
  auto records = read_all_records(path, 2);
  REQUIRE(records.size() == 5);
  CHECK(records[1].fields["text"] == "multi\nline\ntext");
  CHECK(records[0].line == 2);
  CHECK(records[1].line == 3);
  CHECK(records[2].line == 6);
  CHECK(records[3].line == 7);
  CHECK(records[4].line == 9);
  CHECK(records[4].fields["id"] == "5");
}

TEST_CASE("CSV: CRLF line ends, a UTF-8 BOM and non-ASCII text", "[unit][input_file]") {
  auto path = write_file("input/crlf.csv",
                         "\xEF\xBB\xBFid,name\r\n"
                         "1,Zoë – café\r\n"
                         "2,\"two\r\nlines\"\r\n"
                         "3,three\r\n");
  auto records = read_all_records(path);
  REQUIRE(records.size() == 3);
  // The BOM is not part of the first header name.
  CHECK(records[0].fields.contains("id"));
  CHECK(records[0].fields["id"] == "1");
  CHECK(records[0].fields["name"] == "Zoë – café");
  CHECK(records[0].fields["name"].get<std::string>().find('\r') == std::string::npos);
  CHECK(records[1].fields["name"] == "two\r\nlines");
  CHECK(records[0].line == 2);
  CHECK(records[1].line == 3);
  CHECK(records[2].line == 5);
  CHECK(records[2].fields["name"] == "three");
}

TEST_CASE("CSV: empty cells are absent (nil in Lua)", "[unit][input_file]") {
  auto path = write_file("input/empty.csv",
                         "id,a,b,c\n"
                         "1,,x,\n"
                         "2,y,,z\n");
  auto records = read_all_records(path);
  REQUIRE(records.size() == 2);
  CHECK_FALSE(records[0].fields.contains("a"));
  CHECK_FALSE(records[0].fields.contains("c"));
  CHECK(records[0].fields["b"] == "x");
  CHECK_FALSE(records[1].fields.contains("b"));
  CHECK(records[1].fields.size() == 3);
}

TEST_CASE("CSV: a last line without a newline is a record", "[unit][input_file]") {
  auto path = write_file("input/no_newline.csv", "id,v\n1,a\n2,b");
  auto records = read_all_records(path);
  REQUIRE(records.size() == 2);
  CHECK(records[1].fields["v"] == "b");
  CHECK(records[1].line == 3);
}

TEST_CASE("CSV: errors name the file and line", "[unit][input_file]") {
  SECTION("wrong field count") {
    auto path = write_file("input/bad_count.csv", "id,v\n1,a\n2,b,c\n");
    auto message = error_of(path);
    CHECK(message.find(path + ":3") != std::string::npos);
  }
  SECTION("invalid UTF-8") {
    auto path = write_file("input/bad_utf8.csv", "id,v\n1,a\n2,\xC3\x28\n");
    auto message = error_of(path);
    CHECK(message.find(path + ":3") != std::string::npos);
    CHECK(message.find("UTF-8") != std::string::npos);
  }
  SECTION("unterminated quote") {
    auto path = write_file("input/unterminated.csv", "id,v\n1,a\n2,\"open\n");
    auto message = error_of(path);
    CHECK(message.find(path + ":3") != std::string::npos);
  }
  SECTION("empty file") {
    auto path = write_file("input/empty_file.csv", "");
    CHECK_FALSE(error_of(path).empty());
  }
  SECTION("missing file") { CHECK_THROWS_AS(InputFile("/nonexistent/x.csv"), RecipeError); }
}

TEST_CASE("CSV: skip() continues after the records already processed", "[unit][input_file]") {
  auto path = write_file("input/skip.csv", "id\n1\n2\n3\n4\n5\n");
  InputFile file(path);
  file.skip(3);
  auto rest = file.next(10);
  REQUIRE(rest.size() == 2);
  CHECK(rest[0].fields["id"] == "4");
  CHECK(rest[0].line == 5);
}

TEST_CASE("JSON Lines: one object per line, typed values, blank lines skipped",
          "[unit][input_file]") {
  auto path = write_file("input/records.jsonl",
                         "{\"id\": 1, \"name\": \"Zoë – café\", \"tags\": [\"a\", \"b\"]}\n"
                         "\n"
                         "{\"id\": 2, \"name\": null, \"ok\": true, \"n\": 1.5}\r\n"
                         "{\"id\": 3, \"nested\": {\"k\": \"v\"}}\n");
  auto records = read_all_records(path);
  REQUIRE(records.size() == 3);
  CHECK(records[0].line == 1);
  CHECK(records[1].line == 3);
  CHECK(records[2].line == 4);
  CHECK(records[0].fields["id"] == 1);
  CHECK(records[0].fields["name"] == "Zoë – café");
  CHECK(records[0].fields["tags"].size() == 2);
  CHECK(records[1].fields["name"].is_null());
  CHECK(records[1].fields["ok"] == true);
  CHECK(records[1].fields["n"] == 1.5);
  CHECK(records[2].fields["nested"]["k"] == "v");
}

TEST_CASE("JSON Lines: a BOM is skipped; bad lines are errors naming file and line",
          "[unit][input_file]") {
  auto good = write_file("input/bom.jsonl", "\xEF\xBB\xBF{\"id\": 1}\n");
  auto records = read_all_records(good);
  REQUIRE(records.size() == 1);
  CHECK(records[0].fields["id"] == 1);

  auto invalid = write_file("input/invalid.jsonl", "{\"id\": 1}\n{\"id\": \n");
  CHECK(error_of(invalid).find(invalid + ":2") != std::string::npos);

  auto not_object = write_file("input/array.jsonl", "{\"id\": 1}\n{\"id\": 2}\n[1, 2]\n");
  CHECK(error_of(not_object).find(not_object + ":3") != std::string::npos);
}

TEST_CASE("is_valid_utf8 accepts UTF-8 and rejects overlong, surrogate and truncated forms",
          "[unit][input_file]") {
  CHECK(is_valid_utf8(""));
  CHECK(is_valid_utf8("plain"));
  CHECK(is_valid_utf8("Zoë – café ✓ 日本 😀"));
  CHECK_FALSE(is_valid_utf8("\xC3"));              // truncated
  CHECK_FALSE(is_valid_utf8("\xC0\xAF"));          // overlong '/'
  CHECK_FALSE(is_valid_utf8("\xED\xA0\x80"));      // surrogate
  CHECK_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));  // past U+10FFFF
  CHECK_FALSE(is_valid_utf8("\xFF"));
  CHECK_FALSE(is_valid_utf8("ab\x80"));
}

TEST_CASE("JSON Lines: numbers a double would not hold exactly arrive as their exact text",
          "[unit][input_file]") {
  auto path = write_file("input/exact.jsonl",
                         "{\"big\": 123456789012345678901234567890, "
                         "\"long\": 0.12345678901234567890123, "
                         "\"i64\": 9223372036854775807, \"u64\": 18446744073709551615, "
                         "\"neg\": -9223372036854775809, \"past\": 9007199254740993, "
                         "\"almost\": 9007199254740993.0, \"tiny\": 1e-400}\n"
                         "{\"limit\": 9007199254740992, \"minus\": -9007199254740992, "
                         "\"tenth\": 0.1, \"half\": 1.5, \"exp\": 1.5e3, \"padded\": 1.50, "
                         "\"zero\": -0.0, \"whole\": 2.0}\n");
  auto records = read_all_records(path);
  REQUIRE(records.size() == 2);
  const auto& text = records[0].fields;
  CHECK(text["big"] == "123456789012345678901234567890");
  CHECK(text["long"] == "0.12345678901234567890123");
  CHECK(text["i64"] == "9223372036854775807");
  CHECK(text["u64"] == "18446744073709551615");
  CHECK(text["neg"] == "-9223372036854775809");
  CHECK(text["past"] == "9007199254740993");
  CHECK(text["almost"] == "9007199254740993.0");
  CHECK(text["tiny"] == "1e-400");
  const auto& numbers = records[1].fields;
  for (const auto& name : {"limit", "minus", "tenth", "half", "exp", "padded", "zero", "whole"}) {
    INFO(name);
    CHECK(numbers[name].is_number());
  }
  CHECK(numbers["limit"] == 9007199254740992LL);
  CHECK(numbers["minus"] == -9007199254740992LL);
  CHECK(numbers["tenth"] == 0.1);
  CHECK(numbers["exp"] == 1500.0);
}

TEST_CASE("JSON Lines: errors name file, line and column", "[unit][input_file]") {
  auto huge =
      write_file("input/huge.jsonl", "{\"id\": 1}\n{\"id\": 2}\n{\"id\": 3, \"n\": 1e400}\n");
  auto message = error_of(huge);
  CHECK(message.find(huge + ":3:16: number 1e400 is out of range") != std::string::npos);

  auto invalid = write_file("input/invalid_column.jsonl", "{\"id\": x}\n");
  message = error_of(invalid);
  CHECK(message.find(invalid + ":1:8: invalid JSON: syntax error") != std::string::npos);
  CHECK(message.find("line 1, column") == std::string::npos);

  auto trailing = write_file("input/trailing.jsonl", "{\"id\": 1} {\"id\": 2}\n");
  CHECK(error_of(trailing).find(trailing + ":1:") != std::string::npos);
}

TEST_CASE("JSON Lines: a document nested past the limit is refused, naming file and line",
          "[unit][input_file]") {
  std::string deep =
      "{\"id\": 2, \"v\": " + std::string(30000, '[') + std::string(30000, ']') + "}";
  auto path = write_file("input/deep.jsonl", "{\"id\": 1}\n" + deep + "\n");
  auto message = error_of(path);
  CHECK(message.find(path + ":2: arrays and objects nested deeper than 200 levels") !=
        std::string::npos);

  // 200 levels, the record itself included, are still fine.
  std::string limit = "{\"v\": " + std::string(199, '[') + std::string(199, ']') + "}";
  auto at_limit = write_file("input/at_limit.jsonl", limit + "\n");
  CHECK(read_all_records(at_limit).size() == 1);
  auto past = write_file("input/past_limit.jsonl",
                         "{\"v\": " + std::string(200, '[') + std::string(200, ']') + "}\n");
  CHECK(error_of(past).find(past + ":1: arrays and objects nested deeper") != std::string::npos);
}

TEST_CASE("An input given in memory reads as the same file would", "[unit][input_file]") {
  const std::string csv = "\xEF\xBB\xBFid,name\r\n1,\"a,\"\"b\"\r\n2,\n";
  const std::string jsonl = "{\"id\": 1, \"n\": 9007199254740993}\n\n{\"id\": 2}";
  for (const auto& [name, text] :
       {std::pair<std::string, std::string>{"memory.csv", csv}, {"memory.jsonl", jsonl}}) {
    auto from_file = read_all_records(write_file("input/" + name, text));
    InputFile memory(name, text);
    std::vector<InputRecord> from_memory;
    for (auto batch = memory.next(1); !batch.empty(); batch = memory.next(1))
      for (auto& r : batch) from_memory.push_back(std::move(r));
    REQUIRE(from_memory.size() == from_file.size());
    for (std::size_t i = 0; i < from_file.size(); ++i) {
      CHECK(from_memory[i].line == from_file[i].line);
      CHECK(from_memory[i].fields == from_file[i].fields);
    }
  }
}

TEST_CASE("CSV: an unterminated quote names the line it opens on", "[unit][input_file]") {
  // The line used to be the previous record's when the open field was a record's first.
  auto error = [](const std::string& text) {
    try {
      InputFile input("open.csv", text);
      input.next(100);
    } catch (const RecipeError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  CHECK_THAT(error("id\n\"open\n"), Catch::StartsWith("open.csv:2: unterminated quoted field"));
  CHECK_THAT(error("id,v\n1,a\n\n\"open"), Catch::StartsWith("open.csv:4: unterminated"));
  CHECK_THAT(error("id,v\r\n1,\"x\ny\"\r\n2,a\r\n\"open"),
             Catch::StartsWith("open.csv:5: unterminated"));
  CHECK_THAT(error("id,v\n1,\"two\nlines\",\"open"), Catch::StartsWith("open.csv:3: unterminated"));
}
