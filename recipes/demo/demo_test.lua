-- The demo: `host test --verbose recipes/demo` (what `host demo` runs). It loads a
-- sample tracker, runs shipped recipes as a dry run, for real, and again, then
-- reverts one, printing every report. The assertions make it a test as well.

local STATUS = "../confidence_defaults/phases_status.lua"
local PROJECT = "../confidence_defaults/phases_project.lua"
local UUID = "projects_uuid.lua"

local function step(title, r)
  show("\n==> " .. title .. "\n")
  if r.markdown and r.markdown ~= "" then show(r.markdown) else show(r.output) end
end

local function run_ok(file, opts)
  local r = run(file, opts)
  eq(r.exit, 0, file .. " exits 0: " .. r.output)
  expect(r.report, file .. ": a JSON report")
  return r
end

local function empty_statuses()
  return sql("select count(*) as n from phases where status is null or btrim(status) = ''")[1].n
end

test("the tour: dry run, real run, nothing left, review, ids, revert", function()
  fixture("fixture.sql")
  show("Sample data: 5 projects (legacy ids, no UUIDs) and 8 phases (5 without a status,\n"
    .. "5 without a project). Every report below is what `host run --report x.md` writes.")

  -- 1. What would change? Nothing is written.
  local dry = run_ok(STATUS, { dry_run = true })
  step("1. host run phases_status.lua --dry-run", dry)
  eq(dry.report.mode, "dry-run")
  eq(dry.report.stats.patched, 5)
  eq(empty_statuses(), 5, "a dry run writes nothing")

  -- 2. Do it.
  local real = run_ok(STATUS)
  step("2. host run phases_status.lua", real)
  eq(real.report.stats.patched, dry.report.stats.patched, "the dry run told the truth")
  eq(empty_statuses(), 0)
  eq(sql("select status from phases where id = 1")[1].status, "Done", "a person's value is kept")

  -- 3. Again: recipes are idempotent.
  local again = run_ok(STATUS)
  step("3. host run phases_status.lua (again: nothing left to change)", again)
  eq(again.report.stats.patched, 0)

  -- 4. A weaker guess is only proposed for review.
  local proposed = run_ok(PROJECT)
  step("4. host run phases_project.lua (medium-confidence guesses become review items)", proposed)
  eq(proposed.report.stats.patched, 0)
  eq(proposed.report.stats.review, 4)
  eq(proposed.report.stats.audit_events, 1, "'Retrospective' names no project")
  eq(sql("select count(*) as n from phases where project_id is null")[1].n, 5)

  -- 5. Reviewed: apply them.
  local applied = run_ok(PROJECT, { min_confidence = "medium" })
  step("5. host run phases_project.lua --min-confidence medium", applied)
  eq(applied.report.stats.patched, 4)
  eq(sql("select project_id from phases where id = 5")[1].project_id, 3, "'CAFE-Menu – Zoë''s pick' -> CAFE")

  -- 6. Stable UUIDs for legacy ids.
  local ids = run_ok(UUID)
  step("6. host run projects_uuid.lua", ids)
  eq(ids.report.stats.patched, 3)
  eq(ids.report.stats.ids_mapped, 3)
  eq(sql("select count(*) as n from projects where uuid is null")[1].n, 1, "DELTA has no legacy id")
  eq(sql("select uuid::text as u from projects where id = 5")[1].u, "0b7d3c1e-5f2a-4c6b-9d8e-7a6b5c4d3e05")

  -- 7. Undo step 2.
  local undo = revert(real.report.run_id)
  show("\n==> 7. host revert " .. real.report.run_id .. "\n")
  show(undo.output)
  eq(undo.exit, 0, undo.output)
  eq(empty_statuses(), 5, "the statuses are empty again")
  eq(sql("select status from phases where id = 3")[1].status, "  ", "exactly as before, blank included")

  -- 8. host verify now finds work left to do.
  local check = host({ "verify", STATUS })
  show("\n==> 8. host verify phases_status.lua (after the revert: exit " .. check.exit .. ")\n")
  eq(check.exit, 3, check.output)
end)
