return { name = "s", table = "t", each = function( end
