"""fleet-status's answer: a table for people, JSON for machines, and the exit code."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from k0sctl_resource.fleet.status import SEVERITY, ClusterStatus, human_age
from k0sctl_resource.gitstore.commit_format import rfc3339


def worst(statuses: list[ClusterStatus]) -> str:
    return max((s.status for s in statuses), key=SEVERITY.index, default="ok")


def exit_code(statuses: list[ClusterStatus]) -> int:
    """0 when every cluster is ok; 1 when any is stale, unreachable or undrilled."""
    return 0 if worst(statuses) == "ok" else 1


def to_json(statuses: list[ClusterStatus], checked_at: datetime) -> dict[str, Any]:
    return {"checked_at": rfc3339(checked_at), "status": worst(statuses),
            "counts": {name: sum(1 for s in statuses if s.status == name) for name in SEVERITY},
            "clusters": [dataclasses.asdict(s) for s in statuses]}


def render_table(statuses: list[ClusterStatus]) -> str:
    rows = [("CLUSTER", "STATUS", "BACKUP AGE", "LAST DRILL", "RESTORE_S", "PASSED DRILL AGE", "PROBLEMS")]
    for s in statuses:
        rows.append((s.name, s.status.upper() if s.status != "ok" else "ok", human_age(s.backup_age_s),
                     s.last_drill_result or "-", "-" if s.restore_s is None else f"{s.restore_s:g}",
                     human_age(s.drill_age_s), "; ".join(s.problems) or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1]
             for row in rows]
    counts = ", ".join(f"{sum(1 for s in statuses if s.status == name)} {name}" for name in SEVERITY)
    return "\n".join(lines) + f"\n\n{len(statuses)} cluster(s): {counts}\n"
