-- notion_import/import_sub_apps.lua
--
-- Imports the Notion "Sub-apps" database export (CSV) into sub_apps. The row id
-- is the Notion page id from the URL column, through map_id, so importing the
-- same export again finds the same rows: fill_from inserts the new ones and
-- only fills the empty cells of rows that already exist (a value typed by a
-- person is never replaced). Dates such as "March 5, 2024" or "03/18/2024"
-- become ISO dates; a date that cannot be read is audited and left empty.
--
--   host run recipes/notion_import/import_sub_apps.lua --input sub_apps=sub_apps.csv --dry-run

local convert = require "convert"
local rows = require "notion_rows"
local page_uuid, date_or_audit = rows.page_uuid, rows.date_or_audit

return {
  name = "notion-import-sub-apps",
  version = "1",
  description = "Notion Sub-apps export -> sub_apps (insert new pages, fill empty cells).",
  input = "sub_apps",
  writes = { sub_apps = { "id", "name", "owner", "launched_on", "status", "notion_url" } },
  each = function(row)
    local name = row["Name"] and convert.normalize_space(row["Name"])
    local id = page_uuid("sub_app", row["URL"])
    if convert.is_blank(name) or not id then
      audit("skipped", { name = name, url = row["URL"], why = "no name or no page URL" })
      return
    end
    fill_from("sub_apps", {
      id = id,
      name = name,
      owner = convert.nullif_blank(row["Owner"]),
      launched_on = date_or_audit(name, row["Launched"]),
      status = convert.nullif_blank(row["Status"]),
      notion_url = row["URL"],
    }, { reason = "Notion export" })
  end,
}
