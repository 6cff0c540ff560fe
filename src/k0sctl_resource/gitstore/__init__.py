"""The backup repository in git: the remote and its credentials, the git runner, the store (one commit per
backup or init), the commit message format, and the cache behind `check`."""
