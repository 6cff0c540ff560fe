"""Replacing secret values by `***` in everything that is printed.

A multi-line secret (a PEM key, several age identities) is registered line by line as well, so that a
tool printing one line of it is caught too. Credentials inside URLs (`https://user:pass@host`) are
masked whatever their value.
"""

from __future__ import annotations

import re
import threading

MASK = "***"
MIN_LINE = 6  # shorter lines of a multi-line secret ("-----", "") would mask innocent text
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^/\s:@]+):(?P<pw>[^/\s@]+)@")


class Redactor:
    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def add(self, *values: str | None) -> None:
        with self._lock:
            for value in values:
                if not value:
                    continue
                self._secrets.add(value)
                stripped = value.strip()
                if stripped and stripped != value:
                    self._secrets.add(stripped)
                for raw_line in value.splitlines():
                    line = raw_line.strip()
                    if len(line) >= MIN_LINE and not line.startswith("-----"):
                        self._secrets.add(line)
            ordered = sorted(self._secrets, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(s) for s in ordered)) if ordered else None

    def __call__(self, text: str) -> str:
        pattern = self._pattern
        if pattern is not None:
            text = pattern.sub(MASK, text)
        return _URL_CREDENTIALS.sub(lambda m: f"{m.group('scheme')}{m.group('user')}:{MASK}@", text)

    def bytes(self, data: bytes) -> bytes:
        return self(data.decode("utf-8", errors="replace")).encode("utf-8")


# One redactor for the whole process: the top level fills it as soon as the source is parsed.
REDACT = Redactor()
