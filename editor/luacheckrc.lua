-- luacheckrc.lua: a whole luacheck configuration for a recipe library. A team's
-- .luacheckrc is one line:
--   return dofile "/usr/share/pg-backfill-host/editor/luacheckrc.lua"
-- Recipes and modules are checked against the "host" standard, *_test.lua files
-- against "host_test" (editor/luacheck_std.lua, found next to this file).

local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
local stds = dofile(here .. "luacheck_std.lua")

return {
  stds = stds,
  std = "host",
  files = { ["**/*_test.lua"] = { std = "host_test" } },
}
