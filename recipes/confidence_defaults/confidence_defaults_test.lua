-- confidence_defaults: a high-confidence default is applied by a plain run; a
-- medium/low-confidence guess is only proposed (review items) until the run is
-- given a lower --min-confidence.

local function run_ok(file, opts)
  local r = run(file, opts)
  eq(r.exit, 0, file .. " exits 0: " .. r.output)
  expect(r.report, file .. ": a JSON report")
  return r
end

local function project_ids()
  local ids = {}
  for _, row in ipairs(sql("select id, project_id from phases order by id")) do
    ids[row.id] = row.project_id or false
  end
  return ids
end

local function by_key_id(items)
  table.sort(items, function(a, b) return a.key.id < b.key.id end)
  return items
end

local function proposal(id, project, prefix, code, confidence)
  return {
    table = "phases",
    key = { id = id },
    column = "project_id",
    value = project,
    confidence = confidence,
    reason = "phase name prefix '" .. prefix .. "' matches project code " .. code,
  }
end

local PROPOSALS = {
  proposal(2, 1, "ALPHA", "ALPHA", "medium"),
  proposal(3, 2, "BRAVO", "BRAVO", "medium"),
  proposal(5, 3, "cafe", "CAFE", "low"),
  proposal(10, 4, "DELTA", "DELTA", "medium"),
}

-- project_id of phases 1..10 as loaded (false = NULL)
local ORIGINAL_PROJECTS = { 1, false, false, 2, false, false, false, false, 3, false }

test("empty status becomes Active at high confidence", function()
  fixture("fixture.sql")
  local dry = run_ok("phases_status.lua", { dry_run = true })
  eq(dry.report.stats.patched, 6, "dry run: NULL and blank statuses")
  eq(sql("select count(*) as n from phases where status = 'Active'")[1].n, 1, "dry run wrote nothing")

  local r = run_ok("phases_status.lua")
  eq(r.report.stats.scanned, 6, "where = { status = EMPTY } scans only the empty ones")
  eq(r.report.stats.patched, 6)
  eq(r.report.stats.review, 0)
  eq(r.report.changes, { { table = "phases", column = "status", count = 6 } })
  eq(r.report.verify[1].ok, true, "verify: no empty status left")
  local statuses = {}
  for _, row in ipairs(sql("select id, status from phases order by id")) do statuses[row.id] = row.status end
  eq(statuses, { "Done", "Active", "Active", "Active", "On hold", "Active", "Active", "Cancelled",
                 "Active", "Active" })

  local again = run_ok("phases_status.lua")
  eq(again.report.stats.scanned, 0, "second run finds nothing to do")
  eq(again.report.stats.patched, 0)

  eq(revert(r.report.run_id).exit, 0)
  eq(sql("select status from phases where id = 3")[1].status, "  ", "revert restores the blank")
  eq(sql("select count(*) as n from phases where status is null")[1].n, 5)
end)

test("medium and low guesses are only proposed with the default --min-confidence high", function()
  fixture("fixture.sql")
  local r = run_ok("phases_project.lua")
  local stats = r.report.stats
  eq(stats.scanned, 7, "phases without a project")
  eq(stats.patched, 0, "nothing below high confidence is written")
  eq(stats.review, 4)
  eq(stats.audit_events, 3, "Retrospective, the nameless phase and ZULU")
  eq(by_key_id(r.report.review), PROPOSALS)
  eq(project_ids(), ORIGINAL_PROJECTS, "project_id untouched")
  expect(r.markdown:find("medium", 1, true), "the Markdown report shows the review items")

  local missing = {}
  for _, event in ipairs(r.report.audit) do
    eq(event.event, "no_project_match")
    missing[#missing + 1] = event.data.phase
  end
  table.sort(missing)
  eq(missing, { 6, 7, 8 })

  -- Still proposals on the next run: review items are never written.
  local again = run_ok("phases_project.lua")
  eq(again.report.stats.review, 4)
  eq(again.report.stats.patched, 0)
end)

test("--min-confidence medium applies the medium guesses; low stays for review", function()
  fixture("fixture.sql")
  local r = run_ok("phases_project.lua", { min_confidence = "medium" })
  eq(r.report.stats.patched, 3)
  eq(r.report.stats.review, 1)
  eq(by_key_id(r.report.review), { PROPOSALS[3] })
  local expected = project_ids()
  eq(expected[2], 1)
  eq(expected[3], 2)
  eq(expected[10], 4)
  eq(expected[5], false, "the low-confidence guess is not written")

  local again = run_ok("phases_project.lua", { min_confidence = "medium" })
  eq(again.report.stats.patched, 0, "idempotent")
  eq(again.report.stats.scanned, 4)

  local low = run_ok("phases_project.lua", { min_confidence = "low" })
  eq(low.report.stats.patched, 1, "--min-confidence low applies the last one")
  eq(project_ids()[5], 3)

  -- Revert the medium run: its three cells go back to NULL, the low run's stays.
  local rv = revert(r.report.run_id)
  eq(rv.exit, 0, rv.output)
  local after = project_ids()
  eq({ after[2], after[3], after[10], after[5] }, { false, false, false, 3 })
end)

test("a project set by hand is never replaced by a guess", function()
  fixture("fixture.sql")
  sql("update phases set project_id = 4 where id = 2")  -- ALPHA-Build, moved to DELTA by a person
  local r = run_ok("phases_project.lua", { min_confidence = "low" })
  eq(r.report.stats.patched, 3, "ids 3, 5 and 10")
  eq(project_ids()[2], 4)
end)
