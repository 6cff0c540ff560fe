"""put `command: ping`: ICMP, route and SSH/WinRM port reachability of every host of the config."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from k0sctl_resource.concourse.responses import StepResponse
from k0sctl_resource.config.cluster import ClusterConfig
from k0sctl_resource.config.schema import Seconds
from k0sctl_resource.runtime import log
from k0sctl_resource.runtime.errors import ResourceError
from k0sctl_resource.shared.context import StepContext
from k0sctl_resource.shared.latest import branch_version


@dataclass(frozen=True)
class PingParams:
    command: Literal["ping"] = "ping"
    config: str = "config/k0sctl.yaml"
    count: int = 3
    timeout: Seconds = 2.0  # type: ignore[assignment]  # converted by schema.convert when given
    traceroute: bool = True
    fail_on_unreachable: bool = True
    extra_ports: tuple[int, ...] = ()

    def validate(self, path: str) -> None:
        if not 1 <= self.count <= 100:
            raise ResourceError(f"{path}.count: must be between 1 and 100")
        for i, port in enumerate(self.extra_ports):
            if not 0 < port < 65536:
                raise ResourceError(f"{path}.extra_ports[{i}]: not a port number")


def run(ctx: StepContext, params: PingParams, cluster: ClusterConfig, directory: Path) -> StepResponse:
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
