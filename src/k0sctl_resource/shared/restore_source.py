"""What `restore_from` may hand to k0sctl: only bytes that a record of this resource vouches for.

`restore_from` names a directory written by a get of this resource, or an archive file. Either way the
archive must come with the `metadata.json` of its version (in the directory, or beside the file): the
sha256 recorded there is the record that vouches for the archive. The archive (plain or age-encrypted)
is copied into the step's private directory (decrypted there when encrypted), and its sha256 is
checked against the record on exactly the bytes k0sctl will read. Refused: a symbolic link anywhere on
the path, anything that is not a regular file, an archive with no record (or a record of another
kind, or without a sha256), and an archive whose bytes do not match its record (a folder mixing one
version's metadata.json with another version's archive, say).

`restore_from` is found once per step (`locate`, `locate_backup`: the path, and its record read back into
a `FolderRecord`), and its archive verified once (`RestoreFrom.verified`): `apply` takes a get's directory
(one without an archive is a fresh install) or an archive file with the record beside it; a drill only a
get's directory of a backup holding its archive (the drill checks the record's hosts before the copy).
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from k0sctl_resource.archive.inspection import copy_with_digest
from k0sctl_resource.config.paths import inside, kind_of, open_regular, refuse_symlinks
from k0sctl_resource.runtime import log
from k0sctl_resource.runtime.errors import ResourceError
from k0sctl_resource.shared.context import StepContext
from k0sctl_resource.shared.get_folder import ENCRYPTED_FILE, METADATA_FILE, PLAIN_FILE, FolderRecord

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class RestoreSource:
    archive: Path | None  # the verified plain archive (in the private workspace), None for a fresh install
    description: str
    record: FolderRecord | None = None  # the record of the version that `restore_from` names

    @property
    def cluster(self) -> str | None:
        """The cluster the record says the archive was taken from."""
        return self.record.backup.cluster if self.record is not None else None


def _vouched_digest(record: FolderRecord | None, shown: str) -> str:
    if record is None:
        raise ResourceError(f"params.restore_from: no record vouches for {shown}: restore_from needs the "
                            f"{METADATA_FILE} that a get of this resource writes (beside an archive file)")
    if record.kind != "backup":
        raise ResourceError(f"params.restore_from: {METADATA_FILE} beside {shown} is not the record of a backup "
                            f"(kind: {record.kind!r}); refusing it")
    digest = record.backup.sha256
    if digest is None or not _SHA256.match(digest):
        raise ResourceError(f"params.restore_from: {METADATA_FILE} records no sha256 for {shown}, so nothing "
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


def _verified(ctx: StepContext, archive: Path, record: FolderRecord | None, shown: str) -> Path:
    expected = _vouched_digest(record, shown)
    plain, digest, size = _private_copy(ctx, archive, shown)
    recorded_size = record.backup.size if record is not None else None
    if digest != expected or (recorded_size is not None and recorded_size != size):
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


@dataclass(frozen=True)
class RestoreFrom:
    """What `restore_from` names, found once: a get's directory or an archive file, and the record of
    its version (None when there is none)."""

    shown: str
    path: Path
    is_folder: bool
    record: FolderRecord | None

    def verified(self, ctx: StepContext) -> RestoreSource:
        """The archive copied into the private workspace (decrypted there) and checked against the record;
        a directory without an archive gives none (a fresh install)."""
        if not self.is_folder:
            return _checked(ctx, self.path, self.shown, self.record)
        archive = _archive_in(self.path, self.shown)
        if archive is None:
            kind = self.record.kind if self.record is not None else None
            return RestoreSource(None, f"{self.shown} holds no archive" + (f" (version kind: {kind})" if kind else ""),
                                 self.record)
        return _checked(ctx, archive, f"{self.shown}/{archive.name}", self.record)

    def verified_archive(self, ctx: StepContext) -> Path:
        """A drill's: the verified plain archive; a directory without one is refused."""
        archive = self.verified(ctx).archive
        if archive is None:
            raise ResourceError(f"params.restore_from: {self.shown} holds neither {PLAIN_FILE} nor {ENCRYPTED_FILE} "
                                "(was the get made with skip_download?)")
        return archive


def _checked(ctx: StepContext, archive: Path, shown: str, record: FolderRecord | None) -> RestoreSource:
    plain = _verified(ctx, archive, record, shown)
    return RestoreSource(plain, shown + (" (decrypted)" if archive.name.endswith(".age") else ""), record)


def _target(restore_from: str, directory: Path) -> tuple[Path, int | None]:
    """The path `restore_from` names inside the put's directory (no symbolic link on the way), and its
    mode (None when nothing is there)."""
    target = inside(directory, restore_from, "restore_from")
    refuse_symlinks(directory.resolve(), restore_from, "restore_from")
    try:
        return target, os.lstat(target).st_mode
    except FileNotFoundError:
        return target, None


def locate(restore_from: str, directory: Path) -> RestoreFrom:
    """apply's `restore_from`: a get's directory, or an archive file with the record beside it."""
    target, mode = _target(restore_from, directory)
    if mode is None:
        raise ResourceError(f"params.restore_from: {restore_from!r} does not exist")
    if stat.S_ISDIR(mode):
        return RestoreFrom(restore_from, target, True, FolderRecord.read(target))
    if not stat.S_ISREG(mode):
        raise ResourceError(f"params.restore_from: {restore_from!r} is {kind_of(mode)}, not an archive or a "
                            "directory")
    return RestoreFrom(restore_from, target, False, FolderRecord.read(target.parent))


def locate_backup(restore_from: str, directory: Path) -> tuple[RestoreFrom, FolderRecord]:
    """A drill's `restore_from`: a get's directory whose record is a backup's; what it names, and that record."""
    shown = restore_from
    target, mode = _target(restore_from, directory)
    if mode is None or not stat.S_ISDIR(mode):
        what = "does not exist" if mode is None else "is not a directory"
        raise ResourceError(f"restore_from: {shown!r} {what}; a drill needs a get of this resource (its "
                            f"{METADATA_FILE} records where the backup came from)")
    record = FolderRecord.read(target)
    if record is None:
        raise ResourceError(f"restore_from: {shown!r} has no readable {METADATA_FILE}; a drill needs a get of "
                            "this resource")
    if record.kind != "backup":
        raise ResourceError(f"restore_from: version {record.short_ref} is not a backup (kind: {record.kind}); "
                            "there is nothing to drill")
    return RestoreFrom(shown, target, True, record), record


def resolve_restore_source(ctx: StepContext, restore_from: str, directory: Path) -> RestoreSource:
    """apply's `restore_from`, found and verified: the plain archive it names, or none for a fresh install."""
    return locate(restore_from, directory).verified(ctx)


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
