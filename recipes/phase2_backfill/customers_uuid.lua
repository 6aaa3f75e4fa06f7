-- phase2_backfill/customers_uuid.lua
--
-- Gives every customer from the old CRM a stable UUID derived from its legacy id:
-- map_id("customer", legacy_id) returns the same UUID on every machine and every
-- run, and records the pair in the ledger's customer_id_map, where an existing
-- mapping always wins. Ids are trimmed first (" 1003 " is 1003); a value that is
-- not a legacy integer id ("n/a") or no id at all is audited and left alone.
--
--   host run recipes/phase2_backfill/customers_uuid.lua --dry-run

local convert = require "convert"

return {
  name = "customers-uuid-from-legacy-id",
  version = "1",
  description = "customers.uuid = map_id('customer', legacy_id).",
  table = "customers",
  columns = { "id", "legacy_id", "uuid" },
  where = { uuid = EMPTY },
  writes = { customers = { "uuid" } },
  each = function(row)
    local legacy = row.legacy_id and convert.to_integer(convert.trim(row.legacy_id))
    if not legacy or legacy <= 0 then
      audit("unmapped_customer", { customer = row.id, legacy_id = row.legacy_id })
      return
    end
    patch_if_empty(row, "uuid", map_id("customer", legacy), { reason = "map_id('customer', legacy_id)" })
  end,
}
