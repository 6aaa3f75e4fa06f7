-- ids: recognising UUIDs and tidying legacy ids before they reach map_id.
--
--   local ids = require "ids"
--   local uuid = ids.canonical_uuid("{5A1E0C3D7B2F4E6A9C8D1B2A3F4E5D61}")
--   --> "5a1e0c3d-7b2f-4e6a-9c8d-1b2a3f4e5d61"
--   local legacy = ids.legacy_integer(row.legacy_id)            -- " 0042 " -> "42"
--   if legacy then patch_if_empty(row, "uuid", map_id("customer", legacy)) end
--
-- map_id keeps a UUID written as 8-4-4-4-12 hex (any case) as that UUID and
-- hashes every other text: canonical_uuid first turns the other spellings of
-- a UUID into that form, and legacy_integer / legacy_key make sure that " 42 ",
-- "042" and 42 are one legacy id, not three.
--
-- Like convert: nil in, nil out (no message); data that cannot be read gives
-- nil, message; an argument of the wrong Lua type raises.
--
--   is_uuid(v)            -> true when v is text in the 8-4-4-4-12 hex form, any case,
--                            nothing around it; false otherwise (never raises).
--                            is_uuid("5A1E0C3D-7B2F-4E6A-9C8D-1B2A3F4E5D61") == true
--                            is_uuid("5a1e0c3d7b2f4e6a9c8d1b2a3f4e5d61") == false (use canonical_uuid)
--   canonical_uuid(s)     -> lower-case "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", or nil, message.
--                            Accepts 32 hex digits with or without the four hyphens, any case,
--                            surrounding white space, braces "{...}" and a "urn:uuid:" prefix.
--                            Any 128-bit value is accepted (version and variant are not checked).
--                            canonical_uuid("5a1e0c3d7b2f4e6a9c8d1b2a3f4e5d61")
--                              == "5a1e0c3d-7b2f-4e6a-9c8d-1b2a3f4e5d61"
--                            canonical_uuid("urn:uuid:5A1E0C3D-...") works; "5a1e-..." (short) -> nil, message
--   compact_uuid(s)       -> the same UUID as 32 lower-case hex digits (Notion's spelling), or nil, message
--   legacy_integer(v)     -> a non-negative integer id as decimal text without leading zeros,
--                            or nil, message. Text so that ids past 2^53 stay exact.
--                            " 0042 " -> "42", 42 -> "42", "0" -> "0",
--                            "12345678901234567890" -> "12345678901234567890",
--                            "n/a", "", "-3", "4.5", 4.5 -> nil, message
--   legacy_key(part, ...) -> the parts joined with ":", one text for a composite legacy id,
--                            or nil, message when a part is nil or blank.
--                            legacy_key("crm", 42) == "crm:42"; legacy_key("crm", " 42 ") == "crm:42"
--                            Text parts are trimmed and otherwise kept ("0042" stays "0042": pass
--                            it through legacy_integer first to drop the zeros); numbers must be
--                            whole. ":" and "\" inside a part are escaped as "\:" and "\\", so
--                            different parts never give the same key:
--                            legacy_key("a:b", "c") == "a\:b:c" ~= legacy_key("a", "b:c") == "a:b\:c"

local M = {}

local HEX8 = string.rep("%x", 8)
local HEX4 = string.rep("%x", 4)
local HEX12 = string.rep("%x", 12)
local HYPHENATED = "^" .. HEX8 .. "%-" .. HEX4 .. "%-" .. HEX4 .. "%-" .. HEX4 .. "%-" .. HEX12 .. "$"
local COMPACT = "^" .. string.rep("%x", 32) .. "$"
local MAX_EXACT = 2 ^ 53

local function show(value)
  local text = tostring(value)
  if #text > 60 then text = text:sub(1, 57) .. "..." end
  return string.format("%q", text)
end

local function trim(s)
  return s:match("^[ \t\r\n\v\f]*(.-)[ \t\r\n\v\f]*$")
end

local function check_type(v, name, allowed)
  local kind = type(v)
  if not allowed[kind] then error("ids." .. name .. ": expected text, got " .. kind, 3) end
end

local TEXT = { string = true, ["nil"] = true }
local TEXT_OR_NUMBER = { string = true, number = true, ["nil"] = true }

function M.is_uuid(v)
  return type(v) == "string" and v:find(HYPHENATED) ~= nil
end

-- The 32 hex digits of a UUID in any accepted spelling, lower case; or nil.
local function hex_digits(s)
  local text = trim(s)
  if text:sub(1, 9):lower() == "urn:uuid:" then text = text:sub(10) end
  text = text:match("^{(.*)}$") or text
  if text:find(HYPHENATED) then text = text:gsub("%-", "") end
  if not text:find(COMPACT) then return nil end
  return text:lower()
end

function M.canonical_uuid(s)
  check_type(s, "canonical_uuid", TEXT)
  if s == nil then return nil end
  local hex = hex_digits(s)
  if not hex then return nil, "not a UUID: " .. show(s) end
  return hex:sub(1, 8) .. "-" .. hex:sub(9, 12) .. "-" .. hex:sub(13, 16) .. "-"
    .. hex:sub(17, 20) .. "-" .. hex:sub(21, 32)
end

function M.compact_uuid(s)
  check_type(s, "compact_uuid", TEXT)
  if s == nil then return nil end
  local hex = hex_digits(s)
  if not hex then return nil, "not a UUID: " .. show(s) end
  return hex
end

-- Decimal text of a whole number, or nil, message.
local function whole_number_text(n)
  if n ~= n or n ~= math.floor(n) or math.abs(n) > MAX_EXACT then
    return nil, "not a whole number: " .. show(n)
  end
  if n == 0 then return "0" end
  return string.format("%.0f", n)
end

function M.legacy_integer(v)
  check_type(v, "legacy_integer", TEXT_OR_NUMBER)
  if v == nil then return nil end
  if type(v) == "number" then
    if v < 0 then return nil, "not a legacy integer id: " .. show(v) end
    local text = whole_number_text(v)
    if not text then return nil, "not a legacy integer id: " .. show(v) end
    return text
  end
  local digits = trim(v):match("^%d+$")
  if not digits then return nil, "not a legacy integer id: " .. show(v) end
  return digits:match("^0*(%d.*)$")  -- keeps the last zero of "000"
end

function M.legacy_key(...)
  local count = select("#", ...)
  if count == 0 then error("ids.legacy_key: expected at least one part", 2) end
  local parts = {}
  for i = 1, count do
    local part = select(i, ...)
    check_type(part, "legacy_key", TEXT_OR_NUMBER)
    local text, err
    if type(part) == "number" then
      text, err = whole_number_text(part)
      if not text then return nil, "legacy_key part " .. i .. ": " .. err end
    else
      text = part and trim(part)
      if text == nil or text == "" then return nil, "legacy_key part " .. i .. " is empty" end
    end
    parts[i] = text:gsub("\\", "\\\\"):gsub(":", "\\:")
  end
  return table.concat(parts, ":")
end

return M
