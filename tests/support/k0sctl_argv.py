"""Every k0sctl command line the resource can build, for the tests that hold them against real k0sctl
(`tests/contract/test_k0sctl_contract.py`) and against the flag table (`tests/unit/test_k0sctl_runner.py`)."""

from __future__ import annotations

from pathlib import Path

from k0sctl_resource.config.models import K0sctlOptions
from k0sctl_resource.k0sctl.versions import (
    SINCE_DRY_RUN,
    SINCE_EVICT_TAINT,
    SINCE_FORCE,
    SINCE_KUBECONFIG_API_ADDRESS,
    Invocation,
    K0sctlVersion,
    command_line,
)


def command_lines_for_contract(version: K0sctlVersion, config: Path, workdir: Path) -> list[list[str]]:
    """Every argv the resource can build for `version`: each command with each option combination."""
    archive = workdir / "restore.tar.gz"
    out = workdir / "backup.tar.gz"
    option_sets = [
        K0sctlOptions(),
        K0sctlOptions(debug=True, trace=True),
        K0sctlOptions(concurrency=3),
        K0sctlOptions(debug=True, concurrency=1),
    ]
    invocations = [
        Invocation("apply", config),
        Invocation("apply", config, no_wait=True, no_drain=True),
        Invocation("apply", config, restore_from=archive),
        Invocation("apply", config, restore_from=archive, no_wait=True, no_drain=True),
        Invocation("backup", config, output=out),
        Invocation("reset", config),
        Invocation("kubeconfig", config),
    ]
    if version.at_least(SINCE_DRY_RUN):
        invocations += [
            Invocation("apply", config, dry_run=True),
            Invocation("apply", config, dry_run=True, restore_from=archive, no_wait=True, no_drain=True),
        ]
    if version.at_least(SINCE_FORCE):
        invocations.append(Invocation("apply", config, force=True))
    if version.at_least(SINCE_KUBECONFIG_API_ADDRESS):
        invocations.append(Invocation("apply", config, kubeconfig_api_address="https://api.example.test:6443"))
    if version.at_least(SINCE_EVICT_TAINT):
        invocations.append(Invocation("apply", config, evict_taint="k0sctl.k0sproject.io/evict=true:NoExecute",
                                      force=True))
    lines: list[list[str]] = []
    for inv in invocations:
        for options in option_sets:
            argv = command_line(version, inv, options)
            if argv not in lines:
                lines.append(argv)
    return lines
