local m = require "../../etc/passwd"
return { name = "r", table = "t", each = function() end }
