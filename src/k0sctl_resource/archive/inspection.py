"""Reading a backup archive back before it is trusted: a gzip tar with entries, and what is in it."""

from __future__ import annotations

import gzip
import hashlib
import os
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from k0sctl_resource.runtime.errors import ResourceError

CHUNK = 1024 * 1024

# What `k0s backup` puts into its archive (k0s pkg/backup), by the part of the cluster it saves.
_FILES = {
    "k0s.yaml": "config",
    "etcd-snapshot.db": "etcd",
    "kine-state-backup.db": "kine",
}
_FOLDERS = {
    "pki": "pki",
    "manifests": "manifests",
    "images": "images",
    "charts": "helm",
    "helmhome": "helm",
}


@dataclass(frozen=True)
class ArchiveFacts:
    sha256: str
    size: int
    entries: int
    parts: tuple[str, ...]  # recognisable k0s backup parts, sorted: config, etcd, kine, pki, …

    @property
    def datastore(self) -> str:
        """`etcd` (etcd-snapshot.db), `kine` (kine-state-backup.db) or `none`: k0s saves no datastore of an
        external etcd or of a kine backend other than SQLite, and only warns about it."""
        return "etcd" if "etcd" in self.parts else "kine" if "kine" in self.parts else "none"


def check_complete(facts: ArchiveFacts, name: str, *, allow_config_only: bool) -> None:
    """A k0s backup holds k0s.yaml, pki/ and a datastore; ResourceError naming what is missing. Without a
    datastore it is refused unless `allow_config_only` (a cluster on external etcd, backed up elsewhere)."""
    missing = [label for part, label in (("config", "k0s.yaml"), ("pki", "pki/")) if part not in facts.parts]
    if missing:
        raise ResourceError(f"the backup archive {name} is not a complete k0s backup: it holds no "
                            f"{' and no '.join(missing)}")
    if facts.datastore == "none" and not allow_config_only:
        raise ResourceError(f"the backup archive {name} holds no datastore (neither etcd-snapshot.db nor "
                            "kine-state-backup.db: k0s does not back up an external etcd or a non-SQLite kine, "
                            "it only warns); restoring it would give an empty cluster. Set params.allow_config_only: "
                            "true to store such a config-only backup")


def file_digest(path: Path) -> tuple[str, int]:
    """sha256 (hex) and size in bytes of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def copy_with_digest(source_fd: int, dst: Path) -> tuple[str, int]:
    """Copy an open file into the new private file `dst` (0600, never through a link); return the
    sha256 (hex) and size of exactly the bytes written. Closes `source_fd`."""
    digest = hashlib.sha256()
    size = 0
    out_fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(source_fd, "rb") as src, os.fdopen(out_fd, "wb") as out:
        while chunk := src.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
    return digest.hexdigest(), size


def _part(name: str) -> str | None:
    clean = name.lstrip("./").lstrip("/")
    if clean in _FILES:
        return _FILES[clean]
    first = clean.split("/", 1)[0]
    return _FOLDERS.get(first)


class _HashingReader:
    """A binary file read through once: the sha256 and size of what was read come along."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        self.digest = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        chunk = self.handle.read(n if n >= 0 else CHUNK)
        self.digest.update(chunk)
        self.size += len(chunk)
        return chunk

    def drain(self) -> None:
        while self.read(CHUNK):
            pass


def inspect(path: Path) -> ArchiveFacts:
    """Read the whole archive once as a gzip tar, streaming (its sha256 and size on the way). Raise
    ResourceError naming why it is unusable."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise ResourceError(f"the backup archive {path.name} does not exist") from None
    except OSError as exc:
        raise ResourceError(f"the backup archive {path.name} cannot be read: {exc.strerror}") from None
    with handle:
        if os.fstat(handle.fileno()).st_size == 0:
            raise ResourceError(f"the backup archive {path.name} is empty (0 bytes)")
        reader = _HashingReader(handle)
        entries, parts = _read_tar(reader, path.name)
        try:
            reader.drain()  # what follows the tar's end (padding, gzip trailer) is part of the file's sha256
        except OSError as exc:
            raise ResourceError(f"the backup archive {path.name} cannot be read: {exc.strerror}") from None
    return ArchiveFacts(sha256=reader.digest.hexdigest(), size=reader.size, entries=entries,
                        parts=tuple(sorted(parts)))


def _read_tar(reader: _HashingReader, name: str) -> tuple[int, set[str]]:
    entries = 0
    parts: set[str] = set()
    try:
        with tarfile.open(fileobj=reader, mode="r|gz", bufsize=CHUNK) as tar:  # type: ignore[call-overload]
            for member in tar:
                entries += 1
                part = _part(member.name)
                if part is not None:
                    parts.add(part)
                if member.isfile():
                    # read the member's data so that a truncated or corrupt stream is found
                    data = tar.extractfile(member)
                    if data is not None:
                        while data.read(CHUNK):
                            pass
    except (tarfile.ReadError, gzip.BadGzipFile) as exc:
        raise ResourceError(f"the backup archive {name} is not a readable tar.gz ({_reason(exc)})") from None
    except (EOFError, zlib.error, tarfile.TarError, OSError) as exc:
        raise ResourceError(f"the backup archive {name} is damaged ({_reason(exc)})") from None
    if entries == 0:
        raise ResourceError(f"the backup archive {name} holds no entries")
    return entries, parts


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    if isinstance(exc, EOFError) or "end of file" in text.lower() or "unexpected end" in text.lower():
        return "truncated"
    return text[:120] or exc.__class__.__name__
