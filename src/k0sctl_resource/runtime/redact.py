"""Replacing secret values by `***`, and control characters by visible escapes, in everything printed.

A multi-line secret (a PEM key, several age identities) is registered line by line as well, so that a
tool printing one line of it is caught too. Credentials inside URLs (`https://user:pass@host`) are
masked whatever their value.

Redaction is one scan of the text by one compiled pattern (every secret and the URL form as one
alternation), so its cost grows with the text, not with the text times its length: every part of the
pattern matches a bounded number of characters. `Redactor.max_match` bounds the longest match, which is what
a reader that cuts a long line into pieces must carry over from one piece to the next (`safe_cut`).
"""

from __future__ import annotations

import re
import threading

MASK = "***"
MIN_LINE = 6  # shorter lines of a multi-line secret ("-----", "") would mask innocent text
_SCHEME, _USER, _PASSWORD = 32, 256, 1024  # longest scheme, user and password the URL form masks
_URL = (rf"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]{{0,{_SCHEME - 1}}}://)(?P<user>[^/\s:@]{{1,{_USER}}})"
        rf":(?P<pw>[^/\s@]{{1,{_PASSWORD}}})@")
URL_MATCH = _SCHEME + 3 + _USER + 1 + _PASSWORD + 1  # the longest text the URL form masks
# Every C0 control but tab and line feed, DEL and the C1 controls: a terminal or Concourse's UI acts on them.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_CONTROL_OR_BREAK = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str, *, one_line: bool = False) -> str:
    """`text` with every control character shown as `\\xNN`; tab and line feed are kept unless `one_line`."""
    pattern = _CONTROL_OR_BREAK if one_line else _CONTROL
    return pattern.sub(_escape, text) if pattern.search(text) else text


def _alternation(words: list[str]) -> str:
    """One regular expression that matches any of `words`, the longest where several begin at one place: a
    trie (common beginnings spelled once), so that the engine walks each candidate once instead of once
    per word, and skips through the text by the words' first characters."""
    trie: dict[str, dict] = {}  # type: ignore[type-arg]
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def emit(node: dict) -> str:  # type: ignore[type-arg]
        ends = "" in node
        branches = []
        for char in sorted(c for c in node if c):
            run, child = char, node[char]
            while len(child) == 1 and "" not in child:  # a chain without a choice: one literal run
                (next_char, child), = child.items()
                run += next_char
            branches.append(re.escape(run) + emit(child))
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if not ends:
            return body
        return f"(?:{body})?"  # greedy: the longer word first, then the word that ends here

    return emit(trie)


class Redactor:
    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._pattern = re.compile(_URL)
        self._literal: re.Pattern[str] | None = None  # the secrets alone: for text without "://", much faster
        self._longest = 0
        self._backslash = False  # whether a secret holds a backslash, which an escape could spell
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
            self._compile()

    @property
    def secrets(self) -> frozenset[str]:
        """Every value masked (for a caller that runs a step in its own process and must restore them)."""
        return frozenset(self._secrets)

    def replace(self, secrets: frozenset[str]) -> None:
        """Mask exactly `secrets` from now on (see `secrets`)."""
        with self._lock:
            self._secrets = set(secrets)
            self._compile()

    def _compile(self) -> None:
        ordered = sorted(self._secrets, key=len, reverse=True)
        literal = _alternation(ordered)  # the longest secret wins at a position
        self._pattern = re.compile(f"(?P<secret>{literal})|{_URL}" if literal else _URL)
        self._literal = re.compile(literal) if literal else None
        self._longest = len(ordered[0]) if ordered else 0
        self._backslash = any("\\" in secret for secret in ordered)

    @property
    def max_match(self) -> int:
        """The length of the longest text one mask can replace."""
        return max(self._longest, URL_MATCH)

    def _mask(self, match: re.Match[str]) -> str:
        if match.group("scheme") is None:
            return MASK
        # A URL that begins before a secret does, the secret in its scheme or user part: masked there too.
        shown = f"{match.group('scheme')}{match.group('user')}"
        return f"{self._literal.sub(MASK, shown) if self._literal is not None else shown}:{MASK}@"

    def _for(self, text: str) -> re.Pattern[str] | None:
        """The pattern to scan `text` with: without "://" the URL form cannot match, and the secrets alone
        (an alternation of literals, which the regex engine skips through by their first characters) find
        exactly what the whole pattern would."""
        return self._pattern if "://" in text else self._literal

    def __call__(self, text: str) -> str:
        pattern = self._for(text)
        if pattern is None:
            return text
        if pattern is self._literal:
            return pattern.sub(MASK, text)
        return pattern.sub(self._mask, text)

    def bytes(self, data: bytes) -> bytes:
        return self(data.decode("utf-8", errors="replace")).encode("utf-8")

    def safe(self, text: str, *, one_line: bool = False) -> str:
        """What may be shown: secrets masked, control characters escaped (masked again afterwards, for a
        secret that an escape spells). `one_line`: line breaks and tabs are escaped too."""
        masked = self(text)
        escaped = escape_controls(masked, one_line=one_line)
        if escaped is masked or not (self._backslash or "://" in escaped):  # no escape can spell a secret
            return escaped
        return self(escaped)

    def safe_cut(self, text: str, at: int) -> int:
        """A place at or after `at` where `text` may be cut without cutting through a masked value, for a
        reader that passes on a long line in pieces: `text` must hold `max_match - 1` characters past `at`
        (or end there), so that every match that begins before `at` ends inside it."""
        pattern = self._for(text)
        for match in pattern.finditer(text) if pattern is not None else ():
            if match.start() >= at:
                break
            if match.end() > at:
                return match.end()
        return at


# One redactor for the whole process: the top level fills it as soon as the source is parsed.
REDACT = Redactor()
