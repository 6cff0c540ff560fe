"""Recording a drill, passed or failed, on the drill branch of the backup repository (`gitstore.drill_record`).

A drill that ran (from its first `k0sctl reset` on) is recorded whatever its outcome; a refusal before it
(confirm, the scratch hosts, the archive's sha256) is no drill, and an abort records nothing. A passed
drill that cannot be recorded fails the put: `verify` and retention would never learn of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict

from k0sctl_resource.runtime import log
from k0sctl_resource.runtime.errors import ResourceError
from k0sctl_resource.shared.context import StepContext
from k0sctl_resource.shared.get_folder import FolderRecord


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


class Drilled(TypedDict):
    """What a drill reports (put metadata) and records (`DrillRecord`) of the backup it restores."""

    drilled_ref: str | None
    drilled_archive: str | None
    source_cluster: str | None


def drilled(backup: FolderRecord) -> Drilled:
    """`Drilled`, read from the backup's record."""
    return Drilled(drilled_ref=backup.ref or None, drilled_archive=backup.backup.archive or None,
                   source_cluster=backup.backup.cluster or None)


def record_drill(ctx: StepContext, backup: FolderRecord, scratch: str, facts: Mapping[str, Any],
                 failure: str | None) -> dict[str, Any]:
    """Append the record of this drill (`failure`: why it failed; None: it passed). Returns the facts the
    put reports about the record. Raises ResourceError when a passed drill cannot be recorded."""
    from k0sctl_resource.gitstore.commit_format import rfc3339, utc_now
    from k0sctl_resource.gitstore.drill_record import DrillRecord, append_drill_record, drills_remote

    if (repository := ctx.source.backup) is None:
        log.warn("drill: no source.backup, so this drill is recorded nowhere (verify's max_drill_age and "
                 "retention read the drill record in the backup repository)")
        return {}
    ended = rfc3339(utc_now())
    record = DrillRecord(
        result="failed" if failure else "passed", **drilled(backup), drilled_at=ended,
        restore_s=_number(facts.get("restore_s")),
        total_s=_number(facts.get("total_s")), k0s_version=_text(facts.get("k0s_version")),
        k0sctl_version=ctx.k0sctl_version(), build_url=ctx.build.build_url,
        scratch_cluster=scratch, reason=failure)
    store = ctx.store_of(repository)
    try:
        commit = append_drill_record(store, record)
    except ResourceError as exc:
        if failure:
            log.warn(f"drill: the failed drill could not be recorded: {exc.message}")
            return {}
        raise ResourceError(f"the drill passed, but could not be recorded on {drills_remote(store).describe()}: "
                            f"{exc.message}") from None
    return {"drill_record": commit, "drill_result": record.result, "drilled_at": ended}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
