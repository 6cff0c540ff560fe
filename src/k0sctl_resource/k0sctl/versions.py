"""The k0sctl releases the resource knows, and what one k0sctl command should do as flags of a release:
`command_line` builds only flags the running k0sctl has."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from k0sctl_resource.config.models import K0sctlOptions
from k0sctl_resource.runtime.errors import ResourceError

K0sctlCommand = Literal["apply", "backup", "reset", "kubeconfig", "logs"]


@dataclass(frozen=True, order=True)
class K0sctlVersion:
    major: int
    minor: int
    patch: int
    known: bool = field(default=True, compare=False)

    @classmethod
    def parse(cls, text: str) -> K0sctlVersion:
        """Read `version: v0.28.0` (the output of `k0sctl version`) or a bare `v0.28.0`."""
        match = re.search(r"v?(\d+)\.(\d+)\.(\d+)", text)
        if match is None or match.group(0).lstrip("v") == "0.0.0":
            # A build without version information (`(devel)` or 0.0.0): assume the newest flags.
            return cls(NEWEST.major, NEWEST.minor, NEWEST.patch, known=False)
        return cls(int(match.group(1)), int(match.group(2)), int(match.group(3)))

    def at_least(self, release: K0sctlVersion) -> bool:
        return self >= release

    @property
    def release_line(self) -> str:
        """`v0.17` for v0.17.x."""
        return f"v{self.major}.{self.minor}"

    def __str__(self) -> str:
        return f"v{self.major}.{self.minor}.{self.patch}" if self.known else "unknown"


# The k0sctl release the image ships, in the one file that the image build, scripts/install-k0sctl.sh, the tests
# and Renovate read: its flags are assumed for a build that reports no version.
PINNED_FILE = Path(__file__).with_name("k0sctl.version")
PINNED_TEXT = PINNED_FILE.read_text(encoding="utf-8").strip()
NEWEST = PINNED = K0sctlVersion.parse(PINNED_TEXT)

# Flags by the first k0sctl release that has them.
SINCE_CONCURRENCY = K0sctlVersion(0, 15, 0)
SINCE_DRY_RUN = K0sctlVersion(0, 17, 0)
SINCE_BACKUP_OUTPUT = K0sctlVersion(0, 24, 0)
SINCE_KUBECONFIG_API_ADDRESS = K0sctlVersion(0, 14, 0)  # apply --kubeconfig-api-address
SINCE_FORCE = K0sctlVersion(0, 15, 5)  # apply --force
SINCE_EVICT_TAINT = K0sctlVersion(0, 24, 0)  # apply --evict-taint
# MODELLED from the v0.34.0 release notes (not built here): `k0sctl logs` (k0sctl#1290), and the refusal of a restore
# onto a running cluster (k0sctl#1264).
SINCE_LOGS = K0sctlVersion(0, 34, 0)
# --disable-telemetry/--disable-upgrade-check existed only before v0.21, and not on every command of every
# release (v0.20 rejects --disable-upgrade-check on backup and kubeconfig): they are never passed; the
# DISABLE_TELEMETRY/DISABLE_UPGRADE_CHECK environment variables do the same for old releases.


@dataclass(frozen=True)
class Invocation:
    """What one k0sctl command should do; `command_line` turns it into flags for a version."""

    command: K0sctlCommand
    config: Path
    dry_run: bool = False
    no_wait: bool = False
    no_drain: bool = False
    restore_from: Path | None = None
    output: Path | None = None  # backup archive path (v0.24+)
    force: bool = False  # apply: go on past a host that fails its checks (a stopped node)
    evict_taint: str | None = None  # apply: the taint put on a node before it is drained
    kubeconfig_api_address: str | None = None  # apply: the API address of the kubeconfig k0sctl writes


def _needs(version: K0sctlVersion, since: K0sctlVersion, param: str) -> None:
    if not version.at_least(since):
        raise ResourceError(f"{param} needs k0sctl {since.release_line}.{since.patch} or newer (found {version})")


def command_line(version: K0sctlVersion, inv: Invocation, options: K0sctlOptions) -> list[str]:
    """The argv (without the binary) for `inv`, using only flags `version` has."""
    argv: list[str] = [inv.command, "--config", str(inv.config)]
    if inv.command == "kubeconfig":
        return argv  # its output is the kubeconfig itself: no --debug/--trace lines may mix into it
    if inv.command == "logs":
        _needs(version, SINCE_LOGS, "k0sctl logs")
        return argv  # its flags are not known here (modelled): only --config
    if options.debug:
        argv.append("--debug")
    if options.trace:
        argv.append("--trace")
    if options.concurrency is not None and version.at_least(SINCE_CONCURRENCY):
        argv += ["--concurrency", str(options.concurrency)]
    if inv.command == "apply":
        if inv.dry_run:
            if not version.at_least(SINCE_DRY_RUN):
                raise ResourceError(f"dry_run needs k0sctl {SINCE_DRY_RUN.release_line} or newer (found {version})")
            argv.append("--dry-run")
        if inv.no_wait:
            argv.append("--no-wait")
        if inv.no_drain:
            argv.append("--no-drain")
        if inv.restore_from is not None:
            argv += ["--restore-from", str(inv.restore_from)]
        if inv.force:
            _needs(version, SINCE_FORCE, "params.force")
            argv.append("--force")
        if inv.evict_taint is not None:
            _needs(version, SINCE_EVICT_TAINT, "params.evict_taint")
            argv += ["--evict-taint", inv.evict_taint]
        if inv.kubeconfig_api_address is not None:
            _needs(version, SINCE_KUBECONFIG_API_ADDRESS, "params.kubeconfig_api_address")
            argv += ["--kubeconfig-api-address", inv.kubeconfig_api_address]
    elif inv.command == "backup":
        if inv.output is not None and version.at_least(SINCE_BACKUP_OUTPUT):
            argv += ["--output", str(inv.output)]
    elif inv.command == "reset":
        argv.append("--force")
    return argv
