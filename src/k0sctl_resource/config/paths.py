"""Paths given in params must stay inside the step's directory; files read from them must be regular."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from k0sctl_resource.runtime.errors import ResourceError


def inside(base: Path, relative: str, name: str) -> Path:
    """Resolve `relative` (a param called `name`) against `base`; refuse anything that escapes it.

    `..` and symbolic links are resolved first, so `config/../../etc/passwd` and a link pointing out of
    the directory are both refused.
    """
    if not relative or "\x00" in relative:
        raise ResourceError(f"params.{name}: must be a path relative to the put's directory")
    if os.path.isabs(relative) or relative.startswith("~"):
        raise ResourceError(f"params.{name}: must be relative to the put's directory, not absolute")
    try:
        root = base.resolve()
        target = (root / relative).resolve()
    except RuntimeError:  # Python 3.11's resolve() on a loop of symbolic links
        raise ResourceError(f"params.{name}: {relative!r} is a symbolic link loop") from None
    except OSError as exc:
        raise ResourceError(f"params.{name}: {relative!r} cannot be resolved ({exc.strerror})") from None
    if target != root and root not in target.parents:
        raise ResourceError(f"params.{name}: {relative!r} points outside the put's directory")
    return target


def refuse_symlinks(base: Path, relative: str, name: str) -> None:
    """Refuse `relative` (a param called `name`) when any of its components below `base` is a symbolic
    link, wherever it points: what is restored must be the file the put's inputs hold, nothing else."""
    current = base
    for part in Path(relative).parts:
        current = current / part
        if part in (".", ".."):
            continue
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            return
        except OSError as exc:
            raise ResourceError(f"params.{name}: {relative!r} cannot be read ({exc.strerror})") from None
        if stat.S_ISLNK(mode):
            raise ResourceError(f"params.{name}: {relative!r}: {part} is a symbolic link; refusing it")


def kind_of(mode: int) -> str:
    for test, kind in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a device"),
                       (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return kind
    return "not a regular file"


def open_regular(path: Path, what: str, *, follow: bool = True) -> int:
    """Open `path` for reading only when it is a regular file (a FIFO would block, a device never ends);
    `follow=False` also refuses a symbolic link. Returns a blocking descriptor; errors name `what`."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise ResourceError(f"{what} not found: {path}") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            reason = "a symbolic link loop" if follow else "a symbolic link"
            raise ResourceError(f"{what} {path} is {reason}; refusing it") from None
        raise ResourceError(f"cannot read {what} {path}: {exc.strerror}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise ResourceError(f"{what} {path} is {kind_of(mode)}, not a regular file; refusing it")
    os.set_blocking(fd, True)
    return fd


def read_regular(path: Path, what: str, limit: int, *, follow: bool = True) -> bytes:
    """The bytes of the regular file `path` (see `open_regular`), refused when larger than `limit`."""
    with os.fdopen(open_regular(path, what, follow=follow), "rb") as handle:
        try:
            data = handle.read(limit + 1)
        except OSError as exc:
            raise ResourceError(f"cannot read {what} {path}: {exc.strerror}") from None
    if len(data) > limit:
        raise ResourceError(f"{what} {path} is larger than {limit // 1024} KiB; refusing it")
    return data
