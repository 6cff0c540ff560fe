"""put `verify`: is the newest backup fresh, and was a restore drilled lately?

Everything is read from the backup repository (the newest backup commit's Created-At, the drill record),
so the answer survives any restart and needs no state of its own; `check` never fails for staleness, this
put does. With `deep: true` the newest archive is fetched, decrypted into the step's private directory,
its sha256 compared with its record and read through as a tar.gz.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from k0sctl_resource.concourse.responses import StepResponse
from k0sctl_resource.config.models import Version
from k0sctl_resource.config.schema import Duration, required
from k0sctl_resource.gitstore.commit_format import BackupFacts, CommitInfo, rfc3339, utc_now
from k0sctl_resource.gitstore.store import BackupStore
from k0sctl_resource.runtime import log
from k0sctl_resource.runtime.errors import ResourceError
from k0sctl_resource.shared.context import StepContext


@dataclass(frozen=True, kw_only=True)
class VerifyParams:
    """Freshness: the newest backup's age (and the last passed drill's) against bounds; no config is read."""

    command: Literal["verify"] = "verify"
    config: str = "config/k0sctl.yaml"  # not read: verify looks at the backup repository only
    max_age: Duration = required()  # noqa: RUF009 - the newest backup older than this fails the put
    warn_age: Duration | None = None  # older than this: a warning
    max_drill_age: Duration | None = None  # the last passed drill older than this (or none) fails the put
    deep: bool = False  # also fetch, decrypt privately, check the sha256 and read the newest archive through

    def validate(self, path: str) -> None:
        if self.warn_age is not None and self.warn_age >= self.max_age:
            raise ResourceError(f"{path}.warn_age: must be shorter than max_age")


def _age(seconds: float) -> str:
    hours = seconds / 3600
    return f"{seconds:.0f} s" if hours < 1 else f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"


def _created(info: CommitInfo) -> datetime:
    assert isinstance(info.facts, BackupFacts)
    try:
        created = datetime.fromisoformat((info.facts.created_at or "").replace("Z", "+00:00"))
        return created if created.tzinfo is not None else created.replace(tzinfo=UTC)
    except ValueError:
        raise ResourceError(f"the newest backup {info.sha[:12]} records no readable Created-At "
                            f"({(info.facts.created_at or 'none')[:40]!r})") from None


def run(ctx: StepContext, params: VerifyParams, _cluster: None, directory: Path) -> StepResponse:
    from k0sctl_resource.gitstore.drill_record import newest_passed
    from k0sctl_resource.gitstore.history import newest_backup

    store = ctx.store("verify")
    tip, newest = newest_backup(store)
    if tip is None:
        raise ResourceError(f"{store.remote.describe()} does not exist: there is no backup at all")
    if newest is None:
        raise ResourceError(f"{store.remote.describe()} holds no backup yet (only init commits)")
    now = utc_now()
    created = _created(newest)
    age = (now - created).total_seconds()
    assert isinstance(newest.facts, BackupFacts)
    facts: dict[str, Any] = {"newest_backup": newest.sha, "newest_archive": newest.facts.archive,
                             "newest_backup_at": rfc3339(created), "age_s": round(age)}
    problems: list[str] = []
    warnings: list[str] = []
    if age > params.max_age:
        problems.append(f"the newest backup ({newest.facts.archive}) is {_age(age)} old, older than max_age "
                        f"{_age(params.max_age)}")
    elif params.warn_age is not None and age > params.warn_age:
        warnings.append(f"the newest backup is {_age(age)} old, past warn_age {_age(params.warn_age)}")
    if age < 0:
        warnings.append(f"the newest backup is dated {_age(-age)} in the future (a clock ran ahead)")
    passed = newest_passed(store)
    ended = passed.ended() if passed is not None else None
    if passed is not None:
        facts.update(last_drill_at=passed.drilled_at, last_drill_restore_s=passed.restore_s,
                     last_drill_ref=passed.drilled_ref)
    if params.max_drill_age is not None:
        if ended is None:
            problems.append("no drill has passed yet (max_drill_age is set): run put command: drill")
        elif (drill_age := (now - ended).total_seconds()) > params.max_drill_age:
            problems.append(f"the last passed drill is {_age(drill_age)} old, older than max_drill_age "
                            f"{_age(params.max_drill_age)}")
    if params.deep:
        facts.update(_deep(ctx, store, newest))
    for warning in warnings:
        log.warn(f"verify: {warning}")
    if problems:
        raise ResourceError("verify: " + "; ".join(problems))
    facts["status"] = "warn" if warnings else "ok"
    log.ok(f"verify: newest backup {newest.facts.archive} is {_age(max(age, 0))} old"
           + (f"; last passed drill {passed.drilled_at} (restore_s {passed.restore_s})" if passed else "")
           + (f" [{facts['status']}]" if warnings else ""))
    return StepResponse(Version(ref=tip), facts)


def _deep(ctx: StepContext, store: BackupStore, newest: CommitInfo) -> dict[str, Any]:
    """Fetch the newest archive, decrypt it into the private workspace, compare its sha256 with the
    record and read it through; the facts of what was read."""
    from k0sctl_resource.archive import crypto, inspection

    facts = newest.facts
    assert isinstance(facts, BackupFacts)
    path = facts.archive_path or f"{store.backup.folder}/{facts.archive}"
    encrypted = facts.encrypted if facts.encrypted is not None else path.endswith(".age")
    if encrypted and not ctx.source.encryption.can_decrypt:
        raise ResourceError("verify deep: the newest archive is encrypted and source.encryption has no identities "
                            "or passphrase to decrypt it")
    store.read_commit(newest.sha)
    stored = ctx.workspace.path / "verify-archive"
    store.read_blob(newest.sha, path, stored)
    plain = ctx.workspace.path / "verify-plain.tar.gz"
    if encrypted:
        crypto.decrypt_file(stored, plain, ctx.source.encryption)
        stored.unlink(missing_ok=True)
    else:
        stored.rename(plain)
    read = inspection.inspect(plain)
    plain.unlink(missing_ok=True)
    if facts.sha256 and read.sha256 != facts.sha256:
        raise ResourceError(f"verify deep: the newest archive {facts.archive} does not match its recorded sha256 "
                            f"(got {read.sha256[:16]}…, recorded {facts.sha256[:16]}…)")
    log.ok(f"verify deep: {facts.archive} decrypted, sha256 verified, {read.entries} entries read through")
    return {"deep": True, "entries": read.entries, "sha256_verified": bool(facts.sha256)}
