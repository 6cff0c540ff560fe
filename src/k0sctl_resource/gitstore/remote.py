"""Where a branch of backups lives: the value the store and the check cache share."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Remote:
    url: str  # credential-free: passed to git, shown in logs and errors
    branch: str
    env: Mapping[str, str]  # what authenticates git to `url` (may point at private files); never logged

    @property
    def head_ref(self) -> str:
        return f"refs/heads/{self.branch}"

    def describe(self) -> str:
        return f"branch {self.branch} of {self.url}"
