-- safe_fill: every target field already holds a value, so the recipes write
-- nothing and report every field they looked at as protected.

local RECIPES = {
  { file = "projects_defaults.lua", table = "projects", rows = 5, fields = 2 },
  { file = "phases_defaults.lua", table = "phases", rows = 6, fields = 1 },
  { file = "users_defaults.lua", table = "users", rows = 5, fields = 2 },
}

-- One fingerprint of all three tables: any change to any cell changes it.
local function fingerprint()
  return sql([[
    select (select md5(string_agg(p::text, '|' order by p.id)) from projects p)
        || (select md5(string_agg(f::text, '|' order by f.id)) from phases f)
        || (select md5(string_agg(u::text, '|' order by u.id)) from users u) as h
  ]])[1].h
end

local function run_ok(file, opts)
  local r = run(file, opts)
  eq(r.exit, 0, file .. " exits 0: " .. r.output)
  expect(r.report, file .. ": a JSON report")
  return r
end

test("dry run and real run patch nothing; every field is protected", function()
  fixture("fixture.sql")
  local before = fingerprint()
  for _, recipe in ipairs(RECIPES) do
    local calls = recipe.rows * recipe.fields
    for _, dry in ipairs({ true, false }) do
      local r = run_ok(recipe.file, { dry_run = dry })
      local stats = r.report.stats
      eq(r.report.mode, dry and "dry-run" or "commit", recipe.file)
      eq(r.report.status, "succeeded", recipe.file)
      eq(stats.scanned, recipe.rows, recipe.file .. " scanned")
      eq(stats.patched, 0, recipe.file .. " patched")
      eq(stats.protected, calls, recipe.file .. " protected == number of patch calls")
      eq(stats.inserted, 0, recipe.file .. " inserted")
      eq(stats.review, 0, recipe.file .. " review")
      eq(r.report.changes, {}, recipe.file .. " changes")
    end
  end
  eq(fingerprint(), before, "the database is unchanged")
end)

test("host verify passes: nothing is left to change", function()
  fixture("fixture.sql")
  for _, recipe in ipairs(RECIPES) do
    local v = host({ "verify", recipe.file })
    eq(v.exit, 0, recipe.file .. ": " .. v.output)
  end
end)

test("reverting a run that changed nothing restores nothing", function()
  fixture("fixture.sql")
  local before = fingerprint()
  local r = run_ok("users_defaults.lua")
  local rv = revert(r.report.run_id)
  eq(rv.exit, 0, rv.output)
  eq(fingerprint(), before, "the database is unchanged")
end)

test("a field blanked later is filled, and only that one; revert puts the blank back", function()
  fixture("fixture.sql")
  sql("update users set timezone = '   ' where id = 3")
  local r = run_ok("users_defaults.lua")
  eq(r.report.stats.patched, 1, "only the blank cell is written")
  eq(r.report.stats.protected, 9, "the other nine fields are protected")
  eq(r.report.changes, { { table = "users", column = "timezone", count = 1 } })
  eq(sql("select timezone from users where id = 3")[1].timezone, "UTC")
  eq(sql("select timezone from users where id = 2")[1].timezone, "Europe/Istanbul")

  local again = run_ok("users_defaults.lua")
  eq(again.report.stats.patched, 0, "second run patches nothing")
  eq(again.report.stats.protected, 10)

  local rv = revert(r.report.run_id)
  eq(rv.exit, 0, rv.output)
  eq(sql("select timezone from users where id = 3")[1].timezone, "   ", "the exact old value is back")
end)
