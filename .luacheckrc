-- .luacheckrc: luacheck --quiet stdlib recipes tests/stdlib
--
-- Lua here runs in host's sandbox, not in a stock Lua 5.1/LuaJIT. The standards
-- live in editor/luacheck_std.lua, which the package ships for recipe libraries
-- too: "host" is the sandbox's allow list (bindings/sandbox_policy.cpp, plus _G,
-- the guarded rawset and the text-only require) and the recipe globals, so luacheck
-- flags io, os, debug, load, print... just as the sandbox would refuse them;
-- "host_test" is what a *_test.lua file sees under `host test`.
-- tests/editor/annotations_test.cpp keeps them in step with the code.

local host_stds = require "editor.luacheck_std"
for name, std in pairs(host_stds) do stds[name] = std end

std = "host"

files["**/*_test.lua"] = { std = "host_test" }
-- Editor annotations declare globals on purpose; luacheck does not read them.
exclude_files = { "editor/library/**" }
