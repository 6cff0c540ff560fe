"""The drill record: one commit per restore drill, passed or failed, on a branch of its own in the backup
repository, `k0sctl-drills/<backup.branch>`.

The record is never on the versions branch: a drill never becomes a version of the resource and never
shifts what a later `install` takes. Each record is an empty-tree commit whose first parent is the
previous record; its subject says what happened and its trailers (the format of `commit_format`) say it
for machines:

    drill passed: prod-20260101T000000Z.tar.gz.age of prod onto scratch

    Drill-Result: passed
    Drilled-Ref: <full sha of the backup commit>
    Drilled-Archive: prod-20260101T000000Z.tar.gz.age
    Drilled-At: 2026-01-01T00:10:00Z
    Restore-S: 312.4
    ...

`verify` (`max_drill_age`) and retention (the archive of the last passed drill is never removed) read it.
"""

from __future__ import annotations

import dataclasses
import os
import random
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from k0sctl_resource.gitstore.commit_format import (
    one_line,
    read_trailers,
    trailer_field,
    trailer_lines,
    typed_trailers,
)
from k0sctl_resource.gitstore.history import find_newest, messages
from k0sctl_resource.gitstore.remote import Remote
from k0sctl_resource.gitstore.runner import GitRunner, classify
from k0sctl_resource.gitstore.store import EMPTY_TREE, BackupStore
from k0sctl_resource.runtime import log
from k0sctl_resource.runtime.errors import ResourceError
from k0sctl_resource.runtime.redact import REDACT

DRILLS_PREFIX = "k0sctl-drills/"
DRILLS_REF = "refs/k0sctl/drills"  # where a private repository keeps the fetched drill branch
APPEND_ATTEMPTS = 10
READ_DEPTH = 64  # records fetched at first when looking for the newest passed one
REASON_CHARS = 300
RESULT_TRAILER = "Drill-Result"


@dataclass(frozen=True)
class DrillRecord:
    """One drill, as its commit records it (`commit` is set when the record was read back)."""

    result: Literal["passed", "failed"] = dataclasses.field(metadata={"trailer": RESULT_TRAILER})
    drilled_ref: str | None = trailer_field("Drilled-Ref")
    drilled_archive: str | None = trailer_field("Drilled-Archive")
    drilled_at: str | None = trailer_field("Drilled-At")  # RFC 3339, UTC: when the drill ended
    restore_s: float | None = trailer_field("Restore-S")
    total_s: float | None = trailer_field("Total-S")
    k0s_version: str | None = trailer_field("K0s-Version")
    k0sctl_version: str | None = trailer_field("K0sctl-Version")
    build_url: str | None = trailer_field("Build-Url")
    source_cluster: str | None = trailer_field("Source-Cluster")
    scratch_cluster: str | None = trailer_field("Scratch-Cluster")
    reason: str | None = trailer_field("Reason")  # failed drills only
    commit: str | None = dataclasses.field(default=None, compare=False)

    @property
    def passed(self) -> bool:
        return self.result == "passed"

    def ended(self) -> datetime | None:
        """`drilled_at` as an aware datetime; None when it is missing or unreadable."""
        try:
            moment = datetime.fromisoformat((self.drilled_at or "").replace("Z", "+00:00"))
        except ValueError:
            return None
        return moment if moment.tzinfo is not None else None


def format_drill_record(record: DrillRecord) -> str:
    """The commit message of `record`: subject, then its trailers (a reason only for a failed drill)."""
    if record.result not in ("passed", "failed"):
        raise ResourceError(f"internal error: a drill result is passed or failed, not {record.result!r}")
    reason = one_line(record.reason)[:REASON_CHARS] if record.reason and not record.passed else None
    record = dataclasses.replace(record, reason=reason)
    subject = (f"drill {record.result}: {record.drilled_archive or record.drilled_ref or 'unknown archive'} of "
               f"{record.source_cluster or 'unknown cluster'} onto {record.scratch_cluster or 'unknown cluster'}")
    return REDACT("\n".join([one_line(subject), "", *trailer_lines(record)]) + "\n")


def parse_drill_record(message: str, commit: str | None = None) -> DrillRecord | None:
    """The record a commit message of `format_drill_record` holds; None for any other message."""
    trailers = read_trailers(message)
    if trailers.get(RESULT_TRAILER.lower()) not in ("passed", "failed"):
        return None
    return DrillRecord(**typed_trailers(DrillRecord, trailers), commit=commit)


# -- the drill branch --------------------------------------------------------------------------------

def drills_remote(store: BackupStore) -> Remote:
    """The drill branch of the backup repository (`k0sctl-drills/<backup.branch>`)."""
    return dataclasses.replace(store.remote, branch=DRILLS_PREFIX + store.remote.branch)


def _fetch(store: BackupStore, runner: GitRunner, *options: str) -> str | None:
    """Fetch the drill branch's commits (no trees) into DRILLS_REF; its tip, None when it does not exist."""
    return store.fetch_branch(runner, drills_remote(store), DRILLS_REF, ("--filter=tree:0", *options))


def append_drill_record(store: BackupStore, record: DrillRecord) -> str:
    """Push a commit of `record` on top of the drill branch (creating it); its sha. A push rejected because
    another drill recorded meanwhile is redone on the new tip, at most APPEND_ATTEMPTS times and not after
    `bounds.retry_window`."""
    runner = store.scratch()
    remote = drills_remote(store)
    with open(os.devnull, "rb") as empty:
        runner.ok("hash-object", "-t", "tree", "-w", "--stdin", what="creating the empty tree", stdin=empty)
    message = format_drill_record(record)
    deadline = time.monotonic() + remote.bounds.retry_window
    reason = ""
    for attempt in range(1, APPEND_ATTEMPTS + 1):
        tip = _fetch(store, runner, "--depth=1")
        commit = store.commit_tree(runner, EMPTY_TREE, tip, message)
        result = store.push_ref(runner, f"{commit}:{remote.head_ref}")
        if result.ok:
            log.info(f"drill recorded as {commit[:12]} on {remote.describe()}")
            return commit
        kind, reason = classify(result.stderr)
        if kind != "rejected":
            raise result.failure(f"cannot record the drill on {remote.describe()}")
        delay = min(4.0, 0.2 * 2 ** min(attempt - 1, 5)) * random.uniform(0.5, 1.5)  # noqa: S311
        if time.monotonic() + delay > deadline:
            break
        time.sleep(delay)
    raise ResourceError(f"could not record the drill on {remote.describe()} (it kept moving; last: {reason})")


def read_drill_records(store: BackupStore, limit: int = 10) -> list[DrillRecord]:
    """The newest `limit` drill records, newest first ([] when no drill was ever recorded)."""
    runner = store.scratch()
    if _fetch(store, runner, f"--depth={max(1, limit)}") is None:
        return []
    return [r for sha, body in messages(runner, DRILLS_REF, limit) if (r := parse_drill_record(body, sha))]


def newest_passed(store: BackupStore) -> DrillRecord | None:
    """The newest record of a passed drill, or None when no drill ever passed. Reads the newest READ_DEPTH
    records first and the whole branch (commits only, a few hundred bytes each) only when none of them
    passed."""
    def passed(sha: str, body: str) -> DrillRecord | None:
        record = parse_drill_record(body, sha)
        return record if record is not None and record.passed else None

    _tip, found = find_newest(store, drills_remote(store), DRILLS_REF, READ_DEPTH, passed)
    return found[0] if found else None
