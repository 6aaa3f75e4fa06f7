---@meta ids
-- ids (stdlib/ids.lua): recognising UUIDs and tidying legacy ids before map_id.

---@class ids
local ids = {}

---true when v is text in the 8-4-4-4-12 hex form, any case; never raises.
---@param v any
---@return boolean
function ids.is_uuid(v) end

---Lower-case hyphenated UUID from 32 hex digits (hyphens, braces, "urn:uuid:" allowed).
---@param s string|nil
---@return string|nil
---@return string? message
function ids.canonical_uuid(s) end

---The same UUID as 32 lower-case hex digits (Notion's spelling).
---@param s string|nil
---@return string|nil
---@return string? message
function ids.compact_uuid(s) end

---A non-negative integer id as decimal text without leading zeros: " 0042 " -> "42".
---@param v string|number|nil
---@return string|nil
---@return string? message
function ids.legacy_integer(v) end

---The parts joined with ":" (":" and "\" escaped): legacy_key("crm", 42) == "crm:42".
---@param ... string|number
---@return string|nil
---@return string? message
function ids.legacy_key(...) end

return ids
