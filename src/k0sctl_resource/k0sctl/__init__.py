"""k0sctl: finding and running the binary, its versions, and the SSH environment it runs in."""
