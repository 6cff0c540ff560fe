"""put `command: apply`: `k0sctl apply`, with optional restore, a backup first, and dry-run plans.

The resource decides whether a restore happens, not k0sctl: k0sctl restores `--restore-from` only onto a
cluster where no controller runs k0s, and releases differ in what they do otherwise (up to v0.33 the restore
is skipped without a word; v0.34 refuses the whole apply). So when `restore_from` holds an archive, a dry run
first reads k0sctl's facts ("<host>: is running k0s … version …" lines), and `--restore-from` is passed only
when no controller runs k0s. With k0s running, `restore: auto` applies the config to the running cluster
without the archive and says so; `restore: required` stops before anything changes. Should k0s start between
the dry run and the apply (a race), k0sctl refuses or skips the restore, and one error line says which.

`--restore-from` is never passed to a dry run: k0sctl's restore phase has no dry-run mode, so
`apply --dry-run --restore-from` would upload the archive and run `k0s restore` for real.

With an archive, k0sctl gets a private copy of the config whose controllers drop the restored admin
kubeconfig before k0s starts (`shared.restore_hooks`): restored onto new hosts while the old controllers
still run, k0sctl's readiness wait would otherwise be answered by the old API server.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from k0sctl_resource.concourse.responses import StepResponse
from k0sctl_resource.config.cluster import ClusterConfig
from k0sctl_resource.k0sctl import service_logs
from k0sctl_resource.k0sctl.runner import RunResult
from k0sctl_resource.k0sctl.service_logs import CollectLogs
from k0sctl_resource.k0sctl.transcript import DryRunPlan
from k0sctl_resource.k0sctl.versions import SINCE_DRY_RUN, Invocation
from k0sctl_resource.runtime import log
from k0sctl_resource.runtime.errors import ResourceError
from k0sctl_resource.shared.backups import backup_first
from k0sctl_resource.shared.context import StepContext
from k0sctl_resource.shared.latest import after_action, branch_version
from k0sctl_resource.shared.restore_source import RestoreSource, check_cluster_name, resolve_restore_source


@dataclass(frozen=True)
class ApplyParams:
    command: Literal["apply"] = "apply"
    config: str = "config/k0sctl.yaml"
    restore_from: str | None = None
    restore: Literal["auto", "required"] = "auto"
    backup_first: bool = False
    dry_run: bool = False
    no_wait: bool = False
    no_drain: bool = False
    collect_logs: CollectLogs = "on_failure"
    force: bool = False
    evict_taint: str | None = None
    kubeconfig_api_address: str | None = None
    migrate_from: str | None = None  # the other cluster whose archive this apply may restore

    def validate(self, path: str) -> None:
        for name in ("evict_taint", "kubeconfig_api_address"):
            value = getattr(self, name)
            if value is not None and (not value or value.startswith("-") or any(c.isspace() for c in value)):
                raise ResourceError(f"{path}.{name}: must be one word, not beginning with '-'")
        if self.restore == "required" and self.restore_from is None:
            raise ResourceError(f"{path}.restore: 'required' needs restore_from")
        if self.migrate_from is not None and self.restore_from is None:
            raise ResourceError(f"{path}.migrate_from: needs restore_from (the archive of the cluster named)")
        if self.dry_run and self.backup_first:
            raise ResourceError(f"{path}: dry_run and backup_first exclude each other")


def _restore_source(ctx: StepContext, params: ApplyParams, directory: Path) -> RestoreSource | None:
    """The archive `restore_from` names, read back, or None without `restore_from`."""
    from k0sctl_resource.archive.inspection import inspect

    if params.restore_from is None:
        return None
    restore = resolve_restore_source(ctx, params.restore_from, directory)
    if restore.archive is None:
        if params.restore == "required":
            raise ResourceError(f"restore: required, but {restore.description}; nothing was changed")
        log.info(f"restore: {restore.description}: going on as a fresh install")
    else:
        found = inspect(restore.archive)
        log.info(f"restore: archive {restore.description} ({found.size} bytes, {found.entries} entries)")
    return restore


def run(ctx: StepContext, params: ApplyParams, cluster: ClusterConfig, directory: Path) -> StepResponse:
    facts: dict[str, object] = {}
    restore = _restore_source(ctx, params, directory)
    if restore is not None and restore.archive is not None:  # before k0sctl runs: the archive's own cluster
        facts.update(check_cluster_name(restore, cluster.name, params.migrate_from))
    # The put's version is read (or the branch created) before k0sctl runs: a backup branch that cannot be
    # read stops the apply here, before anything changes (README, "Versions").
    before = branch_version(ctx)
    k0sctl = ctx.k0sctl()
    archive = restore.archive if restore else None
    invocation = Invocation("apply", cluster.path, no_wait=params.no_wait, no_drain=params.no_drain,
                            force=params.force, evict_taint=params.evict_taint,
                            kubeconfig_api_address=params.kubeconfig_api_address)
    k0sctl.argv(invocation)  # a flag this k0sctl does not have is refused before anything runs

    if params.dry_run:
        plan = _plan(ctx, cluster, params)
        facts.update(changes=plan.changes, planned_actions=len(plan.actions), dry_run=True)
        if archive is not None:
            facts["restore_planned"] = plan.would_restore
            _log_restore_plan(plan)
            if params.restore == "required" and not plan.would_restore:
                raise ResourceError("restore: required, but k0s is already running on "
                                    f"{', '.join(plan.running_controllers)}, so k0sctl would skip the restore")
        return StepResponse(after_action(ctx, before), facts)

    if archive is not None and not _restore_possible(ctx, cluster, params):
        archive = None  # k0s runs: the config is applied to the running cluster, the archive is not restored
        facts["restored"] = False

    taken = None
    if params.backup_first:
        taken = backup_first(ctx, cluster, before="apply", quiet_no_controller=True)
        if taken is None:
            log.info("backup_first: k0s is not running on any controller (a new cluster, or one to restore), "
                     "so there is nothing to back up; going on with the apply")
        else:
            facts["backup_ref"] = taken.version.ref

    final = replace(invocation, restore_from=archive)
    if archive is not None:  # restored controllers must answer k0sctl's readiness wait themselves
        from k0sctl_resource.shared.restore_hooks import with_restore_hooks

        final = replace(final, config=with_restore_hooks(cluster, ctx.workspace.dir("apply")).path)
    result = k0sctl.run(final)
    if not result.ok:
        if params.collect_logs == "on_failure" and not result.aborted:
            service_logs.collect(k0sctl, cluster.path, after="apply")
        if archive is not None and result.transcript.restore_refused():
            raise ResourceError("k0sctl refused the restore: k0s started on a controller after the resource "
                                f"found none running ({result.reason()}); nothing was restored")
        raise result.failure("apply")
    if restore is not None and archive is not None:
        facts.update(_restore_outcome(result, restore, params))
    facts.setdefault("restored", False)
    version = taken.version if taken is not None else after_action(ctx, before)
    return StepResponse(version, facts)


def _restore_outcome(result: RunResult, restore: RestoreSource, params: ApplyParams) -> dict[str, object]:
    """Whether k0sctl restored the archive (a release before v0.34 skips it on a running cluster)."""
    facts: dict[str, object] = {}
    if leftovers := result.warn_leftovers():
        facts["controller_leftovers"] = leftovers
    restored = result.transcript.restore_ran()
    facts["restored"] = restored
    if restored:
        log.ok(f"restore: the cluster was restored from {restore.description}")
    else:
        log.warn("restore: NOT restored: k0s was running on the leader when k0sctl looked, so k0sctl skipped "
                 "the restore and applied the config to the running cluster")
        if params.restore == "required":
            raise ResourceError("restore: required, but k0sctl did not restore (k0s was already running)")
    return facts


def _log_plan(plan: DryRunPlan) -> None:
    if not plan.changes:
        log.ok("dry-run: k0sctl would not change the cluster")
        return
    log.step(f"dry-run: k0sctl would change the cluster ({len(plan.actions)} planned actions):")
    for action in plan.actions:
        log.info(f"  {action}")


def _plan(ctx: StepContext, cluster: ClusterConfig, params: ApplyParams) -> DryRunPlan:
    """`k0sctl apply --dry-run` (never with --restore-from, see the module doc) and its parsed plan."""
    result = ctx.k0sctl().run(Invocation("apply", cluster.path, dry_run=True, no_wait=params.no_wait,
                                         no_drain=params.no_drain, force=params.force,
                                         evict_taint=params.evict_taint,
                                         kubeconfig_api_address=params.kubeconfig_api_address))
    if not result.ok:
        raise result.failure("apply --dry-run")
    plan = result.dry_run_plan()
    _log_plan(plan)
    return plan


def _log_restore_plan(plan: DryRunPlan) -> None:
    if plan.would_restore:
        log.info("dry-run: no controller runs k0s, so a real apply would restore the archive")
    else:
        log.warn(f"dry-run: k0s is running on {', '.join(plan.running_controllers)}, so a real apply would "
                 "NOT restore the archive (k0sctl skips the restore on a running cluster)")
    log.info("dry-run: --restore-from is not passed to k0sctl's dry run (its restore phase has no dry-run "
             "mode and would restore for real)")


def _restore_possible(ctx: StepContext, cluster: ClusterConfig, params: ApplyParams) -> bool:
    """Whether no controller runs k0s, so that `--restore-from` may be passed (k0sctl's facts, read from a dry
    run). `restore: required` stops here when one does; `restore: auto` goes on without the archive."""
    k0sctl = ctx.k0sctl()
    if not k0sctl.version().at_least(SINCE_DRY_RUN):
        log.warn(f"restore: k0sctl {k0sctl.version()} has no --dry-run, so whether k0s runs cannot be read "
                 "before the apply; --restore-from is passed and the outcome is read afterwards")
        return True
    log.info("restore: asking k0sctl (a dry run) whether k0s runs on a controller")
    running = _plan(ctx, cluster, params).running_controllers
    if not running:
        log.info("restore: no controller runs k0s: the archive will be restored")
        return True
    if params.restore == "required":
        raise ResourceError(f"restore: required, but k0s is already running on {', '.join(running)}, so the "
                            "archive cannot be restored; nothing was changed")
    log.warn(f"restore: NOT restored: k0s is already running on {', '.join(running)}; the config is applied "
             "to the running cluster and the archive is left alone (restore: auto)")
    return False
