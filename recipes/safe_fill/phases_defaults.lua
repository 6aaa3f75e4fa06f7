-- safe_fill/phases_defaults.lua
--
-- Gives phases without a status the status "Active". A status that is present
-- ("Archived", "Active " with a trailing space, ...) is a person's decision and
-- is kept: patch_if_empty refuses it and the report counts it as protected.
--
-- No `where`: every row is visited so the report accounts for every field.
--
--   host run recipes/safe_fill/phases_defaults.lua --dry-run

return {
  name = "safe-fill-phases",
  version = "1",
  description = "Empty phase status becomes 'Active'; values are never overwritten.",
  table = "phases",
  columns = { "id", "status" },
  writes = { phases = { "status" } },
  each = function(row)
    patch_if_empty(row, "status", "Active", { reason = "phase default" })
  end,
}
