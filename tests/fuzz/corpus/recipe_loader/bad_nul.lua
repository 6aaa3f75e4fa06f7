return { name = "nul\0name", table = "t\0x", each = function() end }
