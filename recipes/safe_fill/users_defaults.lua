-- safe_fill/users_defaults.lua
--
-- Gives users without a time zone "UTC" and users without a locale "en". A
-- user's own choice is never overwritten (patch_if_empty); a value that is only
-- white space counts as empty and is filled.
--
-- No `where`: every row is visited so the report accounts for every field.
--
--   host run recipes/safe_fill/users_defaults.lua --dry-run

local DEFAULTS = {
  { column = "timezone", value = "UTC" },
  { column = "locale", value = "en" },
}

return {
  name = "safe-fill-users",
  version = "1",
  description = "Empty user time zone becomes 'UTC', empty locale 'en'; values are never overwritten.",
  table = "users",
  columns = { "id", "timezone", "locale" },
  writes = { users = { "timezone", "locale" } },
  each = function(row)
    for _, default in ipairs(DEFAULTS) do
      patch_if_empty(row, default.column, default.value, { reason = "user default" })
    end
  end,
}
