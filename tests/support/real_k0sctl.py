"""The real k0sctl binaries the tests drive: built by scripts/install-k0sctl.sh into its cache (once per
version), skipped outside CI when a prerequisite (Go, the module proxy) is missing."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support import ROOT

INSTALLER = ROOT / "scripts" / "install-k0sctl.sh"

_BINARIES: dict[str, Path] = {}


def _cache_root() -> Path:
    return Path(os.environ.get("K0SCTL_RESOURCE_CACHE") or Path.home() / ".cache" / "k0sctl-resource")


def _reports(path: Path, version: str) -> bool:
    if not os.access(path, os.X_OK):
        return False
    proc = subprocess.run([str(path), "version"], capture_output=True, text=True, timeout=30, check=False)
    return proc.returncode == 0 and proc.stdout.splitlines()[:1] == [f"version: {version}"]


def real_k0sctl(version: str) -> Path:
    """The k0sctl binary of `version` that scripts/install-k0sctl.sh builds (built now when missing)."""
    if version in _BINARIES:
        return _BINARIES[version]
    path = _cache_root() / "k0sctl" / version / "k0sctl"
    if not _reports(path, version):
        proc = subprocess.run(["bash", str(INSTALLER), version], capture_output=True, text=True, timeout=1800,
                              check=False)
        if proc.returncode == 3 and os.environ.get("CI") != "true":  # a prerequisite is missing (no Go, no proxy)
            pytest.skip(f"k0sctl {version} cannot be built here: {proc.stderr.strip().splitlines()[-1:]}")
        assert proc.returncode == 0, f"install-k0sctl.sh {version} failed:\n{proc.stderr[-2000:]}"
        path = Path(proc.stdout.strip().splitlines()[-1])
        assert _reports(path, version), f"{path} does not report version {version}"
    _BINARIES[version] = path
    return path
