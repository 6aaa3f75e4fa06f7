-- notion_import: three Notion CSV exports (one with a BOM, one with CRLF line
-- ends, a title with a comma, relation cells with several page URLs) become
-- rows keyed by their Notion page ids, linked through the relation URLs.

local SUB_APP = {
  mobile = "5a1e0c3d-7b2f-4e6a-9c8d-1b2a3f4e5d61",
  billing = "5a1e0c3d-7b2f-4e6a-9c8d-1b2a3f4e5d62",
  kiosk = "5a1e0c3d-7b2f-4e6a-9c8d-1b2a3f4e5d63",
}
local PROJECT = {
  onboarding = "7b2f9e1c-4d3a-4b5c-8e6f-0a1b2c3d4e01",
  billing = "7b2f9e1c-4d3a-4b5c-8e6f-0a1b2c3d4e02",
  loyalty = "7b2f9e1c-4d3a-4b5c-8e6f-0a1b2c3d4e03",
  warehouse = "7b2f9e1c-4d3a-4b5c-8e6f-0a1b2c3d4e04",
  offline = "7b2f9e1c-4d3a-4b5c-8e6f-0a1b2c3d4e05",
}
local PHASE = {
  discovery = "9c3a6b2e-1f0d-4c7a-8b5e-2d1c0f9a8b01",
  build = "9c3a6b2e-1f0d-4c7a-8b5e-2d1c0f9a8b02",
  launch = "9c3a6b2e-1f0d-4c7a-8b5e-2d1c0f9a8b03",
  qa = "9c3a6b2e-1f0d-4c7a-8b5e-2d1c0f9a8b04",
  retro = "9c3a6b2e-1f0d-4c7a-8b5e-2d1c0f9a8b05",
  rollout = "9c3a6b2e-1f0d-4c7a-8b5e-2d1c0f9a8b06",
}

local IMPORTS = {
  sub_apps = { recipe = "import_sub_apps.lua", inputs = { sub_apps = "sub_apps.csv" } },
  projects = { recipe = "import_projects.lua", inputs = { projects = "projects.csv" } },
  phases = { recipe = "import_phases.lua", inputs = { phases = "phases.csv" } },
}

local function import(which, opts)
  local spec = IMPORTS[which]
  local options = { inputs = spec.inputs }
  for k, v in pairs(opts or {}) do options[k] = v end
  local r = run(spec.recipe, options)
  eq(r.exit, 0, spec.recipe .. " exits 0: " .. r.output)
  expect(r.report, spec.recipe .. ": a JSON report")
  return r
end

local function one(query, ...)
  return sql(query, ...)[1]
end

local function count(tbl)
  return one("select count(*) as n from " .. tbl).n
end

-- { {name =, missing =}, ... } of the run's orphan events, sorted by name.
local function orphans_of(r)
  local found = {}
  for _, event in ipairs(r.report.audit) do
    if event.event == "orphan" then
      found[#found + 1] = { name = event.data.name, missing = event.data.missing }
    end
  end
  table.sort(found, function(a, b)
    if a.name ~= b.name then return a.name < b.name end
    return a.missing < b.missing
  end)
  return found
end

-- phase name -> "project + project" (ordered by project id), from phase_projects.
local function links()
  local result = {}
  for _, row in ipairs(sql([[
    select ph.name, string_agg(p.name, ' + ' order by p.id) as projects
      from phase_projects pp
      join phases ph on ph.id = pp.phase_id
      join projects p on p.id = pp.project_id
     group by ph.name]])) do
    result[row.name] = row.projects
  end
  return result
end

test("dry run, then import of sub-apps: new pages inserted, a hand-made row only filled", function()
  fixture("fixture.sql")
  local dry = import("sub_apps", { dry_run = true })
  eq(dry.report.stats.inserted, 2)
  eq(dry.report.stats.patched, 3)
  eq(count("sub_apps"), 1, "the dry run left nothing behind")

  local r = import("sub_apps")
  eq(r.report.stats.scanned, 3)
  eq(r.report.stats.inserted, dry.report.stats.inserted, "the dry run told the truth")
  eq(r.report.stats.patched, dry.report.stats.patched)
  eq(r.report.stats.ids_mapped, 3, "one id mapping per page")
  eq(r.report.inserts, { { table = "sub_apps", count = 2 } })

  local billing = one("select name, owner, launched_on::text as d, status, notion_url from sub_apps where id = $1",
    SUB_APP.billing)
  eq(billing.name, "Billing Portal")
  eq(billing.owner, "Marta Nowak", "the owner typed by hand is kept (the export has none)")
  eq(billing.d, "2024-03-18", "03/18/2024 read as month/day/year")
  eq(billing.status, "Live", "the blank status is filled")
  eq(billing.notion_url, "https://www.notion.so/acme/Billing-Portal-5a1e0c3d7b2f4e6a9c8d1b2a3f4e5d62")

  local mobile = one("select name, launched_on::text as d from sub_apps where id = $1", SUB_APP.mobile)
  eq(mobile.name, "Mobile App")
  eq(mobile.d, "2024-03-05", "\"March 5, 2024\" (a quoted cell with a comma)")
  local kiosk = one("select name, owner, launched_on from sub_apps where id = $1", SUB_APP.kiosk)
  eq(kiosk.name, "Café Zoë Kiosk")
  eq(kiosk.owner, "Zoë Çelik")
  eq(kiosk.launched_on, nil, "an empty cell stays NULL")
end)

test("all three exports: relations become links, orphans are reported by name", function()
  fixture("fixture.sql")
  import("sub_apps")

  local projects = import("projects")
  eq(projects.report.stats.scanned, 5, "the BOM does not hide the header")
  eq(projects.report.stats.inserted, 5)
  eq(orphans_of(projects), { { name = "Data Warehouse", missing = "Legacy CRM" } })
  eq(projects.report.status, "succeeded")

  local billing = one("select name, sub_app_id::text as s, status from projects where id = $1", PROJECT.billing)
  eq(billing.name, "Billing, Invoicing & Tax", "a title with a comma")
  eq(billing.s, SUB_APP.billing)
  eq(billing.status, "Planning")
  eq(one("select sub_app_id::text as s from projects where id = $1", PROJECT.onboarding).s, SUB_APP.mobile)
  eq(one("select sub_app_id::text as s from projects where id = $1", PROJECT.loyalty).s, SUB_APP.kiosk)
  local warehouse = one("select sub_app_id, status from projects where id = $1", PROJECT.warehouse)
  eq(warehouse.sub_app_id, nil, "the link to a page not in the export is left empty")
  eq(warehouse.status, "On hold")
  local offline = one("select name, sub_app_id, status from projects where id = $1", PROJECT.offline)
  eq(offline.name, "Offline Mode")
  eq(offline.status, nil, "a blank cell is no status")

  local phases = import("phases")
  local stats = phases.report.stats
  eq(stats.scanned, 6)
  eq(stats.inserted, 12, "6 phases and 6 phase_projects links")
  eq(phases.report.inserts, { { table = "phase_projects", count = 6 }, { table = "phases", count = 6 } })
  eq(orphans_of(phases), {
    { name = "QA sign-off", missing = "Archived Project" },
    { name = "Rollout – Zoë's team", missing = "Archived Project" },
  })
  local bad_dates = {}
  for _, event in ipairs(phases.report.audit) do
    if event.event == "bad_date" then bad_dates[#bad_dates + 1] = event.data.name .. ": " .. event.data.value end
  end
  eq(bad_dates, { "Retro: TBD" })
  eq(stats.audit_events, 3)
  for _, check in ipairs(phases.report.verify) do eq(check.ok, true, check.check) end

  eq(links(), {
    ["Discovery"] = "Onboarding Revamp",
    ["Build"] = "Onboarding Revamp + Billing, Invoicing & Tax",
    ["Launch"] = "Café Zoë Loyalty",
    ["Rollout – Zoë's team"] = "Data Warehouse + Offline Mode",
  })
  local function phase(id)
    return one("select name, project_id::text as p, status, starts_on::text as d from phases where id = $1", id)
  end
  eq(phase(PHASE.discovery), { name = "Discovery", p = PROJECT.onboarding, status = "Done", d = "2024-01-08" })
  eq(phase(PHASE.build), { name = "Build", status = "In progress", d = "2024-02-01" },
    "two projects: only the join table links them")
  eq(phase(PHASE.launch), { name = "Launch", p = PROJECT.loyalty, status = "Not started", d = "2024-04-15" })
  eq(phase(PHASE.qa), { name = "QA sign-off", status = "Not started" })
  eq(phase(PHASE.retro), { name = "Retro" })
  eq(phase(PHASE.rollout), { name = "Rollout – Zoë's team", status = "Blocked", d = "2024-05-02" })
end)

test("re-importing the same exports inserts and changes nothing", function()
  fixture("fixture.sql")
  for _, which in ipairs({ "sub_apps", "projects", "phases" }) do import(which) end
  local before = one([[select (select md5(string_agg(s::text, '|' order by s.id)) from sub_apps s)
                           || (select md5(string_agg(p::text, '|' order by p.id)) from projects p)
                           || (select md5(string_agg(f::text, '|' order by f.id)) from phases f)
                           || (select count(*) from phase_projects)::text as h]]).h
  for _, which in ipairs({ "sub_apps", "projects", "phases" }) do
    local again = import(which)
    eq(again.report.stats.inserted, 0, which .. ": nothing inserted")
    eq(again.report.stats.patched, 0, which .. ": nothing filled")
    eq(again.report.stats.ids_mapped, 0, which .. ": every id already mapped")
    eq(again.report.changes, {}, which)
    eq(again.report.inserts, {}, which)
  end
  local after = one([[select (select md5(string_agg(s::text, '|' order by s.id)) from sub_apps s)
                          || (select md5(string_agg(p::text, '|' order by p.id)) from projects p)
                          || (select md5(string_agg(f::text, '|' order by f.id)) from phases f)
                          || (select count(*) from phase_projects)::text as h]]).h
  eq(after, before)
end)

test("phases imported before projects: every link is an orphan until a re-import fills it", function()
  fixture("fixture.sql")
  import("sub_apps")
  local early = import("phases")
  eq(early.report.stats.inserted, 6, "the phases, without links")
  eq(#orphans_of(early), 8, "every relation points to a project not imported yet")
  eq(count("phase_projects"), 0)
  eq(one("select count(*) as n from phases where project_id is not null").n, 0)

  import("projects")
  local late = import("phases")
  eq(late.report.stats.inserted, 6, "the six links")
  eq(late.report.stats.patched, 2, "project_id of Discovery and Launch, still empty, is filled")
  eq(#orphans_of(late), 2, "only the links to the archived project remain orphans")
  eq(one("select project_id::text as p from phases where id = $1", PHASE.launch).p, PROJECT.loyalty)

  local last = import("phases")
  eq(last.report.stats.inserted, 0)
  eq(last.report.stats.patched, 0)
end)

test("reverting the imports, newest first, restores the database exactly", function()
  fixture("fixture.sql")
  local original = one("select s::text as row from sub_apps s").row
  local runs = {}
  for _, which in ipairs({ "sub_apps", "projects", "phases" }) do
    runs[#runs + 1] = import(which).report.run_id
  end
  for i = #runs, 1, -1 do
    local rv = revert(runs[i])
    eq(rv.exit, 0, rv.output)
  end
  eq(count("phase_projects"), 0)
  eq(count("phases"), 0)
  eq(count("projects"), 0)
  eq(count("sub_apps"), 1)
  eq(one("select s::text as row from sub_apps s").row, original, "the hand-made row is back as it was")
end)
