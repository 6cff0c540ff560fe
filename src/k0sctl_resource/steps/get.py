"""`in` (get): metadata.json and the archive of one commit of the backup branch (README, "`get`: fetch a
backup")."""

from __future__ import annotations

import os
from pathlib import Path

from k0sctl_resource.archive import crypto
from k0sctl_resource.archive.inspection import file_digest
from k0sctl_resource.concourse.params import GetParams
from k0sctl_resource.concourse.requests import GetRequest
from k0sctl_resource.concourse.responses import StepResponse
from k0sctl_resource.config.models import Source
from k0sctl_resource.gitstore.commit_format import BackupFacts
from k0sctl_resource.gitstore.store import BackupStore
from k0sctl_resource.runtime import log
from k0sctl_resource.runtime.errors import ResourceError
from k0sctl_resource.runtime.workspace import make_room
from k0sctl_resource.shared.context import StepContext
from k0sctl_resource.shared.get_folder import ENCRYPTED_FILE, PLAIN_FILE, FolderRecord


def download(store: BackupStore, sha: str, facts: BackupFacts, source: Source, params: GetParams,
             directory: Path, ctx: StepContext) -> str:
    """Write the archive of backup commit `sha` into `directory`; returns the file name written."""
    path = facts.archive_path or f"{store.backup.folder}/{facts.archive}"
    encrypted = facts.encrypted if facts.encrypted is not None else path.endswith(".age")
    enc = source.encryption
    recorded = facts.sha256 or ""
    if encrypted and not (params.decrypt and enc.can_decrypt):
        target = make_room(directory / ENCRYPTED_FILE)
        fetched = store.read_blob(sha, path, target)
        why = ("params.decrypt is false (the default); restores decrypt privately" if not params.decrypt
               else "no encryption.identities or passphrase")
        log.info(f"wrote {ENCRYPTED_FILE} ({log.human_bytes(target.stat().st_size)}; fetched {fetched} bytes); "
                 f"not decrypted: {why}")
        return ENCRYPTED_FILE
    partial = make_room(directory / f".{PLAIN_FILE}.partial")
    try:  # a failure or an abort never leaves half a plain archive in DIR
        if encrypted:
            sealed = ctx.workspace.path / "archive.age"
            fetched = store.read_blob(sha, path, sealed)
            digest, size = crypto.decrypt_file(sealed, partial, enc)  # hashed as it is written
            sealed.unlink(missing_ok=True)
        else:
            fetched = store.read_blob(sha, path, partial)
            digest, size = file_digest(partial)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    if not recorded:
        log.warn(f"commit {sha[:12]} records no sha256; the archive could not be verified")
    elif digest != recorded:
        partial.unlink(missing_ok=True)
        raise ResourceError(f"the archive of {sha[:12]} does not match its recorded sha256 "
                            f"(got {digest[:16]}…, recorded {recorded[:16]}…): refusing it")
    os.replace(partial, make_room(directory / PLAIN_FILE))
    log.info(f"wrote {PLAIN_FILE} ({log.human_bytes(size)}, sha256 verified; fetched {fetched} bytes)")
    return PLAIN_FILE


def run(request: GetRequest, directory: Path) -> StepResponse:
    version = request.version
    directory.mkdir(parents=True, exist_ok=True)
    if version.is_none:
        FolderRecord(version.ref, "none").write(directory)
        if request.source.backup is None:
            log.info("version none: the placeholder of a source without a backup repository; wrote "
                     "metadata.json only")
        else:
            log.warn("version none names no commit of the backup branch (a placeholder that this resource "
                     "prints only without a backup repository); wrote metadata.json only, it holds no backup")
        return StepResponse(version, {"kind": "none"})
    with StepContext(request.source) as ctx:
        store = ctx.store(f"version {version.ref} names a commit, so get")
        info = store.read_commit(version.ref, with_trees=not request.params.skip_download)
        meta = FolderRecord.of(info).write(directory)
        written = None
        if isinstance(info.facts, BackupFacts) and not request.params.skip_download:
            written = download(store, info.sha, info.facts, request.source, request.params, directory, ctx)
        elif isinstance(info.facts, BackupFacts):
            log.info("skip_download: wrote metadata.json only")
        elif info.kind == "init":
            log.info(f"{version.ref[:12]} is an init commit: no archive")
        else:
            log.info(f"{version.ref[:12]} was not written by this resource: no archive")
    facts = {k: v for k, v in meta.items() if k not in ("ref", "previous_tip")}
    facts["file"] = written
    return StepResponse(version, facts)

