"""What `restore_from` may hand to k0sctl: only bytes that a record of this resource vouches for.

`restore_from` names a directory written by a get of this resource, or an archive file. Either way the
archive must come with the `metadata.json` of its version (in the directory, or beside the file): the
sha256 recorded there is the record that vouches for the archive. The archive (plain or age-encrypted)
is copied into the step's private directory (decrypted there when encrypted), and its sha256 is
checked against the record on exactly the bytes k0sctl will read. Refused: a symbolic link anywhere on
the path, anything that is not a regular file, an archive with no record (or a record of another
kind, or without a sha256), and an archive whose bytes do not match its record (a folder mixing one
version's metadata.json with another version's archive, say).

`apply` reads it through `resolve_restore_source`; a drill through `read_record` and
`verified_get_archive`, which accept only a get's directory (the drill needs the record's hosts too).
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from k0sctl_resource.archive.inspection import copy_with_digest
from k0sctl_resource.config.paths import inside, kind_of, open_regular, read_regular, refuse_symlinks
from k0sctl_resource.runtime import log
from k0sctl_resource.runtime.errors import ResourceError
from k0sctl_resource.shared.context import StepContext
from k0sctl_resource.shared.get_folder import ENCRYPTED_FILE, METADATA_FILE, PLAIN_FILE

METADATA_LIMIT = 1024 * 1024
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class RestoreSource:
    archive: Path | None  # the verified plain archive (in the private workspace), None for a fresh install
    description: str
    cluster: str | None = None  # the cluster the record says the archive was taken from


def _record(metadata_file: Path, name: str) -> dict[str, Any] | None:
    """The parsed metadata.json, None when there is none; anything else unreadable is refused."""
    try:
        os.lstat(metadata_file)
    except FileNotFoundError:
        return None
    data = read_regular(metadata_file, f"params.{name}: {METADATA_FILE}", METADATA_LIMIT, follow=False)
    try:
        facts = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ResourceError(f"params.{name}: {metadata_file.name} is not valid JSON; refusing it") from None
    if not isinstance(facts, dict):
        raise ResourceError(f"params.{name}: {metadata_file.name} does not hold a JSON object; refusing it")
    return facts


def _vouched_digest(record: dict[str, Any] | None, shown: str, name: str) -> str:
    if record is None:
        raise ResourceError(f"params.{name}: no record vouches for {shown}: restore_from needs the "
                            f"{METADATA_FILE} that a get of this resource writes (beside an archive file)")
    if record.get("kind") != "backup":
        raise ResourceError(f"params.{name}: {METADATA_FILE} beside {shown} is not the record of a backup "
                            f"(kind: {record.get('kind')!r}); refusing it")
    digest = record.get("sha256")
    if not isinstance(digest, str) or not _SHA256.match(digest):
        raise ResourceError(f"params.{name}: {METADATA_FILE} records no sha256 for {shown}, so nothing "
                            "vouches for it; refusing it")
    return digest


def _private_copy(ctx: StepContext, archive: Path, shown: str) -> tuple[Path, str, int]:
    """Copy (and decrypt) the archive into the private workspace: the plain copy's path, and the sha256
    and size of exactly the bytes written there (what k0sctl will read), computed while writing."""
    folder = ctx.workspace.dir("restore")
    fd = open_regular(archive, f"params.restore_from: {shown}", follow=False)
    if not archive.name.endswith(".age"):
        plain = folder / PLAIN_FILE
        return (plain, *copy_with_digest(fd, plain))
    from k0sctl_resource.archive.crypto import decrypt_file

    if not ctx.source.encryption.can_decrypt:
        os.close(fd)
        raise ResourceError("params.restore_from: the archive is encrypted, but source.encryption has no "
                            "identities or passphrase to decrypt it")
    sealed = folder / ENCRYPTED_FILE
    copy_with_digest(fd, sealed)
    plain = folder / PLAIN_FILE
    digest, size = decrypt_file(sealed, plain, ctx.source.encryption)
    sealed.unlink()
    return plain, digest, size


def _verified(ctx: StepContext, archive: Path, record: dict[str, Any] | None, shown: str) -> Path:
    expected = _vouched_digest(record, shown, "restore_from")
    plain, digest, size = _private_copy(ctx, archive, shown)
    recorded_size = record.get("size") if record else None
    if digest != expected or (isinstance(recorded_size, int) and recorded_size != size):
        plain.unlink(missing_ok=True)
        raise ResourceError(f"params.restore_from: {shown} does not match the sha256 recorded in {METADATA_FILE} "
                            f"(got {digest[:16]}…, recorded {expected[:16]}…); refusing to restore from it")
    return plain


def _archive_in(folder: Path, shown: str) -> Path | None:
    for name in (PLAIN_FILE, ENCRYPTED_FILE):
        candidate = folder / name
        try:
            mode = os.lstat(candidate).st_mode
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(mode):
            raise ResourceError(f"params.restore_from: {shown}/{name} is {kind_of(mode)}, not a regular file; "
                                "refusing it")
        return candidate
    return None


def resolve_restore_source(ctx: StepContext, restore_from: str, directory: Path) -> RestoreSource:
    """The verified plain archive named by `restore_from` (see the module doc)."""
    shown = restore_from
    target = inside(directory, shown, "restore_from")
    refuse_symlinks(directory.resolve(), shown, "restore_from")
    try:
        mode = os.lstat(target).st_mode
    except FileNotFoundError:
        raise ResourceError(f"params.restore_from: {shown!r} does not exist") from None
    if stat.S_ISDIR(mode):
        record = _record(target / METADATA_FILE, "restore_from")
        archive = _archive_in(target, shown)
        if archive is None:
            kind = record.get("kind") if record else None
            return RestoreSource(None, f"{shown} holds no archive"
                                 + (f" (version kind: {kind})" if isinstance(kind, str) else ""))
        label = f"{shown}/{archive.name}"
        plain = _verified(ctx, archive, record, label)
        return RestoreSource(plain, label + (" (decrypted)" if archive.name.endswith(".age") else ""),
                             _cluster_of(record))
    if not stat.S_ISREG(mode):
        raise ResourceError(f"params.restore_from: {shown!r} is {kind_of(mode)}, not an archive or a directory")
    record = _record(target.parent / METADATA_FILE, "restore_from")
    plain = _verified(ctx, target, record, shown)
    return RestoreSource(plain, shown + (" (decrypted)" if target.name.endswith(".age") else ""), _cluster_of(record))


def _cluster_of(record: dict[str, Any] | None) -> str | None:
    cluster = record.get("cluster") if record else None
    return cluster if isinstance(cluster, str) else None


def check_cluster_name(restore: RestoreSource, name: str, migrate_from: str | None) -> dict[str, object]:
    """An archive restores only into the cluster its record names, unless `migrate_from` names that cluster."""
    source = restore.cluster
    if source == name:
        if migrate_from is not None:
            log.warn(f"migrate_from: {migrate_from!r} is ignored: the archive is cluster {name!r}'s own")
        return {}
    if source is None:
        log.warn(f"restore_from: the record of {restore.description} names no cluster; it is restored into "
                 f"cluster {name!r} as given")
        return {}
    if migrate_from != source:
        hint = f" (migrate_from is {migrate_from!r})" if migrate_from is not None else ""
        raise ResourceError(f"restore_from: {restore.description} is a backup of cluster {source!r}, not of "
                            f"{name!r} (metadata.name); set migrate_from: {source} to restore it into "
                            f"this cluster on purpose{hint}; nothing was changed")
    log.warn(f"migrate_from: restoring cluster {source!r}'s archive into cluster {name!r}, as asked")
    return {"migrated_from": source}


def read_record(metadata_file: Path) -> dict[str, Any] | None:
    """A get's metadata.json (None when there is none; refused when it is not a regular file of JSON)."""
    return _record(metadata_file, "restore_from")


def verified_get_archive(ctx: StepContext, get_dir: Path, record: dict[str, Any], shown: str) -> Path:
    """For a drill: the archive of a get's directory, copied into the private workspace (decrypted there)
    and checked against the record's sha256; a directory without an archive is refused."""
    archive = _archive_in(get_dir, shown)
    if archive is None:
        raise ResourceError(f"params.restore_from: {shown} holds neither {PLAIN_FILE} nor {ENCRYPTED_FILE} (was "
                            "the get made with skip_download?)")
    return _verified(ctx, archive, record, f"{shown}/{archive.name}")
