-- notion: reading the cells of Notion database exports ("Export -> Markdown &
-- CSV"): page ids out of page URLs, and the links of relation cells.
--
--   local notion = require "notion"
--   local id = map_id("project", notion.page_id(row["URL"]))
--   for _, link in ipairs(notion.relations(row["Sub-app"])) do
--     -- link.title == "Billing, Invoicing & Tax", link.id == "7b2f9e1c-4d3a-...", link.url == "https://..."
--   end
--
-- A page id is returned as a canonical UUID (lower case, hyphenated,
-- "5a1e0c3d-7b2f-4e6a-9c8d-1b2a3f4e5d61"), not as the 32 hex digits of the
-- URL: map_id keeps a UUID as it is, so map_id(entity, notion.page_id(url)) is
-- Notion's own page id, whether or not the recipe also passes it through
-- ids.canonical_uuid. ids.compact_uuid gives the 32-digit spelling back.
--
-- Like convert: nil in, nil out; text that holds no page id gives nil, message;
-- an argument of the wrong Lua type raises.
--
--   page_id(text)       -> the page id of a Notion URL or text, or nil, message.
--                          The id is the last 32 hex digits (or hyphenated UUID) standing on
--                          their own in the path of the first URL in text; the query string
--                          and the fragment are ignored (?pvs=21, ?v=<view id>, ?p=<peek id>,
--                          #<block id>), and so is the host. Text without a URL is read the
--                          same way, so a bare id, "Title-<id>", a path such as
--                          "Projects/Title%20<id>.md" (percent escapes are decoded) or
--                          "Title (<url>)" all work.
--                            page_id("https://www.notion.so/acme/Mobile-App-5a1e0c3d7b2f4e6a9c8d1b2a3f4e5d61?pvs=21")
--                              == "5a1e0c3d-7b2f-4e6a-9c8d-1b2a3f4e5d61"
--                            page_id("https://acme.notion.site/5a1e0c3d7b2f4e6a9c8d1b2a3f4e5d61#9c3a...") -- same
--                            page_id("https://www.notion.so/acme") -> nil, message
--   relations(cell)     -> array of { title =, id =, url = }, one per link, in cell order;
--                          {} for nil or a blank cell. A link is "Title (target)" (target: a URL
--                          or an export path, no spaces) or a bare URL. Links are separated by
--                          ", "; titles are trimmed and may hold commas, parentheses and any
--                          UTF-8 ("Billing, Invoicing & Tax (https://...)" is one link).
--                          title is nil for a bare URL; id is nil when the target holds no page
--                          id. Text after the last link that is not a link (an export made
--                          without URLs) becomes one last entry with only a title: titles
--                          cannot be split on commas safely.
--                            relations("Onboarding (https://www.notion.so/acme/Onboarding-<id 1>?pvs=21), "
--                                      .. "Billing, Invoicing & Tax (https://www.notion.so/acme/Billing-<id 2>)")
--                              == { { title = "Onboarding", id = "<id 1 as UUID>",
--                                     url = "https://www.notion.so/acme/Onboarding-<id 1>?pvs=21" },
--                                   { title = "Billing, Invoicing & Tax", id = "<id 2 as UUID>",
--                                     url = "https://www.notion.so/acme/Billing-<id 2>" } }
--   relation_ids(cell)  -> array of the page ids of the cell's links, in order, each once;
--                          links without an id are left out. {} for nil or blank.
--   title(cell)         -> the text of a title or relation cell without its link targets,
--                          white space normalised, or nil when nothing is left.
--                            title("Mobile App (https://www.notion.so/acme/Mobile-App-5a1e...61)") == "Mobile App"
--                            title("A (https://...), B (https://...)") == "A, B"
--                            title("  Café  Zoë ") == "Café Zoë"; title("https://...") == nil

local ids = require "ids"

local M = {}

local HEX = "%x"
local HYPHENATED = string.rep(HEX, 8) .. "%-" .. string.rep(HEX, 4) .. "%-" .. string.rep(HEX, 4)
  .. "%-" .. string.rep(HEX, 4) .. "%-" .. string.rep(HEX, 12)
local URL = "%a[%w+.-]*://"
local BARE_URL = "[Hh][Tt][Tt][Pp][Ss]?://[^%s,()]+"

local function show(value)
  local text = tostring(value)
  if #text > 60 then text = text:sub(1, 57) .. "..." end
  return string.format("%q", text)
end

local function trim(s)
  local first = s:find("[^ \t\r\n\v\f]")
  if not first then return "" end
  return s:sub(first):match("^(.*[^ \t\r\n\v\f])")
end

local function check_text(v, name)
  local kind = type(v)
  if kind ~= "string" and kind ~= "nil" then
    error("notion." .. name .. ": expected text, got " .. kind, 3)
  end
end

-- The id standing last in path: a run of exactly 32 hex digits, or a
-- hyphenated UUID, with no hex digit right before or after it.
local function last_id(path)
  local best, best_stop
  for run, stop in path:gmatch("%f[%x](%x+)%f[^%x]()") do
    if #run == 32 then best, best_stop = run, stop end
  end
  for uuid, stop in path:gmatch("%f[%x](" .. HYPHENATED .. ")%f[^%x]()") do
    if not best_stop or stop > best_stop then best, best_stop = uuid, stop end
  end
  return best
end

local function page_id(text)
  local target = text:match(URL .. "[^%s]+") or text
  target = target:match("^[^?#]*")
  target = target:gsub("^" .. URL .. "[^/]*", "")  -- the host is not part of the path
  target = target:gsub("%%(%x%x)", function(hex) return string.char(tonumber(hex, 16)) end)
  local id = last_id(target)
  return id and ids.canonical_uuid(id)
end

function M.page_id(text)
  check_text(text, "page_id")
  if text == nil then return nil end
  local id = page_id(text)
  if not id then return nil, "no Notion page id in " .. show(text) end
  return id
end

-- A title between two links: trimmed, without the ", " that separates it from
-- the link before; nil when empty.
local function title_between(text, after_link)
  text = trim(text)
  if after_link then text = trim((text:gsub("^,", ""))) end
  if text == "" then return nil end
  return text
end

-- The next "(target)" from pos whose target is a link (a URL, or text holding
-- a page id): start, target, the position after ")". nil when there is none.
local function next_paren_link(cell, pos)
  while true do
    local start, stop, target = cell:find("%(([^%s()]+)%)", pos)
    if not start then return nil end
    if target:find(URL) or page_id(target) then return start, target, stop + 1 end
    pos = start + 1
  end
end

-- Splits a cell into its links (see the header).
local function split(cell)
  local links, pos = {}, 1
  while true do
    local after_link = #links > 0
    local paren, target, paren_end = next_paren_link(cell, pos)
    local bare, bare_stop = cell:find(BARE_URL, pos)
    if paren and (not bare or paren < bare) then
      links[#links + 1] = { title = title_between(cell:sub(pos, paren - 1), after_link),
        url = target, id = page_id(target) }
      pos = paren_end
    elseif bare then
      local url = cell:sub(bare, bare_stop)
      links[#links + 1] = { title = title_between(cell:sub(pos, bare - 1), after_link),
        url = url, id = page_id(url) }
      pos = bare_stop + 1
    else
      break
    end
  end
  local rest = title_between(cell:sub(pos), #links > 0)
  if rest then links[#links + 1] = { title = rest } end
  return links
end

function M.relations(cell)
  check_text(cell, "relations")
  if cell == nil then return {} end
  return split(cell)
end

function M.relation_ids(cell)
  check_text(cell, "relation_ids")
  local result, seen = {}, {}
  if cell == nil then return result end
  for _, link in ipairs(split(cell)) do
    if link.id and not seen[link.id] then
      seen[link.id] = true
      result[#result + 1] = link.id
    end
  end
  return result
end

function M.title(cell)
  check_text(cell, "title")
  if cell == nil then return nil end
  local titles = {}
  for _, link in ipairs(split(cell)) do
    if link.title then titles[#titles + 1] = link.title end
  end
  local text = trim((table.concat(titles, ", "):gsub("[ \t\r\n\v\f]+", " ")))
  if text == "" then return nil end
  return text
end

return M
