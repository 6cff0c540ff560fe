"""Log lines for people, on stderr, always through the redactor."""

from __future__ import annotations

import os
import sys
import threading

from k0sctl_resource.runtime.redact import REDACT

_lock = threading.Lock()
_COLOR = os.environ.get("NO_COLOR") is None


def _style(code: str, text: str) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if _COLOR else text


def write(text: str) -> None:
    """Write raw text (already formatted) to stderr, redacted."""
    with _lock:
        sys.stderr.write(REDACT(text))
        sys.stderr.flush()


def info(message: str) -> None:
    write(message + "\n")


def step(message: str) -> None:
    write(_style("1", message) + "\n")


def ok(message: str) -> None:
    write(_style("32", message) + "\n")


def warn(message: str) -> None:
    write(_style("33", "warning: ") + message + "\n")


def error(message: str) -> None:
    write(_style("31", "error: ") + " ".join(message.split("\n")) + "\n")
