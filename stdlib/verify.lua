-- verify: the verification helpers of RECIPE_API.md section 7, as a module.
--
-- The host provides them as globals (inside `verify` and everywhere else);
-- this module hands the same functions to code that prefers explicit imports:
--
--   local v = require "verify"
--   v.expect_count("phases", { status = EMPTY }, 0)
--
-- expect(cond, message)              records a check; returns cond
-- count(table, where)                number of matching rows
-- expect_count(table, where, n)      records "count is n"; returns ok
-- orphans{ child, fk, parent, key }  -> { count = n, sample = { fk values... } }
-- checksum(table, columns [, where]) md5 over the sorted rows' text
-- same_rows(a, b, key, columns)      -> ok, detail (rows only in a, only in b, different)

return {
  expect = expect,
  count = count,
  expect_count = expect_count,
  orphans = orphans,
  checksum = checksum,
  same_rows = same_rows,
}
