local ok, err = pcall(query, "select 1")
rawset(_G, "x", 1)
EMPTY = nil
local deep = {}
for i = 1, 300 do deep = { deep } end
return { name = "calls", table = "t", where = { x = deep }, each = function() end }
