-- convert: reading the values of legacy columns and exports (CSV, Notion, old
-- CRMs) into clean text, numbers, dates and booleans.
--
--   local convert = require "convert"
--   local name = convert.normalize_space(row["Name"])        -- " Café  Zoë " -> "Café Zoë"
--   local day, err = convert.parse_date(row["Launched"])     -- "March 5, 2024" -> "2024-03-05"
--   if not day then audit("bad_date", { value = row["Launched"], error = err }) end
--
-- Conventions shared by every function:
--   * nil in, nil out: a missing value is not a bad one, so the parsers and the
--     unit conversions return plain nil (no message) for nil.
--   * Data that cannot be read returns nil plus a message naming the value,
--     e.g. nil, 'not a date: "TBD"'. Nothing here raises for bad data.
--   * An argument of the wrong Lua type (a table where text is expected) is a
--     bug in the recipe, not in the data: that raises an error.
--   * White space means ASCII white space (space, tab, CR, LF, VT, FF), the
--     same test as the host's EMPTY on text columns; every other byte, UTF-8
--     text and the no-break space included, is kept as it is.
--
-- Text (the text functions read a number as its tostring text)
--   trim(s)               -> s without leading and trailing white space
--                            trim("  42 ") == "42"; trim(nil) == nil
--   normalize_space(s)    -> trimmed, each run of white space made one space
--                            normalize_space(" Café \t Zoë\n") == "Café Zoë"
--   is_blank(v)           -> true for nil and for text of only white space;
--                            false for everything else (0, false, "x")
--   nullif_blank(v)       -> nil when blank, else trimmed text (other values as given)
--                            nullif_blank("  ") == nil; nullif_blank(" Live ") == "Live"
--
-- Numbers (text or numbers; decimal notation only, no hex, inf or nan)
--   to_integer(v)         -> integer, or nil, message
--                            " 42 " -> 42, "-7" -> -7, "480.00" -> 480 (a zero fraction is fine),
--                            "12.5", "n/a", "", "1e3", "0x10" -> nil, message;
--                            beyond +-2^53 (not exact as a Lua number) -> nil, message
--   to_number(v)          -> number, or nil, message
--                            "45.50" -> 45.5, "-.5" -> -0.5, "1e3" -> 1000, "1,5" -> nil, message
--
-- Durations. The arithmetic is done on the decimal digits, so the result is
-- the exact value whenever it is whole (1.1 minutes is 66 seconds, not
-- 66.00000000000001) and the nearest number to it otherwise (0.01 minutes is
-- 0.6 seconds). Rounding to whole seconds is the caller's choice:
-- math.floor(s + 0.5). Numbers are read through their 15-digit decimal form.
--   minutes_to_seconds(v) -> "45.50" -> 2730, 45 -> 2700, "0.25" -> 15, nil -> nil,
--                            "abc" -> nil, message
--   hours_to_seconds(v)   -> "1.5" -> 5400, 8 -> 28800
--   seconds_to_minutes(v) -> 90 -> 1.5, "2730" -> 45.5, 100 -> 1.6666666666666667
--
-- Dates. A result is ISO text that PostgreSQL casts as is.
--   parse_date(s)         -> "YYYY-MM-DD", or nil, message. Accepts
--                              "2024-02-01"              ISO (also 2024-2-1)
--                              "2024-02-01T10:00:00Z"    ISO with a time part: the date as written
--                              "03/18/2024", "3/8/2024"  month first, as US Notion exports
--                              "March 5, 2024", "Jan 8, 2024", "Sept. 5th 2024"
--                              "5 March 2024", "5 Mar 2024"
--                              "March 5, 2024 10:00 AM"  a Notion date with a time: the date
--                            Month names are English, any case. The day must exist:
--                            "02/30/2024" and "2023-02-29" -> nil, message; "2024-02-29" is fine.
--                            A time zone does not move the date: it is the date as written.
--                            "TBD", "" -> nil, message; a range ("A → B") -> nil, message
--   parse_datetime(s)     -> "YYYY-MM-DDTHH:MM:SS[.fff][Z|+hh:mm]", or nil, message
--                              "2024-02-01T10:00:00Z"       -> "2024-02-01T10:00:00Z"
--                              "March 5, 2024 3:30 PM"      -> "2024-03-05T15:30:00"
--                              "2024-02-01 10:00+01"        -> "2024-02-01T10:00:00+01:00"
--                              "March 5, 2024 9:00 AM (UTC)" -> "2024-03-05T09:00:00Z"
--                              "2024-02-01"                 -> "2024-02-01T00:00:00" (midnight)
--                            Without a zone in the text the result has none (local time).
--   parse_date_range(s)   -> start, finish (both "YYYY-MM-DD"), or nil, message
--                              "January 8, 2024 → February 1, 2024" -> "2024-01-08", "2024-02-01"
--                              "March 5, 2024 10:00 AM → 11:30 AM"  -> "2024-03-05", "2024-03-05"
--                              "March 5, 2024" (a single date)      -> "2024-03-05", nil
--                            "->" is accepted for "→"; an end before the start is an error.
--
-- Booleans
--   parse_bool(v)         -> true/false, or nil, message. Any case, trimmed:
--                            true:  true t yes y 1 on checked   (Notion checkboxes: "Yes")
--                            false: false f no n 0 off unchecked (Notion: "No")
--                            booleans pass through; the numbers 1 and 0 are read too.

local M = {}

local SPACE = "[ \t\r\n\v\f]"
local NOT_SPACE = "[^ \t\r\n\v\f]"
local MAX_EXACT = 2 ^ 53

-- A value for a message: quoted, and cut when long.
local function show(value)
  local text = tostring(value)
  if #text > 60 then text = text:sub(1, 57) .. "..." end
  return string.format("%q", text)
end

-- The text of v for a function that reads text: strings as they are, numbers
-- through tostring, nil as nil. Anything else is a bug in the caller.
local function text_arg(v, name)
  local kind = type(v)
  if kind == "string" or kind == "nil" then return v end
  if kind == "number" then return tostring(v) end
  error("convert." .. name .. ": expected text, got " .. kind, 3)
end

local function number_arg(v, name)
  local kind = type(v)
  if kind == "string" or kind == "number" or kind == "nil" then return v end
  error("convert." .. name .. ": expected text or a number, got " .. kind, 3)
end

local function strip(s)
  local first = s:find(NOT_SPACE)
  if not first then return "" end
  local last = #s
  while s:find("^" .. SPACE, last) do last = last - 1 end
  return s:sub(first, last)
end

function M.trim(s)
  s = text_arg(s, "trim")
  if s == nil then return nil end
  return strip(s)
end

function M.normalize_space(s)
  s = text_arg(s, "normalize_space")
  if s == nil then return nil end
  return (strip(s):gsub(SPACE .. "+", " "))
end

function M.is_blank(v)
  if v == nil then return true end
  return type(v) == "string" and not v:find(NOT_SPACE)
end

function M.nullif_blank(v)
  if M.is_blank(v) then return nil end
  if type(v) == "string" then return strip(v) end
  return v
end

-- Numbers ------------------------------------------------------------------

-- POW10[i] == 10^i, built by multiplication so that every entry is exact.
local POW10 = { [0] = 1 }
for i = 1, 22 do POW10[i] = POW10[i - 1] * 10 end

-- Splits decimal text into its parts, or nil when it is not decimal notation:
-- sign ("" or "-"), integer digits, fraction digits, exponent (a number).
local function split_decimal(text)
  local sign, rest = text:match("^([+-]?)(.*)$")
  local int, frac, tail = rest:match("^(%d*)%.?(%d*)(.*)$")
  if not int or int == "" and frac == "" then return nil end
  local exponent = 0
  if tail ~= "" then
    local e = tail:match("^[eE]([+-]?%d+)$")
    if not e then return nil end
    exponent = tonumber(e)
  end
  return sign == "-" and "-" or "", int, frac, exponent
end

-- A number, or (for nil) nil, or nil, message; nan and infinities are refused.
local function read_number(v)
  if type(v) == "number" then
    if v ~= v or v == math.huge or v == -math.huge then return nil, "not a finite number: " .. show(v) end
    if v == 0 then return 0 end  -- no -0
    return v
  end
  local text = strip(v)
  local sign = split_decimal(text)
  local n = sign and tonumber((text:gsub("^%+", "")))
  if not n then return nil, "not a number: " .. show(v) end
  if n == math.huge or n == -math.huge then return nil, "number out of range: " .. show(v) end
  if n == 0 then n = 0 end  -- no -0
  return n
end

function M.to_number(v)
  v = number_arg(v, "to_number")
  if v == nil then return nil end
  return read_number(v)
end

function M.to_integer(v)
  v = number_arg(v, "to_integer")
  if v == nil then return nil end
  local n
  if type(v) == "number" then
    local err
    n, err = read_number(v)
    if not n then return nil, err end
    if n ~= math.floor(n) then return nil, "not an integer: " .. show(v) end
  else
    local sign, int, frac, exponent = split_decimal(strip(v))
    if not sign or exponent ~= 0 or int == "" or frac:find("[^0]") or v:find("[eE]") then
      return nil, "not an integer: " .. show(v)
    end
    int = int:gsub("^0+", "")
    if #int > 16 or #int == 16 and int > "9007199254740992" then
      return nil, "integer out of range (beyond 2^53): " .. show(v)
    end
    n = tonumber(int ~= "" and int or "0")
    if sign == "-" then n = -n end
    if n == 0 then n = 0 end
  end
  if n > MAX_EXACT or n < -MAX_EXACT then
    return nil, "integer out of range (beyond 2^53): " .. show(v)
  end
  return n
end

-- The value as an exact decimal: mantissa (an integer below 10^15) and scale,
-- value = mantissa / 10^scale. Returns nil when the digits do not fit, nil, message
-- when v is not a number.
local function exact_decimal(v)
  local text
  if type(v) == "number" then
    local n, err = read_number(v)
    if not n then return nil, err end
    if n == math.floor(n) and math.abs(n) <= MAX_EXACT then return n, 0 end
    text = string.format("%.15g", n)
  else
    text = strip(v)
  end
  local sign, int, frac, exponent = split_decimal(text)
  if not sign then return nil, "not a number: " .. show(v) end
  local digits = (int .. frac):gsub("^0+", "")
  local scale = #frac - exponent
  while digits:sub(-1) == "0" do
    digits = digits:sub(1, -2)
    scale = scale - 1
  end
  if digits == "" then return 0, 0 end
  if #digits > 15 or scale > 22 or scale < -22 then return nil end
  local mantissa = tonumber(digits)
  if sign == "-" then mantissa = -mantissa end
  return mantissa, scale
end

-- v * numerator / denominator, exact when whole (see the header), nil for nil.
local function scale_value(v, numerator, denominator, name)
  v = number_arg(v, name)
  if v == nil then return nil end
  local mantissa, scale = exact_decimal(v)
  if mantissa == nil then
    if scale then return nil, scale end  -- scale holds the message
    local n, err = read_number(v)        -- too many digits for exact arithmetic
    if not n then return nil, err end
    return n * numerator / denominator
  end
  local top, bottom = mantissa * numerator, denominator
  if scale >= 0 then bottom = bottom * POW10[scale] else top = top * POW10[-scale] end
  -- Both exact (below 2^53), so the quotient is exact when whole and correctly
  -- rounded otherwise; past 2^53 it is as good as floating point gets.
  local result = top / bottom
  if result == 0 then result = 0 end  -- no -0
  return result
end

function M.minutes_to_seconds(v) return scale_value(v, 60, 1, "minutes_to_seconds") end

function M.hours_to_seconds(v) return scale_value(v, 3600, 1, "hours_to_seconds") end

function M.seconds_to_minutes(v) return scale_value(v, 1, 60, "seconds_to_minutes") end

-- Dates --------------------------------------------------------------------

local MONTHS = {
  january = 1, jan = 1, february = 2, feb = 2, march = 3, mar = 3, april = 4, apr = 4,
  may = 5, june = 6, jun = 6, july = 7, jul = 7, august = 8, aug = 8,
  september = 9, sep = 9, sept = 9, october = 10, oct = 10, november = 11, nov = 11,
  december = 12, dec = 12,
}
local MONTH_NAMES = {
  "January", "February", "March", "April", "May", "June",
  "July", "August", "September", "October", "November", "December",
}
local ORDINALS = { [""] = true, st = true, nd = true, rd = true, th = true }
local ARROW = "\226\134\146"  -- U+2192 RIGHTWARDS ARROW, Notion's range separator

local function days_in_month(year, month)
  if month == 2 then
    local leap = (year % 4 == 0 and year % 100 ~= 0) or year % 400 == 0
    return leap and 29 or 28
  end
  if month == 4 or month == 6 or month == 9 or month == 11 then return 30 end
  return 31
end

-- Year, month, day of the date at the start of s, and the rest of s;
-- or nil, message.
local function read_day(s)
  local year, month, day, rest, suffix, name
  year, month, day, rest = s:match("^(%d%d%d%d)%-(%d%d?)%-(%d%d?)(.*)$")
  local hint = ""
  if not year then
    month, day, year, rest = s:match("^(%d%d?)/(%d%d?)/(%d%d%d%d)(.*)$")
    if year then hint = " (dates with / are read month first)" end
  end
  if not year then
    name, day, suffix, year, rest = s:match("^(%a+)%.?%s+(%d%d?)(%a*)[,%s]%s*(%d%d%d%d)(.*)$")
    if not name then
      day, suffix, name, year, rest = s:match("^(%d%d?)(%a*)%s+(%a+)%.?,?%s+(%d%d%d%d)(.*)$")
    end
    if name then
      month = MONTHS[name:lower()]
      if not month or not ORDINALS[suffix:lower()] then return nil end
    end
  end
  if not year then return nil end
  year, month, day = tonumber(year), tonumber(month), tonumber(day)
  if year < 1 then return nil, "no year 0: " .. show(s) end
  if month < 1 or month > 12 then
    return nil, "no month " .. month .. hint .. ": " .. show(s)
  end
  local last = days_in_month(year, month)
  if day < 1 or day > last then
    return nil, string.format("no such day: %s (%s %d has %d days)", show(s), MONTH_NAMES[month], year, last)
  end
  return year, month, day, rest
end

-- Offset text ("Z", "+01:00") of a zone as written, "" for none; nil if unreadable.
local function read_zone(text)
  text = strip(text)
  local inner = text:match("^%((.*)%)$")
  if inner then text = strip(inner) end
  if text == "" then return "" end
  local upper = text:upper()
  if upper == "Z" or upper == "UTC" or upper == "GMT" then return "Z" end
  upper = upper:gsub("^UTC", ""):gsub("^GMT", "")
  local sign, hours, minutes = upper:match("^([+-])(%d%d?):?(%d%d)$")
  if not sign then
    sign, hours = upper:match("^([+-])(%d%d?)$")
    minutes = "00"
  end
  if not sign or tonumber(hours) > 15 or tonumber(minutes) > 59 then return nil end
  return string.format("%s%02d:%s", sign, tonumber(hours), minutes)
end

-- "HH:MM:SS[.fff]" and zone of a time such as "10:00", "3:30 PM", "10:00:00.5Z";
-- or nil when text is not a time.
local function read_time(text)
  local hour, minute, rest = text:match("^(%d%d?):(%d%d)(.*)$")
  if not hour then return nil end
  hour, minute = tonumber(hour), tonumber(minute)
  local second, fraction = 0, ""
  local s, after = rest:match("^:(%d%d)(.*)$")
  if s then second, rest = tonumber(s), after end
  local f
  f, after = rest:match("^[.,](%d+)(.*)$")
  if f then fraction, rest = "." .. f, after end
  local half
  half, after = rest:match("^%s*([AaPp])%.?[Mm]%.?(.*)$")
  if half then
    if hour < 1 or hour > 12 then return nil end
    if hour == 12 then hour = 0 end
    if half == "p" or half == "P" then hour = hour + 12 end
    rest = after
  end
  if hour > 23 or minute > 59 or second > 59 then return nil end
  local zone = read_zone(rest)
  if not zone then return nil end
  return string.format("%02d:%02d:%02d%s", hour, minute, second, fraction), zone
end

-- The date, the time and the zone of s ("" when absent); or nil, message.
local function read_datetime(s, name)
  local original = s
  s = strip(s)
  if s:find(ARROW, 1, true) or s:find("->", 1, true) then
    return nil, "a date range, not one date (see parse_date_range): " .. show(original)
  end
  local year, month, day, rest = read_day(s)
  if not year then return nil, month or ("not a " .. name .. ": " .. show(original)) end
  local date = string.format("%04d-%02d-%02d", year, month, day)
  if strip(rest) == "" then return date, "", "" end
  local time_text = rest:match("^[Tt]%s*(.*)$") or rest:match("^%s+(.*)$") or rest:match("^,%s*(.*)$")
  local time, zone
  if time_text then time, zone = read_time(time_text) end
  if not time then return nil, "not a " .. name .. ": " .. show(original) end
  return date, time, zone
end

function M.parse_date(s)
  s = text_arg(s, "parse_date")
  if s == nil then return nil end
  local date, err = read_datetime(s, "date")
  if not date then return nil, err end
  return date
end

function M.parse_datetime(s)
  s = text_arg(s, "parse_datetime")
  if s == nil then return nil end
  local date, time, zone = read_datetime(s, "date and time")
  if not date then return nil, time end
  if time == "" then time = "00:00:00" end
  return date .. "T" .. time .. zone
end

function M.parse_date_range(s)
  s = text_arg(s, "parse_date_range")
  if s == nil then return nil end
  local from, to = s:match("^(.-)" .. ARROW .. "(.*)$")
  if not from then from, to = s:match("^(.-)%->(.*)$") end
  if not from then
    local date, err = read_datetime(s, "date")
    if not date then return nil, err end
    return date, nil
  end
  from, to = strip(from), strip(to)
  local start, err = read_datetime(from, "date")
  if not start then return nil, "range start: " .. err end
  local finish
  if read_time(to) then
    finish = start  -- "March 5, 2024 10:00 AM → 11:30 AM": the same day
  else
    finish, err = read_datetime(to, "date")
    if not finish then return nil, "range end: " .. err end
  end
  if finish < start then return nil, "the range ends before it starts: " .. show(s) end
  return start, finish
end

-- Booleans -----------------------------------------------------------------

local BOOLEANS = {
  ["true"] = true, t = true, yes = true, y = true, ["1"] = true, on = true, checked = true,
  ["false"] = false, f = false, no = false, n = false, ["0"] = false, off = false, unchecked = false,
}

function M.parse_bool(v)
  local kind = type(v)
  if kind == "nil" or kind == "boolean" then return v end
  if kind == "number" then
    if v == 1 then return true elseif v == 0 then return false end
    return nil, "not a boolean: " .. show(v)
  end
  if kind ~= "string" then error("convert.parse_bool: expected text, got " .. kind, 2) end
  local value = BOOLEANS[strip(v):lower()]
  if value == nil then return nil, "not a boolean: " .. show(v) end
  return value
end

return M
