return { name = "w", table = "t", where = { [EMPTY] = 1, x = { {} }, y = function() end },
  each = function() end }
