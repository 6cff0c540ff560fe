"""A private temporary directory for one step: mode 0700, removed when the step ends.

Every file that may hold a secret or a plain archive (SSH keys, known_hosts, the k0sctl cache and log,
the archive before encryption) lives here and nowhere else; `write_private` creates such files.
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


def write_private(path: str | os.PathLike[str], content: str, mode: int = 0o600) -> Path:
    """Write `content` (a key, known_hosts lines, a helper script) to a file only this user may read.

    The file is created with `mode` from the start (never briefly world-readable) and a symbolic link in
    its place is refused. Non-empty text is ended with a newline, as ssh and git expect.
    """
    target = Path(path)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(content if not content or content.endswith("\n") else content + "\n")
    return target
