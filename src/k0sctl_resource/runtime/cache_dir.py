"""Directories for state kept between steps in a shared temporary space (`$TMPDIR`), trusted only when
they are this user's own.

Another user of the worker may create `$TMPDIR/<name>` first, fill it (a planted `state.json`, a git
repository whose config runs programs) or put a symbolic link in its place. A directory is used only
when it is a real directory (opened with `O_NOFOLLOW`), owned by the effective user and writable by no
one else; a directory of ours that others may merely read is made 0700. Anything else is left alone
and the caller works in a fresh private directory instead (`private_fallback`), removed afterwards:
a check stays correct, it only loses its cache.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

_SEARCH_ONLY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def owned_dir(path: Path) -> str | None:
    """Create `path` (0700) unless it exists; None when it is this user's private directory, else why
    it cannot be trusted."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        return f"cannot be created ({exc.strerror})"
    try:
        fd = os.open(path, _SEARCH_ONLY)
    except OSError:
        return "is a symbolic link or not a directory"
    try:
        info = os.fstat(fd)
        if not stat.S_ISDIR(info.st_mode):
            return "is not a directory"
        if info.st_uid != os.geteuid():
            return f"belongs to another user (uid {info.st_uid})"
        if info.st_mode & 0o022:
            return "may be written by other users"
        if info.st_mode & 0o777 != 0o700:
            os.fchmod(fd, 0o700)
        now = os.lstat(path)  # the name still leads to the directory we checked (not swapped meanwhile)
        if (now.st_dev, now.st_ino) != (info.st_dev, info.st_ino):
            return "was replaced while it was checked"
    finally:
        os.close(fd)
    return None


def trusted_path(root: Path, *names: str) -> tuple[Path | None, str]:
    """`root/names…`, every level created or checked by `owned_dir`; (None, why) at the first that fails."""
    path = root
    for level in (None, *names):
        if level is not None:
            path = path / level
        why = owned_dir(path)
        if why is not None:
            return None, f"{path} {why}"
    return path, ""


@contextlib.contextmanager
def private_fallback(prefix: str) -> Iterator[Path]:
    """A fresh private directory in `$TMPDIR`, removed when the block ends."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def lock(path: Path, wait: float) -> int | None:
    """An exclusive lock on the file `path` (created 0600, never through a symlink), waited for at most
    `wait` seconds: the open descriptor (close it to unlock), or None when the wait ran out."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    deadline = time.monotonic() + wait
    pause = 0.02
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                return None
            time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            pause = min(pause * 2, 0.5)


def read_private(path: Path, limit: int = 16 * 1024 * 1024) -> str | None:
    """The text of the regular file `path` (not followed through a symlink), None when it cannot be read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return None
        data = handle.read(limit + 1)
    return data.decode("utf-8", "replace") if len(data) <= limit else None
