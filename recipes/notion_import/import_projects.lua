-- notion_import/import_projects.lua
--
-- Imports the Notion "Projects" database export (CSV) into projects, linking each
-- project to its sub-app through the page URL in its "Sub-app" relation cell.
-- A relation to a page that is not in sub_apps (not exported, or not imported
-- yet) is reported by name, audit("orphan", { name =, missing = }), and the link
-- is left empty; a later re-import fills it once the sub-app exists.
-- Import sub-apps first; a re-import inserts nothing.
--
--   host run recipes/notion_import/import_projects.lua --input projects=projects.csv --dry-run

local convert = require "convert"
local ids = require "ids"
local notion = require "notion"
local page_uuid = require("notion_rows").page_uuid

-- The sub-app the cell links to, if it has been imported; orphans are audited.
local function linked_sub_app(name, cell)
  local relations = cell and notion.relations(cell) or {}
  if #relations > 1 then
    log.warn("project", name, "links", #relations, "sub-apps; the first one is used")
  end
  local relation = relations[1]
  if not relation then return nil end
  local id = map_id("sub_app", ids.canonical_uuid(relation.id))
  if id and read("sub_apps", { id = id }, { columns = { "id" } }) then return id end
  audit("orphan", { name = name, missing = relation.title, missing_id = id, relation = "Sub-app" })
  return nil
end

return {
  name = "notion-import-projects",
  version = "1",
  description = "Notion Projects export -> projects, linked to sub_apps by page URL.",
  input = "projects",
  writes = { projects = { "id", "name", "sub_app_id", "status", "notion_url" } },
  each = function(row)
    local name = row["Name"] and convert.normalize_space(row["Name"])
    local id = page_uuid("project", row["URL"])
    if convert.is_blank(name) or not id then
      audit("skipped", { name = name, url = row["URL"], why = "no name or no page URL" })
      return
    end
    fill_from("projects", {
      id = id,
      name = name,
      sub_app_id = linked_sub_app(name, row["Sub-app"]),
      status = convert.nullif_blank(row["Status"]),
      notion_url = row["URL"],
    }, { reason = "Notion export" })
  end,
  verify = function()
    local orphaned = orphans({ child = "projects", fk = "sub_app_id", parent = "sub_apps" })
    expect(orphaned.count == 0, "every project's sub_app_id names an imported sub-app")
  end,
}
