---@meta verify
-- verify (stdlib/verify.lua): the verification helpers as a module.

---@class verify
local verify = {}

verify.expect = expect
verify.count = count
verify.expect_count = expect_count
verify.orphans = orphans
verify.checksum = checksum
verify.same_rows = same_rows

return verify
