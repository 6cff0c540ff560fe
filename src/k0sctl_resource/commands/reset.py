"""put `command: reset`: `k0sctl reset --force`, confirmed by the cluster's name, with a backup first."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from k0sctl_resource.concourse.responses import StepResponse
from k0sctl_resource.config.cluster import ClusterConfig
from k0sctl_resource.k0sctl import service_logs
from k0sctl_resource.k0sctl.service_logs import CollectLogs
from k0sctl_resource.k0sctl.versions import Invocation
from k0sctl_resource.runtime import log
from k0sctl_resource.runtime.errors import ResourceError
from k0sctl_resource.shared.backups import backup_first
from k0sctl_resource.shared.confirm import require_confirm
from k0sctl_resource.shared.context import StepContext
from k0sctl_resource.shared.latest import after_action, branch_version


@dataclass(frozen=True)
class ResetParams:
    command: Literal["reset"] = "reset"
    config: str = "config/k0sctl.yaml"
    confirm: str | None = None
    backup_first: bool | None = None  # default: true when a backup repository is configured
    collect_logs: CollectLogs = "on_failure"  # k0sctl logs after a failed reset


def run(ctx: StepContext, params: ResetParams, cluster: ClusterConfig, directory: Path) -> StepResponse:
    require_confirm(params.confirm, cluster.name, "reset")
    before = branch_version(ctx)  # before k0sctl runs: a branch that cannot be read stops the reset here
    wanted = params.backup_first if params.backup_first is not None else ctx.source.backup is not None
    facts: dict[str, object] = {"backup_first": wanted}
    taken = None
    if wanted:
        taken = backup_first(ctx, cluster, before="reset")
        if taken is None:
            raise ResourceError(
                "backup_first: k0sctl found no running controller, so no backup could be taken; the reset was "
                "not run (the cluster's data may still be on its hosts). Set backup_first: false to reset anyway"
            )
        facts["backup_ref"] = taken.version.ref
    log.step(f"resetting cluster {cluster.name!r}: k0s is removed from every host")
    result = ctx.k0sctl().run(Invocation("reset", cluster.path))
    if not result.ok:
        if params.collect_logs == "on_failure" and not result.aborted:
            service_logs.collect(ctx.k0sctl(), cluster.path, after="reset")
        raise result.failure("reset")
    log.ok(f"cluster {cluster.name!r} was reset")
    return StepResponse(taken.version if taken is not None else after_action(ctx, before), facts)
