"""What the user configures: the source and params models with request parsing, the schema helpers they
are built with, the k0sctl.yaml reader, and path checks."""
