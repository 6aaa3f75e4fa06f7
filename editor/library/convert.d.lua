---@meta convert
-- convert (stdlib/convert.lua): legacy values into clean text, numbers, dates and
-- booleans. nil in, nil out; data that cannot be read gives nil, message; a wrong
-- Lua type raises.

---@class convert
local convert = {}

---Text without leading and trailing white space: trim("  42 ") == "42".
---@param s string|number|nil
---@return string|nil
function convert.trim(s) end

---Trimmed, each run of white space made one space.
---@param s string|number|nil
---@return string|nil
function convert.normalize_space(s) end

---true for nil and for text of only white space.
---@param v any
---@return boolean
function convert.is_blank(v) end

---nil when blank, else trimmed text (other values as given).
---@param v any
---@return any
function convert.nullif_blank(v) end

---" 42 " -> 42, "480.00" -> 480; "12.5", "n/a", beyond +-2^53 -> nil, message.
---@param v string|number|nil
---@return integer|nil
---@return string? message
function convert.to_integer(v) end

---"45.50" -> 45.5, "1e3" -> 1000; "1,5" -> nil, message.
---@param v string|number|nil
---@return number|nil
---@return string? message
function convert.to_number(v) end

---"45.50" -> 2730 (exact on decimal digits).
---@param v string|number|nil
---@return number|nil
---@return string? message
function convert.minutes_to_seconds(v) end

---"1.5" -> 5400.
---@param v string|number|nil
---@return number|nil
---@return string? message
function convert.hours_to_seconds(v) end

---90 -> 1.5.
---@param v string|number|nil
---@return number|nil
---@return string? message
function convert.seconds_to_minutes(v) end

---"YYYY-MM-DD" from ISO, US "03/18/2024", "March 5, 2024", "5 Mar 2024"; the day must exist.
---@param s string|nil
---@return string|nil
---@return string? message
function convert.parse_date(s) end

---"YYYY-MM-DDTHH:MM:SS[.fff][Z|+hh:mm]"; without a zone in the text, none in the result.
---@param s string|nil
---@return string|nil
---@return string? message
function convert.parse_datetime(s) end

---Notion "A → B" (or "->"): start, finish; a single date: start, nil.
---@param s string|nil
---@return string|nil start
---@return string|nil finish_or_message
function convert.parse_date_range(s) end

---true: true t yes y 1 on checked; false: false f no n 0 off unchecked (any case, trimmed).
---@param v string|number|boolean|nil
---@return boolean|nil
---@return string? message
function convert.parse_bool(v) end

return convert
