"""put `command: drill`: restore a backup onto scratch hosts, check it, tear it down, and time it.

A backup nobody has restored is a hope. A drill proves, on throwaway hosts, that the archive a get
handed over restores into a cluster k0sctl reports ready, and measures how long that takes:

1. refusals, before anything runs (`drill_guard`): confirm, the backup's record (name and hosts),
   then the archive's sha256 against that record (`restore_source`, as apply checks it);
2. `k0sctl reset --force` on the scratch hosts: whatever an earlier drill (`keep: true`) or a broken
   one left there, running or half-installed, is removed; on empty hosts it only warns;
3. `k0sctl apply --restore-from` with a private copy of the scratch config whose controllers drop the
   restored admin kubeconfig before k0s starts (`restore_hooks`: else production's API server, named in
   it, may answer k0sctl's readiness wait);
4. checks through k0sctl: the restore phase ran, the API readiness wait, the k0s version it installed,
   and `k0sctl kubeconfig` answers with an admin kubeconfig (never printed); then the drill's own proof
   at each scratch controller's address (`scratch_api`): `restore_s` runs from the start of the apply
   until every scratch API server answered /readyz;
5. `k0sctl reset --force` unless `keep`. A drill that fails after step 2 resets the hosts too, and fails
   with k0sctl's reason; an aborted drill (SIGTERM/SIGINT) does not, the next drill resets them first.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from k0sctl_resource.concourse.responses import StepResponse
from k0sctl_resource.config.cluster import ClusterConfig
from k0sctl_resource.config.schema import required
from k0sctl_resource.k0sctl import service_logs, ssh_config
from k0sctl_resource.k0sctl.service_logs import CollectLogs
from k0sctl_resource.k0sctl.versions import Invocation
from k0sctl_resource.runtime import log
from k0sctl_resource.runtime.errors import ResourceError
from k0sctl_resource.shared import drill_guard, host_facts
from k0sctl_resource.shared.context import StepContext
from k0sctl_resource.shared.drill_log import drilled, record_drill
from k0sctl_resource.shared.latest import after_action, branch_version


@dataclass(frozen=True, kw_only=True)
class DrillParams:
    """A restore drill: the newest backup restored onto scratch hosts, checked, torn down, timed.

    `config` has no default: the default path of the other commands names the production cluster."""

    command: Literal["drill"] = "drill"
    config: str = required()  # the scratch cluster's k0sctl.yaml
    restore_from: str = required()  # a get of this resource
    confirm: str | None = None  # must equal the scratch cluster's metadata.name (checked by the step)
    keep: bool = False  # leave the restored scratch cluster running after a successful drill
    collect_logs: CollectLogs = "on_failure"  # k0sctl logs after a failed drill, before the hosts are reset
    rto_target_s: int | None = None  # a restore slower than this (restore_s) fails the drill

    def validate(self, path: str) -> None:
        if self.rto_target_s is not None and self.rto_target_s < 1:
            raise ResourceError(f"{path}.rto_target_s: must be at least 1 (seconds)")


def run(ctx: StepContext, params: DrillParams, scratch: ClusterConfig, directory: Path) -> StepResponse:
    from k0sctl_resource.archive.inspection import inspect
    from k0sctl_resource.shared.restore_source import locate_backup

    drill_guard.check_confirm(params.confirm, scratch)
    named, record = locate_backup(params.restore_from, directory)  # found once, its record read once
    scratch_endpoints = drill_guard.check_not_production(scratch, record, ssh_g=ssh_config.ssh_g,
                                                         files_matter=ssh_config.files_matter())
    archive = named.verified_archive(ctx)
    identity = host_facts.check_identity(scratch_endpoints, record)  # before any reset
    backup = record.backup
    found = inspect(archive)
    log.info(f"drill: backup {record.ref[:12]} of cluster {backup.cluster} ({backup.archive}, "
             f"{found.size} bytes, sha256 verified) onto scratch cluster {scratch.name!r} "
             f"({', '.join(h.label for h in scratch.hosts)})")
    before = branch_version(ctx)  # a branch that cannot be read stops the drill before k0sctl runs
    facts: dict[str, Any] = {**drilled(record), "scratch_hosts": len(scratch.hosts), **identity}
    backed_up = backup.k0s_version
    production = list(backup.hosts or ())
    try:  # a drill that ran is recorded, passed or failed (an abort is no ResourceError: it records nothing)
        facts.update(_drill(ctx, scratch, archive, params.keep, backed_up, production,
                            collect=params.collect_logs == "on_failure"))
        slow_by_rto(params, facts)
    except ResourceError as exc:
        record_drill(ctx, record, scratch.name, facts, exc.message)
        raise
    facts.update(record_drill(ctx, record, scratch.name, facts, None))
    return StepResponse(after_action(ctx, before), facts)


def slow_by_rto(params: DrillParams, facts: dict[str, Any]) -> None:
    """`rto_target_s`: a restore slower than the target fails the drill."""
    if params.rto_target_s is None:
        return
    facts["rto_target_s"] = params.rto_target_s
    if facts["restore_s"] > params.rto_target_s:
        raise ResourceError(f"the drill restored in {facts['restore_s']} s, above rto_target_s "
                            f"{params.rto_target_s} s: the restore is slower than its target")


def _drill(ctx: StepContext, scratch: ClusterConfig, archive: Path, keep: bool,
           backed_up: str | None, production: list[str], *, collect: bool) -> dict[str, Any]:
    started = time.monotonic()
    was_running = _reset(ctx, scratch, "before the drill")
    try:
        facts = _restore_and_check(ctx, scratch, archive, backed_up, production)
    except ResourceError as exc:  # an abort (lifecycle.Aborted) is no ResourceError: it resets nothing
        if collect:  # before the reset removes what the logs are about
            service_logs.collect(ctx.k0sctl(), scratch.path, after="drill")
        raise _reset_after_failure(ctx, scratch, exc) from None
    if keep:
        log.warn(f"keep: true: the restored scratch cluster {scratch.name!r} is left running")
    else:
        try:
            _reset(ctx, scratch, "after the drill")
        except ResourceError as exc:
            raise ResourceError(f"the drill passed (restore_s {facts['restore_s']}), but {exc.message}; the "
                                "scratch cluster may still be running") from None
    facts.update(total_s=round(time.monotonic() - started, 1), kept=keep, scratch_was_running=was_running)
    log.ok(f"drill passed: backup restored onto {scratch.name!r} and ready in {facts['restore_s']} s "
           f"({facts['total_s']} s with the resets)")
    return facts


def _reset(ctx: StepContext, scratch: ClusterConfig, when: str) -> bool:
    """`k0sctl reset --force` on the scratch hosts; whether k0s was running there before."""
    log.step(f"drill: resetting the scratch hosts of {scratch.name!r} ({when})")
    result = ctx.k0sctl().run(Invocation("reset", scratch.path))
    if not result.ok:
        raise ResourceError(f"k0sctl reset of the scratch hosts ({when}) failed: {result.reason()}")
    running = result.transcript.running_controllers()
    if running:
        log.info(f"drill: k0s was running on {', '.join(running)} ({when}); it was reset")
    return bool(running)


def _restore_and_check(ctx: StepContext, scratch: ClusterConfig, archive: Path,
                       backed_up: str | None, production: list[str]) -> dict[str, Any]:
    from k0sctl_resource.shared.restore_hooks import with_restore_hooks

    k0sctl = ctx.k0sctl()
    hooked = with_restore_hooks(scratch, ctx.workspace.dir("drill"))
    started = time.monotonic()
    result = k0sctl.run(Invocation("apply", hooked.path, restore_from=archive))
    k0sctl_ready_s = round(time.monotonic() - started, 1)
    if not result.ok:
        raise result.failure("apply --restore-from")
    facts: dict[str, Any] = {"k0sctl_ready_s": k0sctl_ready_s}
    if leftovers := result.warn_leftovers():
        facts["controller_leftovers"] = leftovers
    read = result.transcript
    if not read.restore_ran():
        raise ResourceError("k0sctl apply did not run its restore phase (k0s was still running on the scratch "
                            "leader after the reset)")
    facts["restored"] = True
    facts["api_ready"] = read.api_waited()
    if not facts["api_ready"]:
        raise ResourceError("k0sctl restored the archive but did not wait for the Kubernetes API to be ready "
                            "(spec.options.wait.enabled: false in the scratch config?), so the drill proves "
                            "nothing about a ready cluster and restore_s would measure nothing")
    facts["k0s_version"] = read.installed_version() or scratch.k0s_version
    facts["backup_k0s_version"] = backed_up
    if backed_up and facts["k0s_version"] != backed_up:
        log.warn(f"drill: the backup was taken from k0s {backed_up} and restored onto k0s {facts['k0s_version']}: "
                 "give the scratch config the production cluster's spec.k0s.version to drill what a restore "
                 "of production would do")
    log.ok(f"drill: restored; k0sctl reports the cluster ready after {k0sctl_ready_s} s, k0s {facts['k0s_version']}")
    facts.update(_prove_scratch(ctx, scratch, production, started))
    return facts


def _prove_scratch(ctx: StepContext, scratch: ClusterConfig, production: list[str], started: float) -> dict[str, Any]:
    """`k0sctl kubeconfig` must answer with an admin kubeconfig (never printed), and the scratch control plane
    itself must answer with it (`scratch_api`)."""
    from k0sctl_resource.k0sctl.kubeconfig import admin_kubeconfig
    from k0sctl_resource.shared.scratch_api import prove

    kubeconfig = admin_kubeconfig(ctx.k0sctl(), scratch.path, context=" after the restore")
    log.ok(f"drill: k0sctl kubeconfig: admin credentials for {kubeconfig.server}")
    return {"api_server": kubeconfig.server,
            **prove(kubeconfig.text, kubeconfig.server, scratch, production, ctx.workspace.dir("drill"), started)}


def _reset_after_failure(ctx: StepContext, scratch: ClusterConfig, failure: ResourceError) -> ResourceError:
    log.warn(f"drill failed ({failure.message}); resetting the scratch hosts")
    try:
        _reset(ctx, scratch, "after the failed drill")
    except ResourceError as exc:
        return ResourceError(f"{failure.message}; and {exc.message}")
    return ResourceError(f"{failure.message}; the scratch hosts were reset")

