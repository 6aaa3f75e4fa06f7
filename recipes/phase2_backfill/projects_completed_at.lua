-- phase2_backfill/projects_completed_at.lua
--
-- projects.completed_at is set only when the project has assignments and every
-- one of them is done; it is then the latest done_at. A project with an open
-- assignment, or with none, is not complete. A "done" assignment without a
-- done_at makes the date unknowable: the project is audited and left alone.
--
--   host run recipes/phase2_backfill/projects_completed_at.lua --dry-run

return {
  name = "projects-completed-at",
  version = "1",
  description = "projects.completed_at = latest done_at, when all assignments are done.",
  table = "projects",
  columns = { "id", "completed_at" },
  where = { completed_at = EMPTY },
  writes = { projects = { "completed_at" } },
  each = function(row)
    local assignments = read_all("assignments", { project_id = row.id },
      { columns = { "id", "status", "done_at" } })
    if #assignments == 0 then return end
    for _, assignment in ipairs(assignments) do
      if assignment.status ~= "done" then return end
      if not assignment.done_at then
        audit("done_without_date", { project = row.id, assignment = assignment.id })
        return
      end
    end
    -- Every done_at is present, so the first in descending order is the latest.
    local last = read("assignments", { project_id = row.id },
      { columns = { "done_at" }, order_by = { "done_at", "desc" } })
    patch_if_empty(row, "completed_at", last.done_at, { reason = "all assignments done: latest done_at" })
  end,
}
