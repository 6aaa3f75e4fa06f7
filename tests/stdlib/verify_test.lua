-- stdlib/verify: the module hands recipes the verification helpers of
-- RECIPE_API.md section 7. The helpers exist only inside a recipe run, so the
-- tests run verify_module_recipe.lua against a small schema and read its report.

local function schema()
  sql([[
    CREATE TABLE teams (id integer PRIMARY KEY, name text NOT NULL);
    CREATE TABLE members (id integer PRIMARY KEY, team_id integer, name text);
    CREATE TABLE members_copy (id integer PRIMARY KEY, team_id integer, name text);
    INSERT INTO teams VALUES (1, 'Platform'), (2, 'Café Zoë');
    INSERT INTO members VALUES (1, 1, 'Ana'), (2, 2, 'Zoë Çelik'), (3, NULL, '  '), (4, 2, NULL);
    INSERT INTO members_copy SELECT * FROM members;
  ]])
end

-- event name -> data of the run's audit events.
local function audited(r)
  local events = {}
  for _, event in ipairs(r.report.audit) do events[event.event] = event.data end
  return events
end

-- check name -> ok, of the run's verify section.
local function checks(r)
  local result = {}
  for _, check in ipairs(r.report.verify) do result[check.check] = check.ok end
  return result
end

test("require 'verify' gives the helpers themselves, and they pass on good data", function()
  schema()
  local r = run("verify_module_recipe.lua", { vars = { with_team = 3 } })
  eq(r.exit, 0, r.output)
  eq(r.report.status, "succeeded")
  local events = audited(r)
  eq(events.module, { same_table = true, same_functions = true })
  eq(events.count, { all = 4, no_name = 2 }, "EMPTY counts NULL and blank text")
  eq(events.orphans, { count = 0, sample = {} })
  eq(events.checksum, { same = true })
  eq(events.same_rows.same, true, events.same_rows.detail)
  eq(#r.report.verify, 3, "expect_count and the two expects are listed")
  for _, check in ipairs(r.report.verify) do eq(check.ok, true, check.check) end
  eq(r.report.stats.patched, 0)
end)

test("failed checks: exit 3, listed in the report, with orphans and differing rows named", function()
  schema()
  sql("INSERT INTO members VALUES (5, 7, 'Lost'), (6, 9, 'Also lost')")
  sql("UPDATE members_copy SET name = 'Ana Lima' WHERE id = 1")
  local r = run("verify_module_recipe.lua", { vars = { with_team = 3 } })
  eq(r.exit, 3, r.output)
  eq(r.report.status, "verify_failed")
  local events = audited(r)
  eq(events.orphans, { count = 2, sample = { "7", "9" } })
  eq(events.checksum, { same = false })
  eq(events.same_rows.same, false)
  expect(events.same_rows.detail:find("2 only in", 1, true), events.same_rows.detail)
  expect(events.same_rows.detail:find("1 different", 1, true), events.same_rows.detail)
  local result = checks(r)
  eq(result["members_copy has the same rows"], false)
  eq(result["every member's team exists"], false)
  local failed = 0
  for _, check in ipairs(r.report.verify) do
    if not check.ok then failed = failed + 1 end
  end
  eq(failed, 3, "expect_count (5 with a team, not 3) fails too")
end)
