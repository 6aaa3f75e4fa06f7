-- stdlib/notion: page ids from Notion URLs and links from relation cells, on the
-- cells of recipes/notion_import's exports and on the other shapes exports take.

local notion = require "notion"
local ids = require "ids"

local MOBILE = "5a1e0c3d-7b2f-4e6a-9c8d-1b2a3f4e5d61"
local ONBOARDING = "7b2f9e1c-4d3a-4b5c-8e6f-0a1b2c3d4e01"
local BILLING = "7b2f9e1c-4d3a-4b5c-8e6f-0a1b2c3d4e02"
local ARCHIVED = "7b2f9e1c-4d3a-4b5c-8e6f-0a1b2c3d4e99"
local DISCOVERY_BLOCK = "9c3a6b2e1f0d4c7a8b5e2d1c0f9a8b01"

local ONBOARDING_URL = "https://www.notion.so/acme/Onboarding-Revamp-7b2f9e1c4d3a4b5c8e6f0a1b2c3d4e01?pvs=21"
local BILLING_URL = "https://www.notion.so/acme/Billing-Invoicing-Tax-7b2f9e1c4d3a4b5c8e6f0a1b2c3d4e02?pvs=21"
local ARCHIVED_URL = "https://www.notion.so/acme/Archived-Project-7b2f9e1c4d3a4b5c8e6f0a1b2c3d4e99?pvs=21"

test("page_id: the id of a page URL, as a canonical UUID", function()
  local cases = {
    "https://www.notion.so/acme/Mobile-App-5a1e0c3d7b2f4e6a9c8d1b2a3f4e5d61",
    "https://www.notion.so/acme/Mobile-App-5a1e0c3d7b2f4e6a9c8d1b2a3f4e5d61?pvs=21",
    "https://www.notion.so/acme/Mobile-App-5a1e0c3d7b2f4e6a9c8d1b2a3f4e5d61#" .. DISCOVERY_BLOCK,
    "https://www.notion.so/acme/5a1e0c3d7b2f4e6a9c8d1b2a3f4e5d61?v=" .. DISCOVERY_BLOCK .. "&pvs=4",
    "https://www.notion.so/acme/Roadmap-" .. DISCOVERY_BLOCK:gsub("01$", "99")
      .. "?p=5a1e0c3d7b2f4e6a9c8d1b2a3f4e5d61&pm=s",  -- the peek id in the query is not the page
    "https://acme.notion.site/Mobile-App-5a1e0c3d7b2f4e6a9c8d1b2a3f4e5d61",
    "https://www.notion.so/Mobile-App-5A1E0C3D7B2F4E6A9C8D1B2A3F4E5D61",
    "https://www.notion.so/acme/Mobile-App-5a1e0c3d-7b2f-4e6a-9c8d-1b2a3f4e5d61",
    "https://www.notion.so/acme/Face-5a1e0c3d7b2f4e6a9c8d1b2a3f4e5d61",   -- a title of hex letters
    "www.notion.so/acme/Mobile-App-5a1e0c3d7b2f4e6a9c8d1b2a3f4e5d61",
    "  https://www.notion.so/acme/Mobile-App-5a1e0c3d7b2f4e6a9c8d1b2a3f4e5d61  ",
    "5a1e0c3d7b2f4e6a9c8d1b2a3f4e5d61",
    MOBILE,
    "Mobile App (https://www.notion.so/acme/Mobile-App-5a1e0c3d7b2f4e6a9c8d1b2a3f4e5d61?pvs=21)",
    "Sub-apps%20a1b2/Mobile%20App%205a1e0c3d7b2f4e6a9c8d1b2a3f4e5d61.md",
    "https://www.notion.so/" .. DISCOVERY_BLOCK .. "/Mobile-App-5a1e0c3d7b2f4e6a9c8d1b2a3f4e5d61",
  }
  for _, url in ipairs(cases) do
    eq(notion.page_id(url), url:find("Roadmap", 1, true) and "9c3a6b2e-1f0d-4c7a-8b5e-2d1c0f9a8b99" or MOBILE,
      url)
  end
  eq(ids.compact_uuid(notion.page_id(cases[1])), "5a1e0c3d7b2f4e6a9c8d1b2a3f4e5d61", "the 32-digit spelling")
  eq(ids.canonical_uuid(notion.page_id(cases[1])), MOBILE, "canonical_uuid keeps it as it is")
end)

test("page_id: no id, nil, wrong types", function()
  for _, text in ipairs({
    "https://www.notion.so/acme",
    "https://www.notion.so/acme?p=5a1e0c3d7b2f4e6a9c8d1b2a3f4e5d61",  -- only in the query
    "https://www.notion.so/acme/Mobile-App-5a1e0c3d7b2f4e6a9c8d1b2a3f4e5d6",  -- 31 digits
    "https://www.notion.so/acme/Mobile-App-5a1e0c3d7b2f4e6a9c8d1b2a3f4e5d612",  -- 33 digits
    "Mobile App",
    "",
  }) do
    local id, err = notion.page_id(text)
    eq(id, nil, text)
    expect(type(err) == "string" and err:find("no Notion page id", 1, true), text)
  end
  local id, err = notion.page_id(nil)
  eq(id, nil)
  eq(err, nil, "nil in, nil out")
  eq(pcall(notion.page_id, 42), false)
end)

test("relations: the cells of the shipped exports", function()
  eq(notion.relations("Onboarding Revamp (" .. ONBOARDING_URL .. ")"),
    { { title = "Onboarding Revamp", id = ONBOARDING, url = ONBOARDING_URL } })
  eq(notion.relations("Billing, Invoicing & Tax (" .. BILLING_URL .. ")"),
    { { title = "Billing, Invoicing & Tax", id = BILLING, url = BILLING_URL } }, "a title with a comma")
  eq(notion.relations("Onboarding Revamp (" .. ONBOARDING_URL .. "), Billing, Invoicing & Tax (" .. BILLING_URL .. ")"),
    {
      { title = "Onboarding Revamp", id = ONBOARDING, url = ONBOARDING_URL },
      { title = "Billing, Invoicing & Tax", id = BILLING, url = BILLING_URL },
    })
  local three = notion.relations(
    "Data Warehouse (https://www.notion.so/acme/Data-Warehouse-7b2f9e1c4d3a4b5c8e6f0a1b2c3d4e04?pvs=21), "
    .. "Archived Project (" .. ARCHIVED_URL .. "), "
    .. "Offline Mode (https://www.notion.so/acme/Offline-Mode-7b2f9e1c4d3a4b5c8e6f0a1b2c3d4e05?pvs=21)")
  eq(#three, 3)
  eq({ three[1].title, three[2].title, three[3].title }, { "Data Warehouse", "Archived Project", "Offline Mode" })
  eq(three[2].id, ARCHIVED)
  local cafe = notion.relations(
    "Café Zoë Loyalty (https://www.notion.so/acme/Caf-Zo-Loyalty-7b2f9e1c4d3a4b5c8e6f0a1b2c3d4e03?pvs=21)")
  eq(cafe[1].title, "Café Zoë Loyalty", "UTF-8 titles")
  eq(cafe[1].id, "7b2f9e1c-4d3a-4b5c-8e6f-0a1b2c3d4e03")
  local rollout = notion.relations(
    "Rollout – Zoë's team (https://www.notion.so/acme/Rollout-Zos-team-9c3a6b2e1f0d4c7a8b5e2d1c0f9a8b06?pvs=21)")
  eq(rollout[1].title, "Rollout – Zoë's team")
end)

test("relations: parentheses, bare URLs, blanks and text without links", function()
  eq(notion.relations(nil), {})
  eq(notion.relations(""), {})
  eq(notion.relations("   "), {})
  eq(notion.relations("Q3 (draft) plan, v2 (" .. ONBOARDING_URL .. "),  Tax (EU) (" .. BILLING_URL .. ")"), {
    { title = "Q3 (draft) plan, v2", id = ONBOARDING, url = ONBOARDING_URL },
    { title = "Tax (EU)", id = BILLING, url = BILLING_URL },
  }, "parentheses inside titles")
  eq(notion.relations(ONBOARDING_URL), { { id = ONBOARDING, url = ONBOARDING_URL } }, "a bare URL has no title")
  eq(notion.relations(ONBOARDING_URL .. ", " .. BILLING_URL .. "," .. ARCHIVED_URL), {
    { id = ONBOARDING, url = ONBOARDING_URL },
    { id = BILLING, url = BILLING_URL },
    { id = ARCHIVED, url = ARCHIVED_URL },
  })
  eq(notion.relations("  Onboarding Revamp   (" .. ONBOARDING_URL .. ")  "),
    { { title = "Onboarding Revamp", id = ONBOARDING, url = ONBOARDING_URL } }, "titles are trimmed")
  eq(notion.relations("Legacy (https://www.notion.so/acme)"),
    { { title = "Legacy", url = "https://www.notion.so/acme" } }, "a link without a page id has no id")
  eq(notion.relations("Projects/Onboarding%20Revamp%207b2f9e1c4d3a4b5c8e6f0a1b2c3d4e01.md"),
    { { title = "Projects/Onboarding%20Revamp%207b2f9e1c4d3a4b5c8e6f0a1b2c3d4e01.md" } },
    "a bare path is not a URL: text")
  eq(notion.relations("Onboarding Revamp (Projects/Onboarding%20Revamp%207b2f9e1c4d3a4b5c8e6f0a1b2c3d4e01.md)"), {
    { title = "Onboarding Revamp", id = ONBOARDING,
      url = "Projects/Onboarding%20Revamp%207b2f9e1c4d3a4b5c8e6f0a1b2c3d4e01.md" },
  }, "an export path in parentheses")
  eq(notion.relations("Billing, Invoicing & Tax"), { { title = "Billing, Invoicing & Tax" } },
    "no links: one title, never split on commas")
  eq(notion.relations("Onboarding Revamp (" .. ONBOARDING_URL .. "), Someday"), {
    { title = "Onboarding Revamp", id = ONBOARDING, url = ONBOARDING_URL },
    { title = "Someday" },
  }, "text after the last link")
  eq(pcall(notion.relations, {}), false)
end)

test("relation_ids and title", function()
  local cell = "Onboarding Revamp (" .. ONBOARDING_URL .. "), Billing, Invoicing & Tax (" .. BILLING_URL
    .. "), Onboarding Revamp (" .. ONBOARDING_URL .. "), Someday"
  eq(notion.relation_ids(cell), { ONBOARDING, BILLING }, "in order, each once, links without id left out")
  eq(notion.relation_ids(nil), {})
  eq(notion.relation_ids("  "), {})
  eq(notion.relation_ids("Someday"), {})

  eq(notion.title("Mobile App (https://www.notion.so/acme/Mobile-App-5a1e0c3d7b2f4e6a9c8d1b2a3f4e5d61)"), "Mobile App")
  eq(notion.title("Onboarding Revamp (" .. ONBOARDING_URL .. "), Billing, Invoicing & Tax (" .. BILLING_URL .. ")"),
    "Onboarding Revamp, Billing, Invoicing & Tax")
  eq(notion.title("  Café   Zoë  Kiosk "), "Café Zoë Kiosk")
  eq(notion.title(ONBOARDING_URL), nil, "a bare URL has no title")
  eq(notion.title("   "), nil)
  eq(notion.title(nil), nil)
end)

test("the recipes' path: page_id -> canonical_uuid -> map_id keeps the Notion id", function()
  -- map_id is a recipe primitive, so the check runs through PostgreSQL's uuid type instead:
  -- the id a recipe stores is the page's own id, whichever spelling the URL used.
  local row = sql("select $1::uuid::text as u", ids.canonical_uuid(notion.page_id(BILLING_URL)))[1]
  eq(row.u, BILLING)
end)
