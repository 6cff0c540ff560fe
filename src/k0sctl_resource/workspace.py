"""A private temporary directory for one step: mode 0700, removed when the step ends.

Every file that may hold a secret or a plain archive (SSH keys, known_hosts, the k0sctl cache and log,
the archive before encryption) lives here and nowhere else.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from types import TracebackType


class Workspace:
    def __init__(self, prefix: str = "k0sctl-resource-") -> None:
        self._prefix = prefix
        self._path: Path | None = None

    @property
    def path(self) -> Path:
        if self._path is None:
            raise RuntimeError("workspace used outside its with-block")
        return self._path

    def __enter__(self) -> Workspace:
        old = os.umask(0o077)
        try:
            self._path = Path(tempfile.mkdtemp(prefix=self._prefix))
        finally:
            os.umask(old)
        os.chmod(self._path, 0o700)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._path is not None:
            shutil.rmtree(self._path, ignore_errors=True)
            self._path = None

    def dir(self, name: str) -> Path:
        """A private sub-directory, created on first use."""
        sub = self.path / name
        sub.mkdir(mode=0o700, exist_ok=True)
        return sub

    def write_secret(self, name: str, content: str) -> Path:
        """Write `content` to a 0600 file that only this user can read."""
        target = self.path / name
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content if content.endswith("\n") else content + "\n")
        return target
