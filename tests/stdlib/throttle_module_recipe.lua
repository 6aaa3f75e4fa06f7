-- tests/stdlib/throttle_module_recipe.lua: a read-only recipe for throttle_test.lua.
-- It sets pause_when from the module, and on its one row runs both of the module's
-- queries through query(), which applies the same guard as pause_when: the run
-- succeeding shows they pass it; the audit shows their answers.

local throttle = require "throttle"

return {
  name = "stdlib-throttle-module",
  version = "1",
  description = "Exercises stdlib/throttle.lua; writes nothing.",
  table = "items",
  pause_when = throttle.replica_lag_over("30 seconds"),
  each = function()
    audit("answers", {
      replica_lag = query(throttle.replica_lag_over("30 seconds"))[1].pause,
      long_queries = query(throttle.long_queries_over("5 minutes"))[1].pause,
    })
  end,
}
