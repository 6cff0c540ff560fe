"""Retention applied to the branch's tree: which files of a commit's tree the policy removes (`retention`
decides, this reads the tree's names), and how a commit says so in its message and a put in its metadata.

Only the archives of one cluster (names `<cluster>-<stamp>.tar.gz[.age]`) are a series: another
cluster's archives in the same folder, and files of any other name, are never removed.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from k0sctl_resource.config.models import Retention
from k0sctl_resource.gitstore.commit_format import archive_created
from k0sctl_resource.gitstore.retention import Archive, Decision, decide
from k0sctl_resource.runtime import log

LISTED = 50  # archives named one by one in a commit message; the rest are counted


@dataclass(frozen=True)
class Pruning:
    """What retention needs besides the tree: the policy (None: keep every archive), the cluster's series,
    the moment it is applied at, and the archive of the last passed drill."""

    policy: Retention | None
    stem: str
    now: datetime
    drilled: str | None = None

    def decide(self, names: Sequence[str], *, just_written: str | None = None,
               protect: Collection[str] = ()) -> Decision:
        """The decision over the archives of the series among `names` (file names in the folder)."""
        if self.policy is None:
            return Decision()
        series = [Archive(n, created) for n in names if (created := archive_created(n, self.stem)) is not None]
        if not series:
            return Decision()
        decision = decide(series, self.policy, now=self.now, just_written=just_written, drilled=self.drilled,
                          protect=protect)
        if decision.future:
            log.warn(f"retention: {len(decision.future)} archive(s) dated after now ({', '.join(decision.future[:3])}"
                     f"{', …' if len(decision.future) > 3 else ''}) are kept: a clock ran ahead when they were taken")
        return decision


def _listed(items: Sequence[str], what: str) -> list[str]:
    shown = [f"{what} {item}" for item in items[:LISTED]]
    if len(items) > LISTED:
        shown.append(f"… and {len(items) - LISTED} more {what}")
    return shown


def message_lines(decision: Decision) -> list[str]:
    """The body lines of a commit that applied `decision` (nothing when no policy is set)."""
    if not decision.kept and not decision.removed:
        return []
    rules = ", ".join(f"{rule} {n}" for rule, n in decision.by_rule().items())
    lines = [f"retention: kept {len(decision.kept)} archive(s) ({rules}), removed {len(decision.removed)} "
             "from the tree (the history keeps them)."]
    lines += _listed([f"{name} ({', '.join(rules)})" for name, rules in decision.kept.items()], "kept")
    lines += _listed(list(decision.removed), "removed")
    return lines


def metadata(decision: Decision) -> dict[str, object]:
    """What a put reports about `decision`: counts, the counts by rule, and the names (shortened)."""
    if not decision.kept and not decision.removed:
        return {}

    def short(items: Sequence[str]) -> str:
        text = ", ".join(items[:LISTED])
        return text + (f" … and {len(items) - LISTED} more" if len(items) > LISTED else "")

    return {
        "kept_archives": len(decision.kept),
        "removed_archives": len(decision.removed),
        "kept_by_rule": ", ".join(f"{rule} {n}" for rule, n in decision.by_rule().items()),
        "kept": short([f"{name} ({', '.join(rules)})" for name, rules in decision.kept.items()]),
        "removed": short(list(decision.removed)),
    }
