-- stdlib/throttle: the pause_when queries. They must pass the guard of recipe SQL
-- (throttle_module_recipe.lua runs them through query()), answer one boolean, and
-- take no SQL through their interval argument. host_tests "[throttle]" shows them
-- pausing on a real long statement.

local throttle = require "throttle"

local QUERIES = { "replica_lag_over", "long_queries_over" }

test("an interval is numbers and units, nothing else", function()
  for _, name in ipairs(QUERIES) do
    for _, good in ipairs({ "30 seconds", "5 minutes", " 1 hour 30 minutes ", "500ms", "2 Days", "90s" }) do
      local ok, text = pcall(throttle[name], good)
      expect(ok, name .. " accepts " .. good .. ": " .. tostring(text))
    end
    for _, bad in ipairs({ "", "30", "minutes", "1.5 hours", "-5 minutes", "5 fortnights",
      "5 minutes'; DROP TABLE items; --", "5 minutes' OR true OR '", "1 hour,30 minutes",
      string.rep("1 s ", 30) }) do
      local ok, message = pcall(throttle[name], bad)
      eq(ok, false, name .. " refuses " .. bad)
      expect(message:find("throttle." .. name .. ": not an interval", 1, true), message)
    end
    local ok, message = pcall(throttle[name], 30)
    eq(ok, false)
    expect(message:find("got number", 1, true), message)
  end
  local text = throttle.long_queries_over(" 1 Hour 30 minutes ")
  expect(text:find("interval '1 hour 30 minutes'", 1, true), text)
end)

test("each query answers one row with one boolean column: false on a quiet database", function()
  for _, name in ipairs(QUERIES) do
    eq(sql(throttle[name]("30 seconds")), { { pause = false } }, name)
  end
end)

test("both queries pass the guard of recipe SQL and a recipe may set pause_when", function()
  sql("CREATE TABLE items (id integer PRIMARY KEY); INSERT INTO items VALUES (1)")
  local r = run("throttle_module_recipe.lua")
  eq(r.exit, 0, r.output)
  eq(r.report.status, "succeeded")
  local answers
  for _, event in ipairs(r.report.audit) do
    if event.event == "answers" then answers = event.data end
  end
  eq(answers, { replica_lag = false, long_queries = false })
end)
