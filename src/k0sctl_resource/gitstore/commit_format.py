"""What the backup branch records and how: the facts of a commit as trailers in its message, the names
of the archive files (a UTC timestamp, `-2`, `-3`, … on collisions) and which of them `keep` removes.

Plain text and names only; nothing here runs git.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime

from k0sctl_resource.runtime.redact import REDACT

ARCHIVE_SUFFIXES = (".tar.gz.age", ".tar.gz")
_ARCHIVE_NAME = re.compile(r"^(?P<stem>.+)-(?P<ts>\d{8}T\d{6}Z)(?:-(?P<n>\d+))?(?P<ext>\.tar\.gz(?:\.age)?)$")

# The facts of a commit, as git trailers in its message, and their names in metadata.json.
KIND_TRAILER = "K0sctl-Resource-Kind"
TRAILERS: tuple[tuple[str, str, type], ...] = (
    (KIND_TRAILER, "kind", str),
    ("Archive", "archive", str),
    ("Archive-Path", "archive_path", str),
    ("Created-At", "created_at", str),
    ("Cluster", "cluster", str),
    ("Hosts", "hosts", str),  # the cluster's host addresses, comma-separated (a drill refuses them)
    ("Sha256", "sha256", str),
    ("Size", "size", int),
    ("Encrypted", "encrypted", bool),
    ("Entries", "entries", int),
    ("Parts", "parts", str),
    ("K0sctl-Version", "k0sctl_version", str),
    ("K0s-Version", "k0s_version", str),  # the k0s version k0sctl found running when it took the backup
    ("Build-Url", "build_url", str),
    ("Build", "build", str),
    ("Reason", "reason", str),
    ("Removed-Archives", "removed_archives", int),
    ("Archived-As", "archived_as", str),
    ("Previous-Tip", "previous_tip", str),
)
_TRAILER_BY_KEY = {key: (name, tp) for name, key, tp in TRAILERS}
_TRAILER_BY_NAME = {name.lower(): (key, tp) for name, key, tp in TRAILERS}


def utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def compact_stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


# -- commit messages -------------------------------------------------------------------------------

def _one_line(value: object) -> str:
    text = "true" if value is True else "false" if value is False else str(value)
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())


def format_message(subject: str, body: Sequence[str], facts: Mapping[str, object]) -> str:
    """A commit message: subject, body, then the facts as trailers (in TRAILERS order)."""
    lines = [_one_line(subject), ""]
    if body:
        lines += [_one_line(b) for b in body] + [""]
    for key, value in facts.items():
        if value is None or key not in _TRAILER_BY_KEY:
            continue
        lines.append(f"{_TRAILER_BY_KEY[key][0]}: {_one_line(value)}")
    return REDACT("\n".join(lines) + "\n")


def parse_trailers(message: str) -> dict[str, object]:
    """The facts of a commit message written by `format_message` (unknown trailers are ignored)."""
    paragraphs = [p for p in message.strip().split("\n\n") if p.strip()]
    if len(paragraphs) < 2:
        return {}
    facts: dict[str, object] = {}
    for line in paragraphs[-1].splitlines():
        name, sep, value = line.partition(":")
        if not sep or name.lower() not in _TRAILER_BY_NAME:
            continue
        key, tp = _TRAILER_BY_NAME[name.lower()]
        value = value.strip()
        if tp is int:
            try:
                facts[key] = int(value)
            except ValueError:
                continue
        elif tp is bool:
            facts[key] = value.lower() == "true"
        else:
            facts[key] = value
    return facts


# -- archives in a tree ----------------------------------------------------------------------------

def is_archive_name(name: str) -> bool:
    return name.endswith(ARCHIVE_SUFFIXES)


def archive_name(cluster: str, moment: datetime, encrypted: bool) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", cluster).strip("-.") or "cluster"
    return f"{safe}-{compact_stamp(moment)}{'.tar.gz.age' if encrypted else '.tar.gz'}"


def unique_name(name: str, taken: set[str]) -> str:
    """`name`, or `name` with `-2`, `-3`, … before its extension when a file of that name exists."""
    if name not in taken:
        return name
    match = _ARCHIVE_NAME.match(name)
    stem, ext = (match.group("stem") + "-" + match.group("ts"), match.group("ext")) if match else (name, "")
    n = 2
    while f"{stem}-{n}{ext}" in taken:
        n += 1
    return f"{stem}-{n}{ext}"


def _sort_key(name: str) -> tuple[str, int, str]:
    match = _ARCHIVE_NAME.match(name)
    if match is None:
        return ("", 0, name)
    return (match.group("ts"), int(match.group("n") or 1), name)


def retention(names: Sequence[str], keep: int, protect: Collection[str] = ()) -> list[str]:
    """The archives to remove so that `keep` remain (0: keep all): the ones in `protect` (the archive
    just added) and the newest of the others by the stamp in their names. Names this resource did not
    write (no timestamp) are never removed, and neither is anything in `protect`, whatever its stamp
    says (another worker's clock may run ahead)."""
    if keep <= 0:
        return []
    ours = sorted((n for n in names if _ARCHIVE_NAME.match(n)), key=_sort_key)
    others = [n for n in ours if n not in protect]
    room = max(0, keep - sum(1 for n in ours if n in protect))
    return others[: max(0, len(others) - room)]
