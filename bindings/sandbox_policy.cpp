#include "bindings/sandbox_policy.hpp"

// Everything not listed is absent: io, os, debug, package, ffi, jit,
// load/loadstring/loadfile/dofile (bytecode and unchecked chunks), string.dump,
// getfenv/setfenv (they hand out the real globals), newproxy (__gc runs with
// hooks off), collectgarbage, print (recipes log through `log`), module, require
// (replaced by the host's text-only loader), rawset (replaced by a guarded one).

namespace host::sandbox_policy {

const std::vector<std::string>& allowed_base_functions() {
  static const std::vector<std::string> names = {
      "assert", "error",  "ipairs",   "next",         "pairs",        "pcall",
      "select", "tonumber", "tostring", "type",       "unpack",       "xpcall",
      "rawequal", "rawget", "setmetatable", "getmetatable", "_VERSION",
  };
  return names;
}

const std::vector<std::pair<std::string, std::vector<std::string>>>& allowed_libraries() {
  static const std::vector<std::pair<std::string, std::vector<std::string>>> libraries = {
      {"string",
       {"byte", "char", "find", "format", "gmatch", "gsub", "len", "lower", "match", "rep",
        "reverse", "sub", "upper"}},
      {"table", {"concat", "insert", "maxn", "remove", "sort"}},
      {"math",
       {"abs", "acos", "asin", "atan", "atan2", "ceil", "cos", "cosh", "deg", "exp", "floor",
        "fmod", "frexp", "huge", "ldexp", "log", "log10", "max", "min", "modf", "pi", "pow", "rad",
        "random", "randomseed", "sin", "sinh", "sqrt", "tan", "tanh"}},
      {"bit",
       {"tobit", "tohex", "bnot", "band", "bor", "bxor", "lshift", "rshift", "arshift", "rol",
        "ror", "bswap"}},
      {"coroutine", {"create", "resume", "running", "status", "wrap", "yield"}},
  };
  return libraries;
}

}  // namespace host::sandbox_policy
