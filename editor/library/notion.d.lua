---@meta notion
-- notion (stdlib/notion.lua): page ids and relation links of Notion CSV exports.

---@class notion.Link
---@field title string|nil nil for a bare URL
---@field id string|nil the page id as a canonical UUID; nil when the target holds none
---@field url string|nil

---@class notion
local notion = {}

---The page id (canonical UUID) of a Notion URL or text.
---@param text string|nil
---@return string|nil
---@return string? message
function notion.page_id(text) end

---The links of a relation cell, in order; {} for nil or blank.
---@param cell string|nil
---@return notion.Link[]
function notion.relations(cell) end

---The page ids of the cell's links, in order, each once.
---@param cell string|nil
---@return string[]
function notion.relation_ids(cell) end

---The text of a title or relation cell without its link targets.
---@param cell string|nil
---@return string|nil
function notion.title(cell) end

return notion
