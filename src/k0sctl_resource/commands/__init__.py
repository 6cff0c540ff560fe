"""One module per step (check, get) and per put command (apply, reset, backup, init, ping)."""
