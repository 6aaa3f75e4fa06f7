-- .luacheckrc: luacheck --quiet stdlib recipes tests/stdlib
--
-- Lua here runs in host's sandbox, not in a stock Lua 5.1/LuaJIT. The "sandbox"
-- standard below is the sandbox's allow list (bindings/sandbox_policy.cpp, plus
-- the globals the sandbox itself sets: _G, the guarded rawset and the text-only
-- require), so luacheck flags io, os, debug, load, print... just as the sandbox
-- would refuse them. Keep the two lists in step.

stds.sandbox = {
  read_globals = {
    "assert", "error", "ipairs", "next", "pairs", "pcall", "select", "tonumber", "tostring",
    "type", "unpack", "xpcall", "rawequal", "rawget", "rawset", "setmetatable", "getmetatable",
    "_VERSION", "_G", "require",
    string = { fields = {
      "byte", "char", "find", "format", "gmatch", "gsub", "len", "lower", "match", "rep",
      "reverse", "sub", "upper",
    } },
    table = { fields = { "concat", "insert", "maxn", "remove", "sort" } },
    math = { fields = {
      "abs", "acos", "asin", "atan", "atan2", "ceil", "cos", "cosh", "deg", "exp", "floor",
      "fmod", "frexp", "huge", "ldexp", "log", "log10", "max", "min", "modf", "pi", "pow", "rad",
      "random", "randomseed", "sin", "sinh", "sqrt", "tan", "tanh",
    } },
    bit = { fields = {
      "tobit", "tohex", "bnot", "band", "bor", "bxor", "lshift", "rshift", "arshift", "rol",
      "ror", "bswap",
    } },
    coroutine = { fields = { "create", "resume", "running", "status", "wrap", "yield" } },
  },
}

-- What a recipe (and a module it requires) sees: RECIPE_API.md sections 2 and 7,
-- installed by bindings/primitives.cpp and bindings/verify_helpers.cpp. All read-only.
stds.recipe = {
  read_globals = {
    "read", "read_all", "query", "patch_if_empty", "patch_if", "insert_if_absent", "fill_from",
    "map_id", "audit", "review", "EMPTY", "NOT_EMPTY",
    log = { fields = { "info", "warn" } },
    vars = { other_fields = true },
    "expect", "count", "expect_count", "orphans", "checksum", "same_rows",
  },
}

-- What a *_test.lua file sees under `host test` (host/recipe_tests.cpp,
-- tests/HOST_TEST_FORMAT.md): no recipe primitives, these instead.
stds.recipe_test = {
  read_globals = { "test", "fixture", "sql", "run", "revert", "host", "eq", "expect", "show" },
}

std = "sandbox+recipe"

files["**/*_test.lua"] = { std = "sandbox+recipe_test" }
