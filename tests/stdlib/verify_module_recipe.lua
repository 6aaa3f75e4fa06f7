-- tests/stdlib/verify_module_recipe.lua: a read-only recipe for verify_test.lua.
-- It calls every helper through `require "verify"` (loaded at the top, as
-- recipes do): on the first row it audits what they return, so the test can
-- check the values, and its verify makes the checks the report lists.
-- --var with_team=N is the expected number of members with a team.

local v = require "verify"

local COLUMNS = { "id", "team_id", "name" }

return {
  name = "stdlib-verify-module",
  version = "1",
  description = "Exercises stdlib/verify.lua; writes nothing.",
  table = "members",
  columns = { "id" },
  each = function(row)
    if row.id ~= 1 then return end
    audit("module", {
      same_table = require "verify" == v,
      same_functions = v.expect == expect and v.count == count and v.expect_count == expect_count
        and v.orphans == orphans and v.checksum == checksum and v.same_rows == same_rows,
    })
    audit("count", { all = v.count("members", {}), no_name = v.count("members", { name = EMPTY }) })
    local loose = v.orphans({ child = "members", fk = "team_id", parent = "teams" })
    audit("orphans", { count = loose.count, sample = loose.sample })
    audit("checksum", { same = v.checksum("members", COLUMNS) == v.checksum("members_copy", COLUMNS) })
    local same, detail = v.same_rows("members", "members_copy", "id", { "team_id", "name" })
    audit("same_rows", { same = same, detail = detail })
  end,
  verify = function()
    v.expect_count("members", { team_id = NOT_EMPTY }, tonumber(vars.with_team))
    v.expect(v.same_rows("members", "members_copy", "id", { "team_id", "name" }), "members_copy has the same rows")
    v.expect(v.orphans({ child = "members", fk = "team_id", parent = "teams" }).count == 0,
      "every member's team exists")
  end,
}
