-- phase2_backfill/time_entries_seconds.lua
--
-- time_entries.duration_seconds (integer) from the legacy duration_minutes
-- (numeric): 45.5 minutes -> 2730 seconds. A NULL source stays NULL (those rows
-- are not even scanned), a value someone already wrote in duration_seconds is
-- kept, and a fraction of a second is rounded to the nearest second and audited.
-- time_entries is the big table of the schema, so the run commits per batch and
-- can be resumed (host resume RUN_ID) if interrupted.
--
--   host run recipes/phase2_backfill/time_entries_seconds.lua --dry-run

local convert = require "convert"

return {
  name = "time-entries-duration-seconds",
  version = "1",
  description = "time_entries.duration_seconds from duration_minutes * 60.",
  table = "time_entries",
  columns = { "id", "duration_minutes", "duration_seconds" },
  where = { duration_seconds = EMPTY, duration_minutes = NOT_EMPTY },
  writes = { time_entries = { "duration_seconds" } },
  batch_size = 5000,
  commit = "batch",
  each = function(row)
    local seconds, err = convert.minutes_to_seconds(row.duration_minutes)
    if not seconds then
      audit("bad_duration", { entry = row.id, minutes = row.duration_minutes, error = err })
      return
    end
    local whole = math.floor(seconds + 0.5)
    if whole ~= seconds then
      audit("rounded_duration", { entry = row.id, minutes = row.duration_minutes, seconds = whole })
    end
    patch_if_empty(row, "duration_seconds", whole, { reason = "duration_minutes * 60" })
  end,
  verify = function()
    expect_count("time_entries", { duration_seconds = EMPTY, duration_minutes = NOT_EMPTY }, 0)
  end,
}
