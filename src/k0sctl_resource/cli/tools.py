"""The CLI tools for tasks and local debugging: `ping`, `kubeconfig`, `fleet-status` and `fleet-vars`."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from k0sctl_resource.concourse.protocol import parse_json
from k0sctl_resource.concourse.runner import report_failure
from k0sctl_resource.config.cluster import load_cluster
from k0sctl_resource.config.models import Source, parse_source, secrets_in
from k0sctl_resource.runtime import log
from k0sctl_resource.runtime.errors import ResourceError
from k0sctl_resource.runtime.redact import REDACT


def _guarded(func: Callable[[], int]) -> int:
    from k0sctl_resource.runtime.lifecycle import guarded

    try:
        with guarded():
            return func()
    except BaseException as exc:
        return report_failure(exc, debug=os.environ.get("K0SCTL_RESOURCE_DEBUG") == "true",
                              hint="set K0SCTL_RESOURCE_DEBUG=true for a traceback")


def ping_tool(config: Path, *, as_json: bool, count: int, timeout: float, traceroute: bool,
              extra_ports: tuple[int, ...]) -> int:
    def body() -> int:
        from k0sctl_resource.ping import PingOptions, probe_cluster
        from k0sctl_resource.ping.report import render_table

        cluster = load_cluster(config)
        report = probe_cluster(cluster, PingOptions(count=count, timeout=timeout, traceroute=traceroute,
                                                    extra_ports=list(extra_ports)))
        if as_json:
            sys.stdout.write(json.dumps(report.to_json(), indent=2) + "\n")
        else:
            sys.stdout.write(render_table(report))
        return 1 if report.unreachable() else 0

    return _guarded(body)


def _load_source(source_file: Path | None) -> Source:
    if source_file is None:
        return Source()
    from k0sctl_resource.config.paths import read_regular

    data = read_regular(source_file, "--source file", 1024 * 1024)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ResourceError(f"--source file {source_file}: not UTF-8 text") from None
    raw = parse_json(text)
    REDACT.add(*secrets_in(raw))  # before validation, as the step runner does
    return parse_source(raw)


def kubeconfig_tool(config: Path, output: Path | None, source_file: Path | None) -> int:
    def body() -> int:
        from k0sctl_resource.k0sctl.kubeconfig import admin_kubeconfig
        from k0sctl_resource.shared.context import StepContext

        source = _load_source(source_file)
        cluster = load_cluster(config)
        with StepContext(source) as ctx:
            private = cluster.private_copy(ctx.workspace.dir("config"))  # --config is a glob pattern to k0sctl
            text = admin_kubeconfig(ctx.k0sctl(), private.path).text
        if output is None:
            sys.stdout.write(text)
        else:
            from k0sctl_resource.runtime.workspace import replace_file

            replace_file(output, text.encode("utf-8"), 0o600)
            log.info(f"kubeconfig written to {output} (mode 0600)")
        return 0

    return _guarded(body)


def fleet_status_tool(clusters_file: Path, *, as_json: bool) -> int:
    def body() -> int:
        from datetime import UTC, datetime

        from k0sctl_resource.config.fleet import load_fleet
        from k0sctl_resource.fleet.report import exit_code, render_table, to_json
        from k0sctl_resource.fleet.status import fleet_status

        fleet = load_fleet(clusters_file)
        now = datetime.now(UTC)
        statuses = fleet_status(fleet, now)
        text = json.dumps(to_json(statuses, now), indent=2) + "\n" if as_json else render_table(statuses)
        sys.stdout.write(REDACT(text))
        return exit_code(statuses)

    return _guarded(body)


def fleet_vars_tool(clusters_file: Path, output: Path, pipeline: Path | None) -> int:
    def body() -> int:
        from k0sctl_resource.config.fleet import load_fleet
        from k0sctl_resource.fleet.vars_files import write_fleet_vars

        write_fleet_vars(load_fleet(clusters_file), clusters_file, output, pipeline)
        return 0

    return _guarded(body)
