"""Taking a backup (put `backup`, and `backup_first` of apply and reset): `k0sctl backup`, read the
archive back, encrypt it, commit it to the backup branch.

The plain archive exists only in the step's private workspace; what leaves it is the age-encrypted
file (or the plain one when `encryption.plaintext: true` and there is nothing to encrypt to).
"""

from __future__ import annotations

import dataclasses
import tempfile
from datetime import datetime
from pathlib import Path

from k0sctl_resource.archive import crypto, inspection
from k0sctl_resource.concourse.responses import StepResponse
from k0sctl_resource.config.cluster import ClusterConfig
from k0sctl_resource.config.models import Version, require_backup
from k0sctl_resource.gitstore.commit_format import (
    BackupFacts,
    archive_name,
    cluster_stem,
    format_message,
    rfc3339,
    utc_now,
)
from k0sctl_resource.gitstore.drill_record import newest_passed
from k0sctl_resource.gitstore.pruning import Pruning, message_lines, metadata
from k0sctl_resource.gitstore.push import PushedArchive, push_archive
from k0sctl_resource.gitstore.retention import Decision
from k0sctl_resource.gitstore.store import BackupStore
from k0sctl_resource.k0sctl.runner import RunResult
from k0sctl_resource.k0sctl.versions import SINCE_BACKUP_OUTPUT, Invocation
from k0sctl_resource.runtime import log
from k0sctl_resource.runtime.errors import ResourceError
from k0sctl_resource.shared import host_facts
from k0sctl_resource.shared.context import StepContext


class NoRunningController(ResourceError):
    """k0sctl found no running controller: there is nothing to back up (k0s is not running)."""


def preflight(ctx: StepContext, needs: str = "backup") -> BackupStore:
    """Everything that can be refused before k0sctl runs: no repository (`<needs> needs source.backup`),
    nothing to encrypt to, a bad recipient, a repository that cannot be reached."""
    backup = require_backup(ctx.source, needs)
    enc = ctx.source.encryption
    if enc.can_encrypt:
        crypto.check_can_encrypt(enc)
    elif not enc.plaintext:
        raise ResourceError("refusing to store an unencrypted backup: set source.encryption.recipients "
                            "(or encryption.passphrase), or encryption.plaintext: true to store archives in plain")
    store = ctx.store_of(backup)
    tip = store.remote_tip()
    log.info(f"backup repository: {store.remote.describe()} ("
             + (f"tip {tip[:12]}" if tip else "branch does not exist yet; the backup creates it") + ")")
    return store


def _no_controller(result: RunResult) -> bool:
    return result.transcript.no_running_controller()


def run_k0sctl_backup(ctx: StepContext, cluster: ClusterConfig, out_dir: Path, *,
                      quiet_no_controller: bool = False) -> tuple[Path, str | None]:
    """Run `k0sctl backup` so that its archive lands in `out_dir`; the archive's path and the k0s version
    k0sctl found running.

    `quiet_no_controller`: a cluster with no running controller is an expected outcome that the caller
    reports in one line, so k0sctl's fatal line and its log tail are not shown for it."""
    k0sctl = ctx.k0sctl()
    version = k0sctl.version()
    quiet_if = _no_controller if quiet_no_controller else None
    if version.at_least(SINCE_BACKUP_OUTPUT):
        target: Path | None = out_dir / "k0s_backup.tar.gz"
        result = k0sctl.run(Invocation("backup", cluster.path, output=target), cwd=out_dir, quiet_if=quiet_if)
    else:
        target = None  # older k0sctl writes k0s_backup_<timestamp>.tar.gz into its working directory
        result = k0sctl.run(Invocation("backup", cluster.path), cwd=out_dir, quiet_if=quiet_if)
    if not result.ok:
        if _no_controller(result):
            raise NoRunningController(f"k0sctl backup: no running controller in cluster {cluster.name} "
                                      f"({result.reason()})")
        raise result.failure("backup")
    result.warn_leftovers()
    if target is None:
        found = sorted(out_dir.glob("k0s_backup_*.tar.gz"), key=lambda p: p.stat().st_mtime)
        target = found[-1] if found else None
    if target is None or not target.is_file():
        raise ResourceError("k0sctl backup succeeded but wrote no archive")
    return target, result.transcript.running_k0s_version()


def backup_first(ctx: StepContext, cluster: ClusterConfig, *, before: str,
                 quiet_no_controller: bool = False) -> StepResponse | None:
    """`backup_first` of apply and reset: a backup of the cluster before `before` changes it; None when
    k0s runs on no controller, so that there is nothing to back up (each caller says what that means;
    `quiet_no_controller` as for `run_k0sctl_backup`)."""
    try:
        return take_backup(ctx, cluster, reason=f"before {before}", quiet_no_controller=quiet_no_controller,
                           needs="params.backup_first")
    except NoRunningController:
        return None


def take_backup(ctx: StepContext, cluster: ClusterConfig, reason: str, *,
                quiet_no_controller: bool = False, needs: str = "backup",
                allow_config_only: bool = False) -> StepResponse:
    """Take a backup of `cluster` and push it; used by put `backup` and by `backup_first` of apply
    and reset (`needs` names which in the error without source.backup). Raises NoRunningController when
    k0s runs nowhere, ResourceError for any other failure."""
    store = preflight(ctx, needs)
    enc = ctx.source.encryption
    encrypt = enc.can_encrypt
    out_dir = Path(tempfile.mkdtemp(prefix="backup-", dir=ctx.private))
    found = host_facts.endpoints_of(cluster)
    endpoints, addresses = host_facts.endpoint_facts(found)
    plain, k0s_version = run_k0sctl_backup(ctx, cluster, out_dir, quiet_no_controller=quiet_no_controller)
    keys = host_facts.key_facts(ctx, found, addresses)
    facts = inspection.inspect(plain)
    log.info(f"archive read back: {facts.entries} entries ({', '.join(facts.parts) or 'no known k0s parts'}), "
             f"{facts.size} bytes, sha256 {facts.sha256[:16]}…")
    inspection.check_complete(facts, plain.name, allow_config_only=allow_config_only)
    if facts.datastore == "none":
        log.warn("allow_config_only: true: this archive holds no datastore; a restore of it gives the cluster's "
                 "configuration and certificates, not its objects")
    created = utc_now()
    if encrypt:
        stored = out_dir / "archive.tar.gz.age"
        crypto.encrypt_file(plain, stored, enc)
        plain.unlink(missing_ok=True)
        how = (f"{len(enc.recipients)} recipient(s)" if enc.recipients else "the passphrase")
        log.info(f"encrypted with age to {how}")
    else:
        stored = plain
        log.warn("storing the archive unencrypted (encryption.plaintext: true)")
    build = ctx.build
    hosts = tuple(cluster.addresses())  # what a drill checks its scratch hosts against
    # The backup's record, once: each push attempt's commit adds its archive's name and what retention removed.
    record = BackupFacts(
        created_at=rfc3339(created), cluster=cluster.name, hosts=hosts or None, endpoints=endpoints or None,
        addresses=addresses or None, host_keys=keys or None, sha256=facts.sha256,
        size=facts.size, encrypted=encrypt, k0sctl_version=str(ctx.k0sctl().version()), k0s_version=k0s_version,
        build_url=build.build_url, build=build.describe(), entries=facts.entries, parts=tuple(facts.parts) or None,
        datastore=facts.datastore, reason=reason or None,
    )

    def message_for(name: str, path: str, decision: Decision) -> str:
        body = [f"k0sctl backup of cluster {cluster.name}, by {build.describe()}"
                + (f" ({reason})" if reason else "") + ".", *message_lines(decision)]
        return format_message(f"backup {cluster.name} {name}", body, dataclasses.replace(
            record, archive=name, archive_path=path, removed_archives=len(decision.removed) or None))

    pruning = retention_for(store, cluster, created)
    pushed = push_archive(store, stored, archive_name(cluster.name, created, encrypt), message_for, pruning)
    stored.unlink(missing_ok=True)
    log.ok(f"backup {pushed.archive} pushed to {store.remote.describe()} as {pushed.sha[:12]}"
           + (f" (after {pushed.attempts} attempts)" if pushed.attempts > 1 else ""))
    return StepResponse(Version(ref=pushed.sha), put_metadata(
        dataclasses.replace(record, archive=pushed.archive, archive_path=pushed.path), pushed, store.remote.branch))


def put_metadata(record: BackupFacts, pushed: PushedArchive, branch: str) -> dict[str, object]:
    """A backup put's metadata, read from the record its commit carries, and what retention kept and removed."""
    return {
        "cluster": record.cluster, "hosts": ", ".join(record.hosts or ()), "archive": record.archive,
        "sha256": record.sha256, "size": record.size, "entries": record.entries, "datastore": record.datastore,
        "encrypted": record.encrypted, "ref": pushed.sha, "k0sctl_version": record.k0sctl_version, "branch": branch,
        "removed_archives": len(pushed.removed), **metadata(pushed.decision),
    }


def retention_for(store: BackupStore, cluster: ClusterConfig, now: datetime) -> Pruning:
    """What the policy needs besides the tree; the drill record is read only when a policy is set."""
    policy = store.backup.policy
    drilled = None
    if policy is not None:
        passed = newest_passed(store)
        drilled = passed.drilled_archive if passed is not None else None
    return Pruning(policy=policy, stem=cluster_stem(cluster.name), now=now, drilled=drilled)
