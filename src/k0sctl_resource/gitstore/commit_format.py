"""What the backup branch records and how: the facts of a commit as trailers in its message, the names
of the archive files (a UTC timestamp, `-2`, `-3`, … on collisions) and their order.

Plain text and names only; nothing here runs git.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, ClassVar, get_args, get_origin, get_type_hints

from k0sctl_resource.runtime.redact import REDACT

ARCHIVE_SUFFIXES = (".tar.gz.age", ".tar.gz")
_ARCHIVE_NAME = re.compile(r"^(?P<stem>.+)-(?P<ts>\d{8}T\d{6}Z)(?:-(?P<n>\d+))?(?P<ext>\.tar\.gz(?:\.age)?)$")

KIND_TRAILER = "K0sctl-Resource-Kind"


def _fact(trailer: str, *, commit_only: bool = False) -> Any:
    """A fact of a commit: written as the git trailer `trailer`, and in get's metadata unless `commit_only`."""
    return field(default=None, metadata={"trailer": trailer, "commit_only": commit_only})


trailer_field = _fact


@dataclass(frozen=True)
class BackupFacts:
    """What a backup commit records, in the order of its trailers and of get's metadata.json."""

    KIND: ClassVar[str] = "backup"
    archive: str | None = _fact("Archive")
    archive_path: str | None = _fact("Archive-Path", commit_only=True)
    created_at: str | None = _fact("Created-At")
    cluster: str | None = _fact("Cluster")
    hosts: tuple[str, ...] | None = _fact("Hosts")  # the cluster's host addresses: a drill refuses them
    endpoints: tuple[str, ...] | None = _fact("Endpoints")  # where k0sctl connected (HostName, jump hosts, …)
    addresses: tuple[str, ...] | None = _fact("Addresses")  # what the names among them resolved to then
    host_keys: tuple[str, ...] | None = _fact("Host-Keys")  # SHA256 fingerprints of the hosts' SSH host keys
    sha256: str | None = _fact("Sha256")
    size: int | None = _fact("Size")
    encrypted: bool | None = _fact("Encrypted")
    k0sctl_version: str | None = _fact("K0sctl-Version")
    k0s_version: str | None = _fact("K0s-Version")  # what k0sctl found running when it took the backup
    build_url: str | None = _fact("Build-Url")
    build: str | None = _fact("Build", commit_only=True)
    entries: int | None = _fact("Entries")
    parts: tuple[str, ...] | None = _fact("Parts")
    datastore: str | None = _fact("Datastore")  # etcd, kine or none (a config-only backup)
    reason: str | None = _fact("Reason")
    removed_archives: int | None = _fact("Removed-Archives", commit_only=True)


@dataclass(frozen=True)
class InitFacts:
    """What an init commit records, in the order of its trailers and of get's metadata.json."""

    KIND: ClassVar[str] = "init"
    created_at: str | None = _fact("Created-At")
    build_url: str | None = _fact("Build-Url")
    build: str | None = _fact("Build", commit_only=True)
    archived_as: str | None = _fact("Archived-As")
    previous_tip: str | None = _fact("Previous-Tip")


CommitFacts = BackupFacts | InitFacts
_BY_KIND: dict[str, type[CommitFacts]] = {"backup": BackupFacts, "init": InitFacts}


@dataclass(frozen=True)
class CommitInfo:
    """One commit of the branch as read back: its sha, message body and facts."""

    sha: str
    message: str
    facts: CommitFacts | None  # None: a commit this resource did not write

    @property
    def kind(self) -> str:
        return self.facts.KIND if self.facts is not None else "unknown"


def metadata_of(facts: CommitFacts) -> dict[str, object]:
    """The facts as get's metadata.json holds them: typed values, unknown ones and commit-only ones left out."""
    found: dict[str, object] = {}
    for f in fields(facts):
        value = getattr(facts, f.name)
        if value is not None and not f.metadata["commit_only"]:
            found[f.name] = list(value) if isinstance(value, tuple) else value
    return found


def facts_of_metadata(kind: object, meta: Mapping[str, object]) -> tuple[CommitFacts | None, tuple[str, ...]]:
    """`metadata_of` read back: the facts of a record of `kind` from get's metadata.json (None for a kind this
    resource does not write), and the names of the facts held there in a form their type does not allow
    (left out, as unknown keys and commit-only ones are)."""
    cls = _BY_KIND.get(kind) if isinstance(kind, str) else None
    if cls is None:
        return None, ()
    hints = get_type_hints(cls)
    found: dict[str, Any] = {}
    malformed: list[str] = []
    for f in fields(cls):
        value = meta.get(f.name)
        if value is None or f.metadata["commit_only"]:
            continue
        typed = _json_typed(hints[f.name], value)
        if typed is None:
            malformed.append(f.name)
        else:
            found[f.name] = typed
    return cls(**found), tuple(malformed)


def _json_typed(hint: Any, value: object) -> Any:
    """A JSON value as the field's type (`X | None`), as `metadata_of` writes it; None when it is not one."""
    tp = next(a for a in get_args(hint) if a is not type(None))
    if get_origin(tp) is tuple:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return None
        return tuple(value)
    if isinstance(value, bool) and tp is not bool:
        return None
    if tp is float and isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    return value if isinstance(value, tp) else None


def utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def compact_stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


# -- commit messages -------------------------------------------------------------------------------

def one_line(value: object) -> str:
    """`value` as one printable line (a tuple joined by commas, bools as true/false)."""
    if isinstance(value, tuple):
        value = ", ".join(value)
    text = "true" if value is True else "false" if value is False else str(value)
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())


def format_message(subject: str, body: Sequence[str], facts: CommitFacts) -> str:
    """A commit message: subject, body, then the kind and the known facts as trailers."""
    lines = [one_line(subject), ""]
    if body:
        lines += [one_line(b) for b in body] + [""]
    lines.append(f"{KIND_TRAILER}: {facts.KIND}")
    lines += trailer_lines(facts)
    return REDACT("\n".join(lines) + "\n")


def trailer_lines(facts: Any) -> list[str]:
    """`Trailer: value` for every field of the dataclass `facts` that names a trailer and has a value."""
    return [f"{f.metadata['trailer']}: {one_line(getattr(facts, f.name))}" for f in fields(facts)
            if f.metadata.get("trailer") and getattr(facts, f.name) not in (None, ())]


def _typed(hint: Any, text: str) -> Any:
    """A trailer's text as the field's type (`X | None`); None when it does not read as one."""
    tp = next(a for a in get_args(hint) if a is not type(None))
    if tp is bool:
        return text.lower() == "true"
    if tp in (int, float):
        try:
            number = tp(text)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    if get_origin(tp) is tuple:
        return tuple(p.strip() for p in text.split(",") if p.strip())
    return text


def parse_facts(message: str) -> CommitFacts | None:
    """The facts of a commit message written by `format_message`; None for a commit this resource did not
    write (no known kind). Unknown trailers are ignored."""
    trailers = read_trailers(message)
    cls = _BY_KIND.get(trailers.get(KIND_TRAILER.lower(), ""))
    if cls is None:
        return None
    return cls(**typed_trailers(cls, trailers))


def read_trailers(message: str) -> dict[str, str]:
    """The trailers of a commit message (its last paragraph, when it is not the only one), by lower-case name."""
    paragraphs = [p for p in message.strip().split("\n\n") if p.strip()]
    trailers: dict[str, str] = {}
    if len(paragraphs) >= 2:
        for line in paragraphs[-1].splitlines():
            name, sep, value = line.partition(":")
            if sep:
                trailers[name.strip().lower()] = value.strip()
    return trailers


def typed_trailers(cls: type[Any], trailers: dict[str, str]) -> dict[str, Any]:
    """The values of the dataclass `cls`'s trailer fields found in `trailers`, each as its field's type."""
    hints = get_type_hints(cls)
    return {f.name: _typed(hints[f.name], trailers[f.metadata["trailer"].lower()]) for f in fields(cls)
            if f.metadata.get("trailer") and f.metadata["trailer"].lower() in trailers}


# -- archives in a tree ----------------------------------------------------------------------------

def is_archive_name(name: str) -> bool:
    return name.endswith(ARCHIVE_SUFFIXES)


def cluster_stem(cluster: str) -> str:
    """The cluster's name as its archive names begin (`<stem>-<stamp>.tar.gz[.age]`)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", cluster).strip("-.") or "cluster"


def archive_name(cluster: str, moment: datetime, encrypted: bool) -> str:
    return f"{cluster_stem(cluster)}-{compact_stamp(moment)}{'.tar.gz.age' if encrypted else '.tar.gz'}"


def unique_name(name: str, taken: set[str]) -> str:
    """`name`, or `name` with `-2`, `-3`, … before its extension when a file of that name exists.

    For an archive name, the number is one above every number of the same stamp in `taken`. `taken` must
    hold every name of that stamp the branch ever had, not only the tree's (`names_used.names_taken`):
    retention may have removed any of them from the tree, and a put whose stamp is older than the tree's
    newest archive would otherwise take such a name again. A name is never used twice in the branch's
    history."""
    match = _ARCHIVE_NAME.match(name)
    if match is None:
        candidate, n = name, 2
        while candidate in taken:
            candidate, n = f"{name}-{n}", n + 1
        return candidate
    stamp = (match.group("stem"), match.group("ts"))
    used = [int(m.group("n") or 1) for m in map(_ARCHIVE_NAME.match, taken)
            if m is not None and (m.group("stem"), m.group("ts")) == stamp]
    if not used and name not in taken:
        return name
    return f"{stamp[0]}-{stamp[1]}-{max(used, default=1) + 1}{match.group('ext')}"


def _stem_stamp(name: str) -> tuple[str, str] | None:
    match = _ARCHIVE_NAME.match(name)
    return None if match is None else (match.group("stem"), match.group("ts"))


def same_second(names: Iterable[str], name: str) -> set[str]:
    """The archive names among `names` of `name`'s series and stamp (`-2`, `-3`, … and either extension)."""
    key = _stem_stamp(name)
    return {n for n in names if key is not None and _stem_stamp(n) == key}


def as_new_as(names: Iterable[str], name: str) -> bool:
    """Whether `names` hold an archive of `name`'s series stamped in its second or later."""
    key = _stem_stamp(name)
    return key is not None and any((k := _stem_stamp(n)) is not None and k[0] == key[0] and k[1] >= key[1]
                                   for n in names)


def archive_order(name: str) -> tuple[str, int, str]:
    """Orders archive names by the stamp in them, then by their `-2`, `-3`, … (names of other shapes first)."""
    match = _ARCHIVE_NAME.match(name)
    if match is None:
        return ("", 0, name)
    return (match.group("ts"), int(match.group("n") or 1), name)


def archive_created(name: str, stem: str) -> datetime | None:
    """The moment in the name of an archive of the series `stem` (`cluster_stem`): the Created-At its
    record holds, to the second (both are written from one clock reading). None for other names."""
    match = _ARCHIVE_NAME.match(name)
    if match is None or match.group("stem") != stem:
        return None
    return datetime.strptime(match.group("ts"), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
