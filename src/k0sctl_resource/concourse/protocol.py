"""The Concourse side of a step: read the request, keep stdout for the answer alone, write the answer.

Concourse reads only the first JSON value on stdout, so a single stray byte from us or from a child
process (k0sctl, git, ssh) before it would break the step. `AnswerChannel` therefore moves the real
stdout to a private, non-inheritable file descriptor and points descriptor 1 at stderr for the rest
of the process: whatever anybody writes to "stdout" lands in the log instead. A step run in-process
(tests) hands it the stream to answer on instead, and the process's descriptors stay as they are.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterable, Mapping
from typing import Any, TextIO

from k0sctl_resource.config.safe_load import check_values, number_error
from k0sctl_resource.runtime.errors import ResourceError
from k0sctl_resource.runtime.redact import REDACT

MAX_REQUEST = 4 * 1024 * 1024
# A request nests a handful of levels. The json module's own limit (a RecursionError) differs between
# Python versions (about 1,000 levels on 3.11, several thousand on 3.13), so the bound is ours.
MAX_NESTING = 64
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


class AnswerChannel:
    def __init__(self, stream: TextIO | None = None) -> None:
        """Answer on `stream`; by default on the process's stdout, which from now on only the answer reaches."""
        self._sent = False
        if stream is not None:
            self._out = stream
            return
        sys.stdout.flush()
        saved = os.dup(1)  # non-inheritable by default: children never get it
        os.dup2(2, 1)
        self._out = os.fdopen(saved, "w", encoding="utf-8")
        sys.stdout = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)

    def send(self, value: Any) -> None:
        if self._sent:
            raise RuntimeError("an answer was sent already")
        text = json.dumps(value, indent=2, sort_keys=False)
        if REDACT(text) != text:
            # A secret must never reach the answer; this is a bug, not user error.
            raise ResourceError("refusing to print an answer that contains a secret value")
        self._out.write(text + "\n")
        self._out.flush()
        self._sent = True


def read_request(stream: TextIO | None = None) -> Any:
    handle = stream if stream is not None else sys.stdin
    if handle.isatty():
        raise ResourceError("request: expected a JSON object on stdin (got a terminal)")
    raw = handle.buffer.read(MAX_REQUEST + 1) if hasattr(handle, "buffer") else handle.read(MAX_REQUEST + 1)
    if len(raw) > MAX_REQUEST:
        raise ResourceError(f"request: larger than {MAX_REQUEST // (1024 * 1024)} MiB")
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        raise ResourceError(f"request: not UTF-8 text (byte {exc.start})") from None
    return parse_json(text)


def _too_deep(text: str) -> bool:
    depth = 0
    for bracket in _NOT_BRACKET.sub("", _STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        if depth > MAX_NESTING:
            return True
    return False


def parse_json(text: str) -> Any:
    if not text.strip():
        raise ResourceError("request: stdin is empty; expected a JSON object")
    if _too_deep(text):
        raise ResourceError(f"request: JSON nested too deeply (more than {MAX_NESTING} levels)")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ResourceError(f"request: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except RecursionError:
        raise ResourceError("request: JSON nested too deeply") from None
    except ValueError as exc:  # an integer longer than Python converts
        raise number_error(exc, "request") from None
    check_values(value, "request")
    return value


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".")
    if isinstance(value, list | tuple):
        return ", ".join(_text(v) for v in value)
    return str(value)


def metadata(facts: Mapping[str, object] | Iterable[tuple[str, object]]) -> list[dict[str, str]]:
    """Concourse metadata: a list of {name, value} strings, redacted, one line each (control characters
    escaped: Concourse's UI renders terminal escapes), None values left out."""
    items = facts.items() if isinstance(facts, Mapping) else facts
    return [{"name": name, "value": REDACT.safe(_text(value), one_line=True)} for name, value in items
            if value is not None]
