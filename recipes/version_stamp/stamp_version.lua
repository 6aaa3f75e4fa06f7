-- version_stamp/stamp_version.lua
--
-- Stamps schema_version "v2" on documents that have no version (NULL or blank)
-- or hold the previous one ("v1"). Both writes are compare-and-set (patch_if):
-- the guard is checked again in SQL when the write lands, so a row changed in the
-- meantime is left alone. Any other value ("v9-custom", "V1") is not ours to
-- change: it is audited ("unexpected_version") and kept.
--
--   host run recipes/version_stamp/stamp_version.lua --dry-run

local convert = require "convert"

local TARGET, PREVIOUS = "v2", "v1"

return {
  name = "documents-schema-version-v2",
  version = "1",
  description = "schema_version: missing or 'v1' -> 'v2'; other values kept and reported.",
  table = "documents",
  columns = { "id", "title", "schema_version" },
  where = "schema_version IS DISTINCT FROM 'v2'",
  writes = { documents = { "schema_version" } },
  each = function(row)
    local current = row.schema_version
    if convert.is_blank(current) then
      patch_if(row, "schema_version", nil, TARGET, { reason = "no version: stamped " .. TARGET })
    elseif current == PREVIOUS then
      patch_if(row, "schema_version", PREVIOUS, TARGET, { reason = PREVIOUS .. " -> " .. TARGET })
    else
      audit("unexpected_version", { id = row.id, title = row.title, schema_version = current })
    end
  end,
}
