#include "host/node_tree.hpp"

#include <cctype>
#include <vector>

namespace host {

namespace {

// Fields (PostgreSQL 14..16 primnodes.h, parsenodes.h) that hold the OID of a
// function the executor or planner calls for the node. Not :opfuncid: it is always
// the function of the node's :opno (pg_operator.oprcode), which is checked as the
// operator's, so that the message names the operator.
const std::set<std::string> k_function_fields = {
    ":funcid",   ":hashfuncid", ":negfuncid",        ":aggfnoid",
    ":winfnoid", ":tsmhandler", ":startInRangeFunc", ":endInRangeFunc",
};
// Fields that hold one operator OID; ":opnos" holds a list of them.
const std::set<std::string> k_operator_fields = {":opno", ":eqop", ":sortop", ":cycle_mark_neop"};

bool is_delimiter(char c) {
  return c == ' ' || c == '\n' || c == '\t' || c == '(' || c == ')' || c == '{' || c == '}';
}

// pg_strtok: parentheses and braces are tokens of their own, white space separates,
// a backslash makes the next character part of the token. Escapes are kept, so an
// escaped name never equals a field name or a number.
std::vector<std::string> tokens_of(const std::string& text) {
  std::vector<std::string> tokens;
  std::size_t at = 0;
  while (at < text.size()) {
    char c = text[at];
    if (c == ' ' || c == '\n' || c == '\t') {
      ++at;
    } else if (c == '(' || c == ')' || c == '{' || c == '}') {
      tokens.emplace_back(1, c);
      ++at;
    } else {
      std::size_t start = at;
      while (at < text.size() && !is_delimiter(text[at])) at += text[at] == '\\' ? 2 : 1;
      if (at > text.size()) at = text.size();
      tokens.push_back(text.substr(start, at - start));
    }
  }
  return tokens;
}

bool parse_oid(const std::string& token, unsigned& oid) {
  if (token.empty() || token.size() > 10) return false;
  unsigned long long value = 0;
  for (char c : token) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value > 0xFFFFFFFFull) return false;
  oid = static_cast<unsigned>(value);
  return true;
}

// The numbers of a list token sequence "( o 1 2 )" or "( b 8 9 )" starting at `open`.
std::vector<unsigned> list_at(const std::vector<std::string>& tokens, std::size_t open) {
  std::vector<unsigned> values;
  if (open >= tokens.size() || tokens[open] != "(") return values;
  for (std::size_t i = open + 1; i < tokens.size() && tokens[i] != ")"; ++i) {
    unsigned value = 0;
    if (parse_oid(tokens[i], value)) values.push_back(value);
  }
  return values;
}

// PostgreSQL 12 and later: system columns start at -7, so bit n of selectedCols is
// attribute n - 7 (FirstLowInvalidHeapAttributeNumber).
constexpr int k_first_low_invalid_attribute = -7;

struct Frame {
  std::string node;
  unsigned relid = 0;
};

}  // namespace

void NodeTreeRefs::merge(const NodeTreeRefs& other) {
  functions.insert(other.functions.begin(), other.functions.end());
  operators.insert(other.operators.begin(), other.operators.end());
  relations.insert(other.relations.begin(), other.relations.end());
  domains.insert(other.domains.begin(), other.domains.end());
  for (const auto& [relation, attributes] : other.columns)
    columns[relation].insert(attributes.begin(), attributes.end());
  next_value = next_value || other.next_value;
}

NodeTreeRefs scan_node_tree(const std::string& text) {
  NodeTreeRefs refs;
  auto tokens = tokens_of(text);
  std::vector<Frame> frames;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    const std::string& token = tokens[i];
    if (token == "{") {
      frames.push_back({i + 1 < tokens.size() ? tokens[i + 1] : "", 0});
      continue;
    }
    if (token == "}") {
      if (!frames.empty()) frames.pop_back();
      continue;
    }
    if (token.size() < 2 || token[0] != ':' || i + 1 >= tokens.size()) continue;
    // The value is looked at, never skipped: whatever it is, it is scanned as a
    // token of its own next, so a field name smuggled into a value hides nothing.
    const std::string& next = tokens[i + 1];
    const std::string node = frames.empty() ? "" : frames.back().node;
    unsigned oid = 0;
    if (k_function_fields.count(token)) {
      if (parse_oid(next, oid) && oid != 0) refs.functions.insert(oid);
    } else if (k_operator_fields.count(token)) {
      if (parse_oid(next, oid) && oid != 0) refs.operators.insert(oid);
    } else if (token == ":opnos") {
      for (unsigned op : list_at(tokens, i + 1))
        if (op != 0) refs.operators.insert(op);
    } else if (token == ":relid") {
      if (parse_oid(next, oid) && oid != 0) {
        refs.relations.insert(oid);
        if (!frames.empty()) frames.back().relid = oid;
      }
    } else if (token == ":selectedCols") {
      if (!frames.empty() && frames.back().relid != 0) {
        auto& read = refs.columns[frames.back().relid];
        for (unsigned bit : list_at(tokens, i + 1))
          read.insert(static_cast<int>(bit) + k_first_low_invalid_attribute);
      }
    } else if (token == ":seqid") {
      refs.next_value = true;
    } else if (token == ":resulttype" && node == "COERCETODOMAIN") {
      if (parse_oid(next, oid) && oid != 0) refs.domains.insert(oid);
    }
  }
  return refs;
}

}  // namespace host
