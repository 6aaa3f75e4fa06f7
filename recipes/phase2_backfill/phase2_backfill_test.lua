-- phase2_backfill: the backfills of a schema change, each checked for its values,
-- its report, its revert and a second run that has nothing left to do.

local function run_ok(file, opts)
  local r = run(file, opts)
  eq(r.exit, 0, file .. " exits 0: " .. r.output)
  expect(r.report, file .. ": a JSON report")
  return r
end

local NULL = "NULL"  -- stands for SQL NULL in the expected arrays below

-- id -> value of one column (NULL for SQL NULL), for the whole table.
local function column(tbl, col)
  local values = {}
  for _, row in ipairs(sql("select id, " .. col .. " as v from " .. tbl .. " order by id")) do
    if row.v == nil then values[row.id] = NULL else values[row.id] = row.v end
  end
  return values
end

-- id -> timestamp as 'YYYY-MM-DD HH24:MI' in UTC (NULL for SQL NULL).
local function times(col)
  return column("projects", "to_char(" .. col .. " at time zone 'UTC', 'YYYY-MM-DD HH24:MI')")
end

-- The data tables of the run's audit events with that name.
local function events(r, name)
  local found = {}
  for _, event in ipairs(r.report.audit) do
    if event.event == name then found[#found + 1] = event.data end
  end
  return found
end

test("users.active: NULL becomes TRUE, an explicit FALSE is kept", function()
  fixture("fixture.sql")
  local dry = run_ok("users_active.lua", { dry_run = true })
  eq(dry.report.stats.patched, 3)
  eq(column("users", "active"), { true, NULL, false, NULL, NULL, false }, "the dry run wrote nothing")

  local r = run_ok("users_active.lua")
  eq(r.report.stats.scanned, 3)
  eq(r.report.stats.patched, 3)
  eq(r.report.stats.protected, 0)
  eq(column("users", "active"), { true, true, false, true, true, false })
  expect(r.markdown:find("host revert " .. r.report.run_id, 1, true), "the report names the revert command")

  local again = run_ok("users_active.lua")
  eq(again.report.stats.patched, 0, "nothing left to change")

  eq(revert(r.report.run_id).exit, 0)
  eq(column("users", "active"), { true, NULL, false, NULL, NULL, false }, "the NULLs are back")
end)

test("duration_minutes -> duration_seconds; NULL stays NULL; a hand-set value is kept", function()
  fixture("fixture.sql")
  local r = run_ok("time_entries_seconds.lua", { batch_size = 2 })  -- several committed batches
  eq(r.report.stats.scanned, 5)
  eq(r.report.stats.patched, 5)
  eq(r.report.stats.audit_events, 0, "no fraction of a second in the fixture")
  eq(column("time_entries", "duration_seconds"), { 5400, 2730, NULL, 15, 28800, 1799, 450, NULL })

  local again = run_ok("time_entries_seconds.lua")
  eq(again.report.stats.scanned, 0)
  eq(again.report.stats.patched, 0)

  eq(revert(r.report.run_id).exit, 0)
  eq(column("time_entries", "duration_seconds"), { NULL, NULL, NULL, NULL, NULL, 1799, NULL, NULL })
end)

test("tasks.assignee_id copied from owner_id only when that user exists", function()
  fixture("fixture.sql")
  local r = run_ok("tasks_assignee.lua")
  eq(r.report.stats.scanned, 5)
  eq(r.report.stats.patched, 3)
  local missing = events(r, "missing_owner")
  table.sort(missing, function(a, b) return a.task < b.task end)
  eq(missing, { { task = 3, owner = 99 }, { task = 7, owner = 42 } })
  eq(column("tasks", "assignee_id"), { 1, 2, NULL, NULL, 1, 5, NULL })

  local again = run_ok("tasks_assignee.lua")
  eq(again.report.stats.patched, 0)
  eq(again.report.stats.audit_events, 2, "the dangling owners are reported until someone decides")

  eq(revert(r.report.run_id).exit, 0)
  eq(column("tasks", "assignee_id"), { NULL, NULL, NULL, NULL, 1, NULL, NULL })
end)

test("started_at from the earliest assignment, else created_at; completed_at when all done", function()
  fixture("fixture.sql")
  local started = run_ok("projects_started_at.lua")
  eq(started.report.stats.scanned, 5)
  eq(started.report.stats.patched, 5)
  eq(times("started_at"), {
    "2024-01-08 09:00",  -- earliest of three assignments (one without a date)
    "2024-01-20 09:00",
    "2024-03-01 08:00",  -- no assignment: created_at
    "2023-12-01 09:00",  -- already set: untouched
    "2024-05-02 09:00",
    "2023-06-01 09:00",  -- no assignment: created_at
  })

  local completed = run_ok("projects_completed_at.lua")
  eq(completed.report.stats.scanned, 5)
  eq(completed.report.stats.patched, 2)
  eq(events(completed, "done_without_date"), { { project = 5, assignment = 7 } })
  eq(times("completed_at"), {
    "2024-03-15 17:30",  -- all three done: the latest done_at
    NULL,                -- one assignment still open
    NULL,                -- no assignments
    "2024-04-01 11:00",
    NULL,                -- done, but without a date
    "2024-01-31 18:00",  -- already set: untouched
  })

  eq(run_ok("projects_started_at.lua").report.stats.patched, 0)
  eq(run_ok("projects_completed_at.lua").report.stats.patched, 0)

  eq(revert(completed.report.run_id).exit, 0)
  eq(times("completed_at"), { NULL, NULL, NULL, NULL, NULL, "2024-01-31 18:00" })
  eq(times("started_at")[1], "2024-01-08 09:00", "reverting one run leaves the other's cells")
end)

test("legacy customer ids get stable UUIDs, persisted in the id map", function()
  fixture("fixture.sql")
  local dry = run_ok("customers_uuid.lua", { dry_run = true })
  eq(dry.report.stats.ids_mapped, 3)

  local r = run_ok("customers_uuid.lua")
  eq(r.report.stats.scanned, 5)
  eq(r.report.stats.patched, 3)
  eq(r.report.stats.ids_mapped, 3, "the dry run stored no mapping")
  local unmapped = events(r, "unmapped_customer")
  table.sort(unmapped, function(a, b) return a.customer < b.customer end)
  eq(unmapped, { { customer = 4, legacy_id = "n/a" }, { customer = 5 } })

  local uuids = column("customers", "uuid::text")
  eq(uuids[4], NULL)
  eq(uuids[5], NULL)
  eq(uuids[6], "3f0c9a52-6c1e-4d8b-9a57-2b1f0e4d6c06", "an existing uuid is kept")
  expect(uuids[1] ~= uuids[2] and uuids[2] ~= uuids[3] and uuids[1] ~= uuids[3], "distinct UUIDs")
  for id, legacy in pairs({ [1] = "1001", [2] = "1002", [3] = "1003" }) do
    local mapped = sql("select uuid::text as u from host_ledger.customer_id_map where legacy_id = $1", legacy)
    eq(#mapped, 1, "mapping stored for " .. legacy)
    eq(mapped[1].u, uuids[id], "customers.uuid is the mapped UUID of " .. legacy)
  end

  -- Revert clears the cells; the mapping stays, so a new run gives the same UUIDs.
  eq(revert(r.report.run_id).exit, 0)
  eq(sql("select count(*) as n from customers where uuid is not null")[1].n, 1)
  local again = run_ok("customers_uuid.lua")
  eq(again.report.stats.patched, 3)
  eq(again.report.stats.ids_mapped, 0, "every legacy id already has its mapping")
  eq(column("customers", "uuid::text"), uuids, "the same UUIDs as before")

  local last = run_ok("customers_uuid.lua")
  eq(last.report.stats.scanned, 2, "only the two unmappable customers are left")
  eq(last.report.stats.patched, 0)
end)

test("an existing id mapping always wins", function()
  fixture("fixture.sql")
  local first = run_ok("customers_uuid.lua")
  eq(revert(first.report.run_id).exit, 0)
  -- An earlier migration tool had given legacy customer 1002 another UUID.
  sql("update host_ledger.customer_id_map set uuid = 'c0ffee00-0000-4000-8000-000000001002' where legacy_id = '1002'")
  local r = run_ok("customers_uuid.lua")
  eq(r.report.stats.patched, 3)
  eq(r.report.stats.ids_mapped, 0)
  eq(sql("select uuid::text as u from customers where id = 2")[1].u, "c0ffee00-0000-4000-8000-000000001002")
end)

-- projects vs projects_new over the synced columns: ids that differ or are missing.
local function drift()
  local ids = {}
  for _, row in ipairs(sql([[
    select coalesce(p.id, n.id) as id
      from projects p full join projects_new n on n.id = p.id
     where (p.code, p.name, p.status, p.customer_id, p.created_at)
           is distinct from (n.code, n.name, n.status, n.customer_id, n.created_at)
     order by 1]])) do
    ids[#ids + 1] = row.id
  end
  return ids
end

test("projects_new kept in sync with fill_from and a since watermark", function()
  fixture("fixture.sql")
  eq(drift(), { 1, 2, 3, 4, 5, 6 })
  local dry = run_ok("projects_shadow_sync.lua", { dry_run = true })
  eq(dry.report.stats.inserted, 5)
  eq(dry.report.stats.patched, 1)
  eq(drift(), { 1, 2, 3, 4, 5, 6 }, "the dry run wrote nothing")

  local full = run_ok("projects_shadow_sync.lua")
  eq(full.report.stats.scanned, 6)
  eq(full.report.stats.inserted, 5, "the five projects not synced before")
  eq(full.report.stats.patched, 1, "BRAVO's status, empty in projects_new")
  eq(drift(), {})

  local nothing = run_ok("projects_shadow_sync.lua", { vars = { since = "2024-06-01" } })
  eq(nothing.report.stats.scanned, 0, "nothing was updated since the watermark")

  -- Work in the old app after the watermark: a status set, a project added.
  sql("update projects set status = 'on hold', updated_at = '2024-06-10 09:00:00+00' where id = 3")
  sql([[insert into projects (id, code, name, status, customer_id, created_at, updated_at)
        values (7, 'GOLF', 'Golf – Zoë''s pilot', 'planned', 1, '2024-06-05 10:00:00+00', '2024-06-05 10:00:00+00')]])
  local incremental = run_ok("projects_shadow_sync.lua", { vars = { since = "2024-06-01" } })
  eq(incremental.report.stats.scanned, 2, "only the rows updated since the watermark")
  eq(incremental.report.stats.inserted, 1)
  eq(incremental.report.stats.patched, 1)
  eq(drift(), {})
  eq(sql("select name from projects_new where id = 7")[1].name, "Golf – Zoë's pilot")

  local again = run_ok("projects_shadow_sync.lua", { vars = { since = "2024-06-01" } })
  eq(again.report.stats.inserted, 0, "idempotent")
  eq(again.report.stats.patched, 0, "idempotent")

  eq(revert(incremental.report.run_id).exit, 0)
  eq(drift(), { 3, 7 }, "the incremental run is undone, the full sync stays")
  eq(sql("select count(*) as n from projects_new")[1].n, 6)
end)

test("a since value that is not a date is refused before anything runs", function()
  fixture("fixture.sql")
  local r = run("projects_shadow_sync.lua", { vars = { since = "2024-06-01' or true --" } })
  eq(r.exit, 1, r.output)
  expect(r.output:find("since", 1, true), "the error names the variable")
  eq(sql("select count(*) as n from projects_new")[1].n, 1)
end)

test("verification: counts, checksums, rows and references between old and new", function()
  fixture("fixture.sql")
  local before = run("verify_projects_new.lua")
  eq(before.exit, 3, "nothing synced yet: verification fails: " .. before.output)
  eq(before.report.status, "verify_failed")
  eq(before.report.stats.patched, 0)
  eq(before.report.stats.inserted, 0)
  local failed = 0
  for _, check in ipairs(before.report.verify) do
    if not check.ok then failed = failed + 1 end
  end
  eq(#before.report.verify, 5)
  eq(failed, 5, "count, checksum, same_rows and both reference checks fail")
  local missing = {}
  for _, data in ipairs(events(before, "missing_in_shadow")) do missing[#missing + 1] = data.id end
  table.sort(missing)
  eq(missing, { 1, 3, 4, 5, 6 })
  eq(events(before, "differs_in_shadow"), { { id = 2, column = "status", projects = "active" } })

  run_ok("projects_shadow_sync.lua")
  local after = run_ok("verify_projects_new.lua")
  eq(after.report.status, "succeeded")
  for _, check in ipairs(after.report.verify) do eq(check.ok, true, check.check) end
  eq(after.report.stats.audit_events, 0)

  -- The new app renames a project: fill_from never overwrites, verification notices.
  sql("update projects_new set name = 'Alpha onboarding (new app)' where id = 1")
  local drifted = run("verify_projects_new.lua")
  eq(drifted.exit, 3)
  eq(events(drifted, "differs_in_shadow"), {
    { id = 1, column = "name", projects = "Alpha onboarding", projects_new = "Alpha onboarding (new app)" },
  })
  local still_ok = {}
  for _, check in ipairs(drifted.report.verify) do
    if check.ok then still_ok[#still_ok + 1] = check.check end
  end
  eq(#still_ok, 3, "row count and both reference checks still pass")
end)
