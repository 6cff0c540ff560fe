"""What k0sctl's log lines say about a run: whether its restore phase ran, which controllers it found
running k0s, and the plan of a dry run. Colour codes are stripped before matching (`plain`)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from k0sctl_resource.k0sctl.runner import RunResult
from k0sctl_resource.runtime.errors import ResourceError

RESTORE_PHASE = re.compile(r"==> Running phase: Restore cluster state")
RUNNING_CONTROLLER = re.compile(r"(?P<host>\S+): is running k0s (?:controller\S*|single) version")
DRY_NO_CHANGES = "dry-run: no cluster state altering actions would be performed"
DRY_CHANGES = "dry-run: cluster state altering actions would be performed"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class DryRunPlan:
    changes: bool
    actions: list[str]
    running_controllers: list[str]

    @property
    def would_restore(self) -> bool:
        """k0sctl restores only onto a cluster where no controller runs k0s."""
        return not self.running_controllers


def plain(line: str) -> str:
    return _ANSI.sub("", line)


def running_controllers(result: RunResult) -> list[str]:
    """The hosts k0sctl found running a k0s controller while it gathered facts ("<host>: is running k0s …")."""
    return [m.group("host") for m in (RUNNING_CONTROLLER.search(plain(line)) for line in result.lines) if m]


def restore_ran(result: RunResult) -> bool:
    return any(RESTORE_PHASE.search(plain(line)) for line in result.lines)


def parse_dry_run(result: RunResult) -> DryRunPlan:
    """Read k0sctl's dry-run summary: whether anything would change, and the planned actions."""
    changes: bool | None = None
    actions: list[str] = []
    for raw in result.lines:
        line = plain(raw).strip()
        if DRY_NO_CHANGES in line:
            changes = False
        elif DRY_CHANGES in line:
            changes = True
        elif changes and line.startswith("dry-run:"):
            actions.append(line.removeprefix("dry-run:").strip())
    if changes is None:
        raise ResourceError("k0sctl printed no dry-run summary; cannot tell whether the cluster would change")
    running = running_controllers(result)
    return DryRunPlan(changes=changes, actions=actions, running_controllers=running)
