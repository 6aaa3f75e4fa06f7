-- demo/projects_uuid.lua
--
-- Gives every project migrated from the legacy tracker a stable UUID derived
-- from its legacy id (map_id: the same UUID on every machine and every run, kept
-- in the ledger's project_id_map). Projects created after the migration have no
-- legacy id; they are audited and left for the new services to name.
--
--   host run recipes/demo/projects_uuid.lua --dry-run

return {
  name = "demo-projects-uuid",
  version = "1",
  description = "projects.uuid = map_id('project', legacy_id).",
  table = "projects",
  columns = { "id", "legacy_id", "uuid" },
  where = { uuid = EMPTY },
  writes = { projects = { "uuid" } },
  each = function(row)
    if row.legacy_id == nil then
      audit("no_legacy_id", { project = row.id })
      return
    end
    patch_if_empty(row, "uuid", map_id("project", row.legacy_id), { reason = "map_id('project', legacy_id)" })
  end,
}
