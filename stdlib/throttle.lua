-- throttle: ready-made `pause_when` queries (RECIPE_API.md section 10). While the
-- query answers true no worker starts a batch; it is checked at most once a second.
--
--   local throttle = require "throttle"
--   return {
--     ...
--     commit = "batch",
--     pause_when = throttle.replica_lag_over("30 seconds"),
--   }
--
--   replica_lag_over(interval)  -> SQL: true while a streaming replica replays more than
--                                  `interval` behind (false when there is no replica,
--                                  or when the replicas have caught up)
--   long_queries_over(interval) -> SQL: true while another client session has run one
--                                  statement for more than `interval` (idle sessions and
--                                  idle transactions do not count; nor do this host's
--                                  pause_when connection, background processes, autovacuum
--                                  and replication connections)
--
-- `interval` is a number and a unit, or several ("90 seconds", "5 minutes",
-- "1 hour 30 minutes", "500ms"); units: ms, millisecond(s), s, sec(s), second(s),
-- min(s), minute(s), h, hour(s), d, day(s). Anything else raises, so no SQL can
-- reach the query through it.
--
-- Why these read pg_stat_get_wal_senders() and pg_stat_get_backend_*() rather than
-- the pg_stat_replication and pg_stat_activity views: both views call
-- pg_stat_get_activity(), which shows other sessions' statement texts and which the
-- guard of recipe SQL refuses (host/query_guard.cpp). The functions used here show
-- no statement text. A consequence: the host's own batch connections cannot be told
-- apart (no application_name without pg_stat_get_activity), so keep the interval of
-- long_queries_over above --statement-timeout (default 30 s), which bounds them.
--
-- Other sessions' figures are visible only to a role with pg_read_all_stats (or
-- pg_monitor, or a superuser); to any other role they look idle, and the query would
-- never pause the run. So without that right both queries fail, at the check before
-- the first batch, with "... needs a role with pg_read_all_stats (pg_monitor)".

local M = {}

local UNITS = {
  ms = true, millisecond = true, milliseconds = true,
  s = true, sec = true, secs = true, second = true, seconds = true,
  min = true, mins = true, minute = true, minutes = true,
  h = true, hour = true, hours = true,
  d = true, day = true, days = true,
}
local MAX_LENGTH = 100

-- The interval as SQL text `interval '...'`, or raises naming the function.
local function interval_sql(name, interval)
  if type(interval) ~= "string" then
    error("throttle." .. name .. ": expected an interval such as \"30 seconds\", got "
      .. type(interval), 3)
  end
  local text = interval:lower()
  local pairs_found = 0
  local rest = text
  while true do
    local number, unit, after = rest:match("^ *(%d+) *(%a+)(.*)$")
    if not number or not UNITS[unit] then break end
    pairs_found = pairs_found + 1
    rest = after
  end
  if pairs_found == 0 or not rest:match("^ *$") or #text > MAX_LENGTH then
    error(string.format("throttle.%s: not an interval: %q (a number and a unit, such as "
      .. "\"30 seconds\" or \"5 minutes\")", name, interval:sub(1, MAX_LENGTH)), 3)
  end
  -- Only digits, letters of a known unit and spaces are left: safe inside quotes.
  return "interval '" .. text:match("^ *(.-) *$") .. "'"
end

-- The CASE that refuses, at run time, a role that would see nothing. The text cast
-- to boolean is the error message: it is not a constant (current_user), so the
-- planner does not fold it and it fails only when the role lacks the right.
local function needs_stats_role(name, answer)
  return "CASE WHEN pg_has_role('pg_read_all_stats', 'USAGE') THEN " .. answer
    .. " ELSE ('throttle." .. name .. " needs a role with pg_read_all_stats (pg_monitor), not '"
    .. " || current_user)::boolean END"
end

function M.replica_lag_over(interval)
  local limit = interval_sql("replica_lag_over", interval)
  return "SELECT " .. needs_stats_role("replica_lag_over",
      "coalesce(bool_or(w.replay_lag > " .. limit .. "), false)")
    .. " AS pause FROM pg_stat_get_wal_senders() AS w"
end

function M.long_queries_over(interval)
  local limit = interval_sql("long_queries_over", interval)
  -- Running one statement: in a transaction and not waiting for the client's next
  -- command (an idle transaction waits in ClientRead). A client backend has a client
  -- port (-1 on a Unix socket); background processes and autovacuum have none.
  return "SELECT " .. needs_stats_role("long_queries_over",
      "coalesce(bool_or(pg_stat_get_backend_activity_start(b) < now() - " .. limit
      .. " AND pg_stat_get_backend_xact_start(b) IS NOT NULL"
      .. " AND pg_stat_get_backend_wait_event(b) IS DISTINCT FROM 'ClientRead'), false)")
    .. " AS pause FROM pg_stat_get_backend_idset() AS b"
    .. " WHERE pg_stat_get_backend_pid(b) <> pg_backend_pid()"
    .. " AND pg_stat_get_backend_client_port(b) IS NOT NULL"
    .. " AND pg_stat_get_backend_pid(b) NOT IN (SELECT pid FROM pg_stat_get_wal_senders())"
end

return M
