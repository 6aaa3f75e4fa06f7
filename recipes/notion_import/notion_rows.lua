-- notion_rows: what the three Notion import recipes of this folder share, loaded
-- with `require "notion_rows"` from the recipe's own folder.
--
--   page_uuid(entity, url)  the row's UUID: the Notion page id of its URL, through
--                           map_id so that it is recorded in the id map; nil
--                           when the URL holds no page id
--   date_or_audit(name, text)
--                           the ISO date of an export cell, nil when blank; a cell
--                           that is not a date is audited ("bad_date") and gives nil

local convert = require "convert"
local ids = require "ids"
local notion = require "notion"

local M = {}

function M.page_uuid(entity, url)
  local page = url and notion.page_id(url)
  return page and map_id(entity, ids.canonical_uuid(page))
end

function M.date_or_audit(name, text)
  if convert.is_blank(text) then return nil end
  local date, err = convert.parse_date(text)
  if not date then audit("bad_date", { name = name, value = text, error = err }) end
  return date
end

return M
