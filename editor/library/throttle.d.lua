---@meta throttle
-- throttle (stdlib/throttle.lua): ready-made `pause_when` queries.

---@class throttle
local throttle = {}

---SQL for `pause_when`: true while a streaming replica replays more than `interval`
---behind ("30 seconds"); false without replicas. Needs pg_read_all_stats (pg_monitor).
---@param interval string a number and a unit, or several: "30 seconds", "1 hour 30 minutes"
---@return string sql
function throttle.replica_lag_over(interval) end

---SQL for `pause_when`: true while another client session has run one statement for
---more than `interval` ("5 minutes"). Needs pg_read_all_stats (pg_monitor).
---@param interval string a number and a unit, or several: "5 minutes", "90 s"
---@return string sql
function throttle.long_queries_over(interval) end

return throttle
