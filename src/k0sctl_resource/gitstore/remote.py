"""Where a branch of backups lives, and how long git may wait on it: the values the store and the check
cache share."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class NetBounds:
    """The bounds of git's network calls, all derived from `source.backup.timeout` (`stall`)."""

    stall: float  # a call that makes no progress for this long is stopped (transport level)

    @property
    def call(self) -> float:
        """Wall bound of a call that moves no archive (ls-remote, fetching commits and trees)."""
        return 2 * self.stall

    @property
    def bulk(self) -> float:
        """Wall bound of a call that moves an archive (the push of a backup, the fetch of one)."""
        return 10 * self.stall

    @property
    def retry_window(self) -> float:
        """No new push attempt starts this long after the first one."""
        return 5 * self.stall


@dataclass(frozen=True)
class Remote:
    url: str  # credential-free: passed to git, shown in logs and errors
    branch: str
    env: Mapping[str, str]  # what authenticates git to `url` (may point at private files); never logged
    bounds: NetBounds  # how long git's network calls may take (source.backup.timeout)

    @property
    def head_ref(self) -> str:
        return f"refs/heads/{self.branch}"

    def describe(self) -> str:
        return f"branch {self.branch} of {self.url}"
