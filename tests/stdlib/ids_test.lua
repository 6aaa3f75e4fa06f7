-- stdlib/ids: UUID spellings and legacy ids, before they reach map_id.

local ids = require "ids"

local UUID = "5a1e0c3d-7b2f-4e6a-9c8d-1b2a3f4e5d61"

local function fails(fn, value, fragment)
  local result, message = fn(value)
  eq(result, nil, "no result for " .. tostring(value))
  expect(type(message) == "string", "a message for " .. tostring(value))
  if fragment then
    expect(message:find(fragment, 1, true), "message '" .. message .. "' mentions '" .. fragment .. "'")
  end
end

test("is_uuid: the 8-4-4-4-12 form, any case, nothing around it", function()
  eq(ids.is_uuid(UUID), true)
  eq(ids.is_uuid(UUID:upper()), true)
  eq(ids.is_uuid("00000000-0000-0000-0000-000000000000"), true, "version and variant are not checked")
  eq(ids.is_uuid("5a1e0c3d7b2f4e6a9c8d1b2a3f4e5d61"), false, "32 hex digits: canonical_uuid reads them")
  eq(ids.is_uuid(" " .. UUID), false)
  eq(ids.is_uuid("{" .. UUID .. "}"), false)
  eq(ids.is_uuid("5a1e0c3d-7b2f-4e6a-9c8d-1b2a3f4e5d6g"), false)
  eq(ids.is_uuid("5a1e0c3d-7b2f-4e6a-9c8d-1b2a3f4e5d612"), false)
  eq(ids.is_uuid(""), false)
  eq(ids.is_uuid(nil), false)
  eq(ids.is_uuid(42), false)
  eq(ids.is_uuid({}), false, "never raises")
end)

test("canonical_uuid and compact_uuid: every spelling to one form", function()
  for _, spelling in ipairs({
    UUID,
    UUID:upper(),
    "5a1e0c3d7b2f4e6a9c8d1b2a3f4e5d61",
    "5A1E0C3D7B2F4E6A9C8D1B2A3F4E5D61",
    "  " .. UUID .. "\t",
    "{" .. UUID .. "}",
    "{5A1E0C3D7B2F4E6A9C8D1B2A3F4E5D61}",
    "urn:uuid:" .. UUID,
    "URN:UUID:" .. UUID:upper(),
  }) do
    eq(ids.canonical_uuid(spelling), UUID, spelling)
    eq(ids.compact_uuid(spelling), "5a1e0c3d7b2f4e6a9c8d1b2a3f4e5d61", spelling)
  end
  eq(ids.canonical_uuid(nil), nil)
  eq(ids.compact_uuid(nil), nil)
  fails(ids.canonical_uuid, "5a1e0c3d-7b2f", "5a1e0c3d-7b2f")
  fails(ids.canonical_uuid, "5a1e0c3d7b2f4e6a9c8d1b2a3f4e5d6", "not a UUID")
  fails(ids.canonical_uuid, "5a1e0c3d7b2f4e6a9c8d1b2a3f4e5d612")
  fails(ids.canonical_uuid, "5a1e0c3d-7b2f4e6a-9c8d-1b2a3f4e5d61")  -- hyphens in other places
  fails(ids.canonical_uuid, "zz1e0c3d7b2f4e6a9c8d1b2a3f4e5d61")
  fails(ids.canonical_uuid, "{" .. UUID)
  fails(ids.canonical_uuid, "")
  fails(ids.canonical_uuid, "1001")
  fails(ids.compact_uuid, "n/a")
  eq(pcall(ids.canonical_uuid, 42), false, "a number is not a UUID spelling: wrong type")
end)

test("canonical_uuid agrees with PostgreSQL's uuid type", function()
  local row = sql("select $1::uuid::text as a, $2::uuid::text as b",
    "{5A1E0C3D7B2F4E6A9C8D1B2A3F4E5D61}", "5A1E0C3D-7B2F-4E6A-9C8D-1B2A3F4E5D61")[1]
  eq(ids.canonical_uuid("{5A1E0C3D7B2F4E6A9C8D1B2A3F4E5D61}"), row.a)
  eq(ids.canonical_uuid("5A1E0C3D-7B2F-4E6A-9C8D-1B2A3F4E5D61"), row.b)
end)

test("legacy_integer: one text per legacy integer id", function()
  eq(ids.legacy_integer(" 0042 "), "42")
  eq(ids.legacy_integer("42"), "42")
  eq(ids.legacy_integer(42), "42")
  eq(ids.legacy_integer(42.0), "42")
  eq(ids.legacy_integer("0"), "0")
  eq(ids.legacy_integer("000"), "0")
  eq(ids.legacy_integer(0), "0")
  eq(ids.legacy_integer(" 1003 "), "1003")
  eq(ids.legacy_integer("12345678901234567890"), "12345678901234567890", "exact past 2^53")
  eq(ids.legacy_integer(2 ^ 53), "9007199254740992")
  eq(ids.legacy_integer(nil), nil)
  fails(ids.legacy_integer, "n/a", "n/a")
  fails(ids.legacy_integer, "")
  fails(ids.legacy_integer, "  ")
  fails(ids.legacy_integer, "-3")
  fails(ids.legacy_integer, -3)
  fails(ids.legacy_integer, "4.5")
  fails(ids.legacy_integer, 4.5)
  fails(ids.legacy_integer, "4 2")
  fails(ids.legacy_integer, "CRM-42")
  fails(ids.legacy_integer, 2 ^ 60)
  eq(pcall(ids.legacy_integer, {}), false)
end)

test("legacy_key: composite legacy ids, deterministic and unambiguous", function()
  eq(ids.legacy_key("crm", 42), "crm:42")
  eq(ids.legacy_key("crm", "42"), "crm:42", "the number and its text are one key")
  eq(ids.legacy_key(" crm ", " 42 "), "crm:42", "parts are trimmed")
  eq(ids.legacy_key("crm", "0042"), "crm:0042", "text is otherwise kept")
  eq(ids.legacy_key("crm", ids.legacy_integer("0042")), "crm:42")
  eq(ids.legacy_key("erp", "EU", 7, "Café Zoë"), "erp:EU:7:Café Zoë")
  eq(ids.legacy_key("only"), "only")
  eq(ids.legacy_key("a:b", "c"), "a\\:b:c")
  eq(ids.legacy_key("a", "b:c"), "a:b\\:c")
  expect(ids.legacy_key("a\\", ":b") ~= ids.legacy_key("a\\:", "b"), "backslashes are escaped too")
  local key, err = ids.legacy_key("crm", nil)
  eq(key, nil)
  eq(err, "legacy_key part 2 is empty")
  key, err = ids.legacy_key("crm", "  ")
  eq(key, nil)
  eq(err, "legacy_key part 2 is empty")
  key, err = ids.legacy_key("crm", 4.5)
  eq(key, nil)
  expect(err:find("not a whole number", 1, true), err)
  eq(pcall(ids.legacy_key), false, "at least one part")
  eq(pcall(ids.legacy_key, "crm", {}), false, "a table is a bug")
end)
