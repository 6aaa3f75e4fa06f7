-- confidence_defaults/phases_status.lua
--
-- Empty phase status becomes "Active". This is the team's agreed default, so it
-- is written at high confidence (the default) and applied by a plain run. A
-- status that is only white space counts as empty; any other value is kept.
--
--   host run recipes/confidence_defaults/phases_status.lua --dry-run

return {
  name = "phases-status-default",
  version = "1",
  description = "Empty phase status becomes 'Active'.",
  table = "phases",
  columns = { "id", "status" },
  where = { status = EMPTY },
  writes = { phases = { "status" } },
  each = function(row)
    patch_if_empty(row, "status", "Active", { reason = "phase default" })
  end,
  verify = function()
    expect_count("phases", { status = EMPTY }, 0)
  end,
}
