-- luacheck_std.lua: luacheck standards for host recipes, as a table of stds.
--
--   host       what a recipe (and a module it requires) sees: the sandbox's allow
--              list (bindings/sandbox_policy.cpp) and the recipe globals
--              (RECIPE_API.md sections 2 and 7), all read-only
--   host_test  what a *_test.lua file sees under `host test` (tests/HOST_TEST_FORMAT.md)
--
-- A repository's .luacheckrc uses it in one line (see luacheckrc.lua):
--   return dofile "/usr/share/pg-backfill-host/editor/luacheckrc.lua"
-- or, to keep its own options:
--   stds = dofile "/usr/share/pg-backfill-host/editor/luacheck_std.lua"; std = "host"
-- tests/editor/annotations_test.cpp checks it names every global the host registers.

local sandbox = {
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
}

local recipe = {
  "read", "read_all", "query", "patch_if_empty", "patch_if", "insert_if_absent", "fill_from",
  "map_id", "audit", "review", "EMPTY", "NOT_EMPTY",
  log = { fields = { "info", "warn" } },
  vars = { other_fields = true },
  "expect", "count", "expect_count", "orphans", "checksum", "same_rows",
}

local recipe_test = { "test", "fixture", "sql", "run", "revert", "host", "eq", "expect", "show" }

local function merge(...)
  local globals = {}
  for _, list in ipairs({ ... }) do
    for k, v in pairs(list) do
      if type(k) == "number" then globals[#globals + 1] = v else globals[k] = v end
    end
  end
  return { read_globals = globals }
end

return {
  host = merge(sandbox, recipe),
  host_test = merge(sandbox, recipe_test),
  -- The parts, for configurations that combine them themselves.
  host_sandbox = merge(sandbox),
  host_recipe = merge(recipe),
  host_recipe_test = merge(recipe_test),
}
