local convert = require "convert"
return {
  name = "all-fields.v2_x", version = 2, description = "every field",
  table = "public.projects", key = { "tenant", "id" }, columns = "name",
  where = { status = NOT_EMPTY, id = { 1, 2, 3 }, name = "x", started_at = EMPTY },
  writes = { projects = "*", ["audit.notes"] = { "body", "author" } },
  batch_size = 1000000, commit = "batch", on_error = "skip",
  each = function(row) log.info(convert.trim(row.name), vars.since) end,
  verify = function() expect(true, "fine") end,
}
