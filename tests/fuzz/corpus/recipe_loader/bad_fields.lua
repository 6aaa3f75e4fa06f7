return {
  name = "Bad Name!", tabel = "phases", batch_size = 1.5, commit = "sometimes",
  on_error = "retry", writes = { [1] = { "x" } }, each = "not a function",
}
