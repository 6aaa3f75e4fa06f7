-- phase2_backfill/verify_projects_new.lua
--
-- Proves that projects_new matches projects before the new app is switched over.
-- It writes nothing. Each source row is compared with its shadow row and every
-- difference is audited by id and column ("missing_in_shadow",
-- "differs_in_shadow"), so the report names the rows to look at. Then verify
-- compares the whole tables: row counts, checksums, same_rows, and that every
-- assignment and task references a project present in projects_new. Any failed
-- check makes the run exit 3.
--
--   host run recipes/phase2_backfill/verify_projects_new.lua

local COMPARED = { "code", "name", "status", "customer_id", "created_at" }

return {
  name = "projects-new-verify",
  version = "1",
  description = "projects vs projects_new: counts, checksums, rows and references.",
  table = "projects",
  columns = { "id", "code", "name", "status", "customer_id", "created_at" },
  each = function(row)
    local shadow = read("projects_new", { id = row.id }, { columns = COMPARED })
    if not shadow then
      audit("missing_in_shadow", { id = row.id, code = row.code })
      return
    end
    for _, column in ipairs(COMPARED) do
      if shadow[column] ~= row[column] then
        audit("differs_in_shadow",
          { id = row.id, column = column, projects = row[column], projects_new = shadow[column] })
      end
    end
  end,
  verify = function()
    expect_count("projects_new", {}, count("projects", {}))
    expect(checksum("projects", COMPARED) == checksum("projects_new", COMPARED),
      "checksum of projects and projects_new over " .. table.concat(COMPARED, ", "))
    local same, detail = same_rows("projects", "projects_new", "id", COMPARED)
    expect(same, "same rows: " .. detail)
    for _, child in ipairs({ "assignments", "tasks" }) do
      local loose = orphans({ child = child, fk = "project_id", parent = "projects_new" })
      expect(loose.count == 0, child .. ".project_id found in projects_new (" .. loose.count .. " missing)")
    end
  end,
}
