-- version_stamp/health_check.lua
--
-- A read-only health check (no writes): names every document not at "v2" in the
-- audit trail, then verifies that no document is still missing a version or still
-- at "v1". Exit 0 when healthy, 3 when a check fails, so it can gate a deploy:
--
--   host run recipes/version_stamp/health_check.lua

return {
  name = "documents-schema-version-health",
  version = "1",
  description = "Read-only: documents still missing a version or still at v1.",
  table = "documents",
  columns = { "id", "title", "schema_version" },
  where = "schema_version IS DISTINCT FROM 'v2'",
  each = function(row)
    audit("not_v2", { id = row.id, title = row.title, schema_version = row.schema_version })
  end,
  verify = function()
    expect_count("documents", { schema_version = EMPTY }, 0)
    expect_count("documents", { schema_version = "v1" }, 0)
    local other = count("documents", "schema_version NOT IN ('v1', 'v2')")
    if other > 0 then log.info(other, "document(s) hold a version of their own; see the audit events") end
  end,
}
