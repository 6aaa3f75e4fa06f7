-- phase2_backfill/users_active.lua
--
-- users.active was added as a nullable boolean. A user is active unless someone
-- deactivated them, so NULL becomes TRUE; an explicit FALSE is a decision and is
-- never touched (empty = "null": only NULL counts as empty).
--
--   host run recipes/phase2_backfill/users_active.lua --dry-run

return {
  name = "users-active-default",
  version = "1",
  description = "users.active NULL -> TRUE; an explicit FALSE is kept.",
  table = "users",
  columns = { "id", "active" },
  where = { active = EMPTY },
  writes = { users = { "active" } },
  each = function(row)
    patch_if_empty(row, "active", true, { empty = "null", reason = "active unless deactivated" })
  end,
  verify = function()
    expect_count("users", { active = EMPTY }, 0)
  end,
}
