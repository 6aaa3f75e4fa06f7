-- safe_fill/projects_defaults.lua
--
-- Gives projects without a status the status "planned" and projects without a
-- currency the currency "EUR". Only patch_if_empty is used: a value someone has
-- already typed (even "Done " or "eur") is never overwritten; it is counted as
-- a protected field in the report.
--
-- There is no `where` on purpose: the recipe visits every row so that its report
-- accounts for every field, filled or protected. On a large table where most
-- rows are done, add `where = { status = EMPTY }` (one recipe per column).
--
--   host run recipes/safe_fill/projects_defaults.lua --dry-run

local DEFAULTS = {
  { column = "status", value = "planned" },
  { column = "currency", value = "EUR" },
}

return {
  name = "safe-fill-projects",
  version = "1",
  description = "Empty project status becomes 'planned', empty currency 'EUR'; values are never overwritten.",
  table = "projects",
  columns = { "id", "status", "currency" },
  writes = { projects = { "status", "currency" } },
  each = function(row)
    for _, default in ipairs(DEFAULTS) do
      patch_if_empty(row, default.column, default.value, { reason = "project default" })
    end
  end,
}
