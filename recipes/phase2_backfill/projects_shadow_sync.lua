-- phase2_backfill/projects_shadow_sync.lua
--
-- Keeps projects_new (the table the new app reads) in sync with projects. Each
-- source row is upserted with fill_from: a missing row is inserted, an existing
-- one only gets its empty cells filled, never overwritten (a value the new app
-- wrote wins; differences are what verify_projects_new.lua reports).
--
-- Incremental: only rows updated after --var since=... are scanned, so a nightly
-- run passes the time of the previous one. Without it, everything is synced.
--
--   host run recipes/phase2_backfill/projects_shadow_sync.lua --dry-run
--   host run recipes/phase2_backfill/projects_shadow_sync.lua --var since=2024-06-01

local since = vars.since or "1970-01-01"
-- The value becomes part of a SQL predicate: accept a date or a timestamp only.
if not (since:match("^%d%d%d%d%-%d%d%-%d%d$") or since:match("^%d%d%d%d%-%d%d%-%d%d[ T]%d%d:%d%d:%d%d$")) then
  error("--var since must be YYYY-MM-DD or YYYY-MM-DD HH:MM:SS, got '" .. since .. "'")
end

local SYNCED = { "id", "code", "name", "status", "customer_id", "created_at" }

return {
  name = "projects-new-sync",
  version = "1",
  description = "projects -> projects_new (insert missing rows, fill empty cells), since a watermark.",
  table = "projects",
  columns = { "id", "code", "name", "status", "customer_id", "created_at", "updated_at" },
  where = "updated_at > '" .. since .. "'",
  writes = { projects_new = SYNCED },
  commit = "batch",
  batch_size = 1000,
  each = function(row)
    local values = {}
    for _, column in ipairs(SYNCED) do values[column] = row[column] end
    fill_from("projects_new", values, { reason = "shadow sync" })
  end,
}
