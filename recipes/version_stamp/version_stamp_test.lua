-- version_stamp: stamp "v2" where the version is missing or "v1", leave other
-- values alone, check health read-only, and revert exactly (or report conflicts).

local function run_ok(file, opts)
  local r = run(file, opts)
  eq(r.exit, 0, file .. " exits 0: " .. r.output)
  expect(r.report, file .. ": a JSON report")
  return r
end

local NULL = "NULL"  -- stands for SQL NULL below

-- schema_version of documents 1..8, NULL for SQL NULL.
local function versions()
  local result = {}
  for _, row in ipairs(sql("select id, schema_version from documents order by id")) do
    if row.schema_version == nil then result[row.id] = NULL else result[row.id] = row.schema_version end
  end
  return result
end

local ORIGINAL = { NULL, "v1", "v9-custom", "v2", "  ", "v1", NULL, "V1" }
local STAMPED = { "v2", "v2", "v9-custom", "v2", "v2", "v2", "v2", "V1" }

local function audited(r, name)
  local ids = {}
  for _, event in ipairs(r.report.audit) do
    if event.event == name then ids[#ids + 1] = event.data.id end
  end
  table.sort(ids)
  return ids
end

test("stamps v2 where missing or v1, leaves custom values", function()
  fixture("fixture.sql")
  local dry = run_ok("stamp_version.lua", { dry_run = true })
  eq(versions(), ORIGINAL, "a dry run changes nothing")

  local r = run_ok("stamp_version.lua")
  eq(r.report.stats.patched, dry.report.stats.patched, "the dry run told the truth")
  eq(r.report.stats.scanned, 7, "only rows not at v2 are scanned")
  eq(r.report.stats.patched, 5)
  eq(r.report.stats.protected, 0)
  eq(r.report.changes, { { table = "documents", column = "schema_version", count = 5 } })
  eq(sql("select schema_version from documents where id = $1", 3)[1].schema_version, "v9-custom")
  eq(versions(), STAMPED)
  eq(audited(r, "unexpected_version"), { 3, 8 })

  local again = run_ok("stamp_version.lua")
  eq(again.report.stats.patched, 0, "nothing left to stamp")
  eq(again.report.stats.scanned, 2, "the two custom values")
  eq(host({ "verify", "stamp_version.lua" }).exit, 0, "host verify: nothing left to change")
end)

test("health check: read-only, fails before the stamp and passes after", function()
  fixture("fixture.sql")
  local before = run("health_check.lua")
  eq(before.exit, 3, "documents still lack v2: " .. before.output)
  eq(before.report.status, "verify_failed")
  eq(#before.report.verify, 2)
  eq(before.report.verify[1].ok, false, "documents without a version: " .. before.report.verify[1].detail)
  eq(before.report.verify[2].ok, false, "documents at v1: " .. before.report.verify[2].detail)
  eq(audited(before, "not_v2"), { 1, 2, 3, 5, 6, 7, 8 }, "the report names every document not at v2")
  eq(before.report.stats.patched, 0)
  eq(versions(), ORIGINAL, "the health check writes nothing")

  run_ok("stamp_version.lua")
  local after = run_ok("health_check.lua")
  eq(after.report.status, "succeeded")
  for _, check in ipairs(after.report.verify) do eq(check.ok, true, check.check) end
  eq(audited(after, "not_v2"), { 3, 8 })
end)

test("revert restores every stamped cell exactly", function()
  fixture("fixture.sql")
  local r = run_ok("stamp_version.lua")
  eq(versions(), STAMPED)

  local preview = revert(r.report.run_id, { dry_run = true })
  eq(preview.exit, 0, preview.output)
  eq(versions(), STAMPED, "a dry-run revert changes nothing")

  local rv = revert(r.report.run_id)
  eq(rv.exit, 0, rv.output)
  eq(versions(), ORIGINAL, "NULL, the blank and v1 are all back")

  -- The run is reverted: stamping again does the same work again.
  eq(run_ok("stamp_version.lua").report.stats.patched, 5)
end)

test("a cell changed after the run is left alone; revert exits 5", function()
  fixture("fixture.sql")
  local r = run_ok("stamp_version.lua")
  sql("update documents set schema_version = 'v3' where id = 2")  -- someone moved on

  local preview = revert(r.report.run_id, { dry_run = true })
  eq(preview.exit, 5, "the dry run foresees the conflict: " .. preview.output)
  eq(versions()[2], "v3")

  local rv = revert(r.report.run_id)
  eq(rv.exit, 5, rv.output)
  expect(rv.output:find("conflict", 1, true), "the conflict is reported")
  eq(versions(), { NULL, "v3", "v9-custom", "v2", "  ", "v1", NULL, "V1" },
    "everything else is restored; the changed cell keeps its new value")
end)
