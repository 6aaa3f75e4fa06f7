return { name = "two", table = "t", input = "i", each = function() end }
