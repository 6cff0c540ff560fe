"""Log lines for people, on stderr, always through the redactor: secrets masked, control characters (a
terminal's or Concourse's escape sequences, carriage returns) shown as `\\xNN`. Only the resource's own
styles (bold, colours) reach stderr as escape sequences."""

from __future__ import annotations

import os
import sys
import threading

from k0sctl_resource.runtime.redact import REDACT

_lock = threading.Lock()
_COLOR = os.environ.get("NO_COLOR") is None


def _style(code: str, text: str) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if _COLOR else text


def _emit(text: str) -> None:
    with _lock:
        sys.stderr.write(text)
        sys.stderr.flush()


def write(text: str) -> None:
    """Write text (lines already formatted) to stderr, made safe."""
    _emit(REDACT.safe(text))


def info(message: str) -> None:
    write(message + "\n")


def step(message: str) -> None:
    _emit(_style("1", REDACT.safe(message)) + "\n")


def ok(message: str) -> None:
    _emit(_style("32", REDACT.safe(message)) + "\n")


def warn(message: str) -> None:
    _emit(_style("33", "warning: ") + REDACT.safe(message) + "\n")


def error(message: str) -> None:
    _emit(_style("31", "error: ") + REDACT.safe(" ".join(message.split("\n"))) + "\n")


def human_bytes(size: int) -> str:
    """`512 B`, `1.5 KiB`, `3.2 MiB`, `1.1 GiB`."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def human_seconds(seconds: float) -> str:
    """`90s`, `45m`, `1.5h`: the largest unit that is at least one."""
    if seconds >= 3600:
        return f"{seconds / 3600:g}h"
    if seconds >= 60:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"
