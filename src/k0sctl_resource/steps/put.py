"""`out`: dispatch a put to its command (`k0sctl_resource.commands`) and add the facts every put reports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from k0sctl_resource.commands import COMMANDS, PutParams, parse_params
from k0sctl_resource.concourse.requests import PutRequest, parse_put
from k0sctl_resource.concourse.responses import StepResponse
from k0sctl_resource.config.cluster import load_cluster
from k0sctl_resource.config.paths import inside
from k0sctl_resource.runtime import log
from k0sctl_resource.shared.context import StepContext


def parse(raw: Any) -> PutRequest[PutParams]:
    """The put's request, its params typed by their command."""
    return parse_put(raw, parse_params)


def _run(request: PutRequest[PutParams], directory: Path, ctx: StepContext) -> StepResponse:
    params = request.params
    config_path = inside(directory, params.config, "config")
    log.step(f"k0sctl-resource: {params.command} ({ctx.build.describe()})")
    info = COMMANDS[params.command]
    # k0sctl is handed a private copy of exactly the bytes read here (its --config is a glob pattern)
    cluster = load_cluster(config_path).private_copy(ctx.workspace.dir("config")) if info.needs_cluster else None
    result = info.run()(ctx, params, cluster, directory)
    facts: dict[str, object] = {"command": params.command, "cluster": cluster.name if cluster else None}
    facts.update(result.facts)
    facts.setdefault("k0sctl_version", ctx.k0sctl_version())
    facts["duration_s"] = ctx.elapsed()
    if ctx.build.build_url:
        facts.setdefault("build_url", ctx.build.build_url)
    return StepResponse(result.version, facts)


def run(request: PutRequest[PutParams], directory: Path) -> StepResponse:
    """The put: its command run in a step context, with the facts every put reports."""
    with StepContext(request.source) as ctx:
        return _run(request, directory, ctx)
