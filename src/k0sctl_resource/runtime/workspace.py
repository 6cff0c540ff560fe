"""A private temporary directory for one step: mode 0700, removed when the step ends.

Every file that may hold a secret or a plain archive (SSH keys, known_hosts, the k0sctl cache and log,
the archive before encryption) lives here and nowhere else; `write_private` creates such files.

The directory is removed when its `with` block ends, should that removal be cut short (an abort) by the
step's final sweep, and should the step be killed by its watchdog (`runtime.lifecycle`,
`runtime.watchdog`). A secret that k0sctl must never see (the backup repository's key) is in no file
of it: k0sctl.yaml's `files:` uploads any local path (see `gitstore.auth`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from types import TracebackType

from k0sctl_resource.runtime import lifecycle
from k0sctl_resource.runtime.errors import ResourceError


class Workspace:
    def __init__(self, prefix: str = "k0sctl-resource-") -> None:
        self._prefix = prefix
        self._path: Path | None = None
        self._token = 0

    @property
    def path(self) -> Path:
        if self._path is None:
            raise RuntimeError("workspace used outside its with-block")
        return self._path

    def __enter__(self) -> Workspace:
        # The name is chosen and given to the watchdog first, then the directory is created: a SIGKILL at
        # any moment leaves nothing behind (see `runtime.watchdog`).
        while True:
            path = Path(tempfile.gettempdir()) / f"{self._prefix}{os.urandom(4).hex()}"
            self._token = lifecycle.remove_later(path)
            try:
                os.mkdir(path, 0o700)
            except FileExistsError:
                lifecycle.forget_path(path, self._token)  # not ours: never removed
                continue
            break
        self._path = path
        os.chmod(path, 0o700)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._path is not None:
            shutil.rmtree(self._path, ignore_errors=True)
            if not os.path.lexists(self._path):  # else a process still wrote into it: the sweeps retry
                lifecycle.forget_path(self._path, self._token)
            self._path = None

    def dir(self, name: str) -> Path:
        """A private sub-directory, created on first use."""
        sub = self.path / name
        sub.mkdir(mode=0o700, exist_ok=True)
        return sub


def open_private(path: str | os.PathLike[str], mode: int = 0o600, *, exclusive: bool = False) -> int:
    """Open `path` for writing as a file with exactly `mode`: never through a symbolic link, and an
    existing file's permissions are set to `mode` too (O_CREAT's mode applies to new files only, so a
    file found there with 0644 would otherwise stay world-readable). `exclusive`: any file in its place
    is refused."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC | (os.O_EXCL if exclusive else 0)
    fd = os.open(path, flags, mode)
    try:
        os.fchmod(fd, mode)
    except OSError:
        os.close(fd)
        raise
    return fd


def write_private(path: str | os.PathLike[str], content: str, mode: int = 0o600, *,
                  exclusive: bool = False) -> Path:
    """Write `content` (a key, known_hosts lines, a helper script) to a file only this user may read.

    The file has `mode` from the start (never briefly world-readable, see `open_private`) and a symbolic
    link in its place is refused. Non-empty text is ended with a newline, as ssh and git expect.
    """
    target = Path(path)
    with os.fdopen(open_private(target, mode, exclusive=exclusive), "w", encoding="utf-8") as handle:
        handle.write(content if not content or content.endswith("\n") else content + "\n")
    return target


def replace_file(path: Path, content: bytes, mode: int = 0o600) -> None:
    """Put `content` at `path` as a new file with `mode`, by writing a temporary file beside it and
    renaming it over `path`: an existing file's permissions or a symbolic link there (which is refused,
    not followed) never decide who may read it, and a reader never sees half a file."""
    if path.is_symlink():
        raise ResourceError(f"{path} is a symbolic link; refusing to write through it")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:
        raise ResourceError(f"cannot write {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(content)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise ResourceError(f"cannot write {path}: {exc.strerror}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def make_room(path: Path) -> Path:
    """Remove whatever file or link is at `path` (never what a link points to), so that the file written
    there next is a new one with the writer's permissions."""
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except IsADirectoryError:
        raise ResourceError(f"cannot write {path}: a directory is in its place") from None
    return path
