"""put `command: ping`: ICMP, route and SSH/WinRM port reachability of every host of the config."""

from __future__ import annotations

from k0sctl_resource.concourse.params import PingParams
from k0sctl_resource.concourse.responses import StepResponse
from k0sctl_resource.config.cluster import ClusterConfig
from k0sctl_resource.runtime import log
from k0sctl_resource.runtime.errors import ResourceError
from k0sctl_resource.steps.context import StepContext
from k0sctl_resource.steps.latest import branch_version


def run(ctx: StepContext, params: PingParams, cluster: ClusterConfig) -> StepResponse:
    from k0sctl_resource.ping import PingOptions, probe_cluster
    from k0sctl_resource.ping.report import metadata_facts, render_table

    options = PingOptions(count=params.count, timeout=float(params.timeout), traceroute=params.traceroute,
                          extra_ports=list(params.extra_ports))
    report = probe_cluster(cluster, options)
    log.write(render_table(report))
    facts: dict[str, object] = dict(metadata_facts(report))
    down = report.unreachable()
    if down and params.fail_on_unreachable:
        raise ResourceError(f"{len(down)} of {len(report.hosts)} hosts unreachable: "
                            + "; ".join(h.describe() for h in down))
    # After the probe, so that its report is shown even when the backup branch cannot be read (which fails
    # the put: ping prints a commit of the branch like every put: README, "Versions").
    return StepResponse(branch_version(ctx), facts)
