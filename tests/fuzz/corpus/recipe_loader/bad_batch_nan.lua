return { name = "nan", table = "t", batch_size = 0/0, each = function() end }
