"""The archive a restore hands to k0sctl, found from `params.restore_from` and checked against its record.

`restore_from` names a directory written by a get of this resource (metadata.json, and backup.tar.gz or
backup.tar.gz.age) or an archive file. Bytes reach k0sctl only when their sha256 equals the one the get's
metadata.json records, whether the get wrote the plain archive or the encrypted one (decrypted here, into
the step's private workspace). `apply` accepts an archive that no record vouches for (a file given by
hand); a drill (`verified_get_archive`) accepts only a get's directory whose record vouches for it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from k0sctl_resource.concourse.params import ApplyParams
from k0sctl_resource.config.paths import inside
from k0sctl_resource.runtime.errors import ResourceError
from k0sctl_resource.steps.context import StepContext
from k0sctl_resource.steps.get import ENCRYPTED_FILE, METADATA_FILE, PLAIN_FILE


@dataclass(frozen=True)
class RestoreSource:
    archive: Path | None  # the plain archive to hand to k0sctl, None for a fresh install
    description: str


def resolve_restore_source(ctx: StepContext, params: ApplyParams, directory: Path) -> RestoreSource:
    """Find the plain archive named by `restore_from` (a get's directory or an archive file)."""
    assert params.restore_from is not None
    target = inside(directory, params.restore_from, "restore_from")
    if target.is_dir():
        plain, encrypted = target / PLAIN_FILE, target / ENCRYPTED_FILE
        record = read_record(target / METADATA_FILE)
        expected = record.get("sha256") if isinstance(record.get("sha256"), str) else None
        if plain.is_file() or encrypted.is_file():
            archive = checked_archive(ctx, target, expected)
            how = PLAIN_FILE if archive == plain else f"{ENCRYPTED_FILE} (decrypted)"
            return RestoreSource(archive, f"{params.restore_from}/{how}")
        kind = record.get("kind")
        return RestoreSource(None, f"{params.restore_from} holds no archive"
                             + (f" (version kind: {kind})" if isinstance(kind, str) else ""))
    if target.is_file():
        if target.name.endswith(".age"):
            return RestoreSource(_decrypt(ctx, target), f"{params.restore_from} (decrypted)")
        return RestoreSource(target, params.restore_from)
    raise ResourceError(f"params.restore_from: {params.restore_from!r} does not exist")


def read_record(metadata_file: Path) -> dict[str, Any]:
    """A get's metadata.json, or {} when it is missing or unreadable."""
    try:
        facts = json.loads(metadata_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return facts if isinstance(facts, dict) else {}


def checked_archive(ctx: StepContext, get_dir: Path, expected: str | None) -> Path:
    """The plain archive of a get's directory (decrypted when the get wrote it encrypted), its sha256
    checked against `expected` when there is one. A symlink is refused: the get writes regular files."""
    plain, encrypted = get_dir / PLAIN_FILE, get_dir / ENCRYPTED_FILE
    found = plain if plain.exists() or plain.is_symlink() else encrypted
    if found.is_symlink() or not found.is_file():
        raise ResourceError(f"params.restore_from: {found.name} is not a regular file; refusing to restore from it")
    archive = found if found == plain else _decrypt(ctx, found)
    if expected is not None:
        _check_digest(archive, expected, found.name)
    return archive


def verified_get_archive(ctx: StepContext, get_dir: Path, record: dict[str, Any]) -> Path:
    """For a drill: the archive of a get's directory, which must exist and match the recorded sha256."""
    expected = record.get("sha256")
    if not isinstance(expected, str) or not expected:
        raise ResourceError("params.restore_from: its metadata.json records no sha256, so nothing vouches for the "
                            "archive; refusing to restore from it")
    if not any(p.exists() or p.is_symlink() for p in (get_dir / PLAIN_FILE, get_dir / ENCRYPTED_FILE)):
        raise ResourceError(f"params.restore_from: holds neither {PLAIN_FILE} nor {ENCRYPTED_FILE} (was the get "
                            "made with skip_download?)")
    return checked_archive(ctx, get_dir, expected)


def _check_digest(archive: Path, expected: str, shown: str) -> None:
    from k0sctl_resource.archive.inspection import file_digest

    if file_digest(archive)[0] != expected:
        raise ResourceError(f"params.restore_from: {shown} does not match the sha256 recorded in "
                            f"{METADATA_FILE}; refusing to restore from it")


def _decrypt(ctx: StepContext, encrypted: Path) -> Path:
    from k0sctl_resource.archive.crypto import decrypt_file

    if not ctx.source.encryption.can_decrypt:
        raise ResourceError("params.restore_from: the archive is encrypted, but source.encryption has no "
                            "identities or passphrase to decrypt it")
    plain = ctx.workspace.dir("restore") / PLAIN_FILE
    decrypt_file(encrypted, plain, ctx.source.encryption)
    return plain
