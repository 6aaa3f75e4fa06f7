-- phase2_backfill/projects_started_at.lua
--
-- projects.started_at is when the first person was assigned to the project: the
-- earliest assignments.assigned_at (assignments without a date are ignored). A
-- project nobody was ever assigned to started when it was created. The two cases
-- carry different reasons in the ledger.
--
--   host run recipes/phase2_backfill/projects_started_at.lua --dry-run

return {
  name = "projects-started-at",
  version = "1",
  description = "projects.started_at from the earliest assignment, else created_at.",
  table = "projects",
  columns = { "id", "created_at", "started_at" },
  where = { started_at = EMPTY },
  writes = { projects = { "started_at" } },
  each = function(row)
    local first = read("assignments", { project_id = row.id, assigned_at = NOT_EMPTY },
      { columns = { "assigned_at" }, order_by = "assigned_at" })
    if first then
      patch_if_empty(row, "started_at", first.assigned_at, { reason = "earliest assignment" })
    else
      patch_if_empty(row, "started_at", row.created_at, { reason = "no assignment: created_at" })
    end
  end,
  verify = function()
    expect_count("projects", { started_at = EMPTY }, 0)
  end,
}
