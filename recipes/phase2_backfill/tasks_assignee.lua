-- phase2_backfill/tasks_assignee.lua
--
-- tasks.assignee_id (a real foreign key to users) from the legacy owner_id,
-- which never had one. The value is copied only when that user exists; an
-- owner id that points nowhere is audited ("missing_owner") and the task is left
-- unassigned for a person to decide. The user look-ups of a batch are answered
-- with one query.
--
--   host run recipes/phase2_backfill/tasks_assignee.lua --dry-run

return {
  name = "tasks-assignee-from-owner",
  version = "1",
  description = "tasks.assignee_id copied from owner_id when that user exists.",
  table = "tasks",
  columns = { "id", "owner_id", "assignee_id" },
  where = { assignee_id = EMPTY, owner_id = NOT_EMPTY },
  writes = { tasks = { "assignee_id" } },
  each = function(row)
    local owner = read("users", { id = row.owner_id }, { columns = { "id" } })
    if not owner then
      audit("missing_owner", { task = row.id, owner = row.owner_id })
      return
    end
    patch_if_empty(row, "assignee_id", owner.id, { reason = "legacy owner_id" })
  end,
}
