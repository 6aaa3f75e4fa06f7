-- notion_import/import_phases.lua
--
-- Imports the Notion "Phases" database export (CSV) into phases and links each
-- phase to its projects through the page URLs in its "Projects" relation cell
-- (one cell may hold several, and titles may contain commas):
--   * phase_projects gets one row per linked project that exists in projects;
--   * phases.project_id is set when the phase belongs to exactly one project;
--   * a relation to a page that is not in projects (not in the export, or not
--     imported yet) is reported by name, audit("orphan", { name =, missing = }).
-- Ids are Notion page ids through map_id, so a re-import inserts nothing and only
-- fills what is still empty (for example the links to projects imported since).
-- Import projects first.
--
--   host run recipes/notion_import/import_phases.lua --input phases=phases.csv --dry-run

local convert = require "convert"
local ids = require "ids"
local notion = require "notion"
local rows = require "notion_rows"
local page_uuid, date_or_audit = rows.page_uuid, rows.date_or_audit

-- Ids of the imported projects the cell links to; the others are audited.
local function linked_projects(name, cell)
  local linked = {}
  for _, relation in ipairs(cell and notion.relations(cell) or {}) do
    local id = map_id("project", ids.canonical_uuid(relation.id))
    if id and read("projects", { id = id }, { columns = { "id" } }) then
      linked[#linked + 1] = id
    else
      audit("orphan", { name = name, missing = relation.title, missing_id = id, relation = "Projects" })
    end
  end
  return linked
end

return {
  name = "notion-import-phases",
  version = "1",
  description = "Notion Phases export -> phases and phase_projects, linked by page URL.",
  input = "phases",
  writes = {
    phases = { "id", "name", "project_id", "status", "starts_on", "notion_url" },
    phase_projects = { "phase_id", "project_id" },
  },
  each = function(row)
    local name = row["Name"] and convert.normalize_space(row["Name"])
    local id = page_uuid("phase", row["URL"])
    if convert.is_blank(name) or not id then
      audit("skipped", { name = name, url = row["URL"], why = "no name or no page URL" })
      return
    end
    local projects = linked_projects(name, row["Projects"])
    fill_from("phases", {
      id = id,
      name = name,
      project_id = #projects == 1 and projects[1] or nil,
      status = convert.nullif_blank(row["Status"]),
      starts_on = date_or_audit(name, row["Start date"]),
      notion_url = row["URL"],
    }, { reason = "Notion export" })
    for _, project_id in ipairs(projects) do
      insert_if_absent("phase_projects", { phase_id = id, project_id = project_id },
        { reason = "Notion relation Projects" })
    end
  end,
  verify = function()
    local loose = orphans({ child = "phases", fk = "project_id", parent = "projects" })
    expect(loose.count == 0, "every phases.project_id names an imported project")
    loose = orphans({ child = "phase_projects", fk = "project_id", parent = "projects" })
    expect(loose.count == 0, "every phase_projects link names an imported project")
  end,
}
