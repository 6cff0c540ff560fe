"""`out`: dispatch a put to its command and add the facts every put reports."""

from __future__ import annotations

from pathlib import Path

from k0sctl_resource.concourse.params import (
    ApplyParams,
    BackupParams,
    DrillParams,
    InitParams,
    PingParams,
    ResetParams,
)
from k0sctl_resource.concourse.requests import PutRequest
from k0sctl_resource.concourse.responses import StepResponse
from k0sctl_resource.config.cluster import load_cluster
from k0sctl_resource.config.paths import inside
from k0sctl_resource.runtime import log
from k0sctl_resource.steps.context import StepContext


def _run(request: PutRequest, directory: Path, ctx: StepContext) -> StepResponse:
    params = request.params
    config_path = inside(directory, params.config, "config")
    log.step(f"k0sctl-resource: {params.command} ({ctx.build.describe()})")
    if isinstance(params, InitParams):
        from k0sctl_resource.steps.init import run as init_run

        result = init_run(ctx, params)
        cluster_name = None
    else:
        # k0sctl is handed a private copy of exactly the bytes read here (its --config is a glob pattern)
        cluster = load_cluster(config_path).private_copy(ctx.workspace.dir("config"))
        cluster_name = cluster.name
        if isinstance(params, ApplyParams):
            from k0sctl_resource.steps.apply import run as apply_run

            result = apply_run(ctx, params, cluster, directory)
        elif isinstance(params, ResetParams):
            from k0sctl_resource.steps.reset import run as reset_run

            result = reset_run(ctx, params, cluster)
        elif isinstance(params, BackupParams):
            from k0sctl_resource.steps.backup import run as backup_run

            result = backup_run(ctx, params, cluster)
        elif isinstance(params, PingParams):
            from k0sctl_resource.steps.ping import run as ping_run

            result = ping_run(ctx, params, cluster)
        elif isinstance(params, DrillParams):
            from k0sctl_resource.steps.drill import run as drill_run

            result = drill_run(ctx, params, cluster, directory)
        else:  # pragma: no cover - parse_put_params only builds the classes above
            raise AssertionError(params)
    facts: dict[str, object] = {"command": params.command, "cluster": cluster_name}
    facts.update(result.facts)
    facts.setdefault("k0sctl_version", ctx.k0sctl_version())
    facts["duration_s"] = ctx.elapsed()
    if ctx.build.build_url:
        facts.setdefault("build_url", ctx.build.build_url)
    return StepResponse(result.version, facts)


def run(request: PutRequest, directory: Path) -> StepResponse:
    """The put: its command run in a step context, with the facts every put reports."""
    with StepContext(request.source) as ctx:
        return _run(request, directory, ctx)
