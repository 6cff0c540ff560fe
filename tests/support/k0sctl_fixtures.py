"""Tests that need k0sctl itself: real binaries built by scripts/install-k0sctl.sh, the double.

- `real_k0sctl(version)` / `real_k0sctls(versions)`: the real k0sctl builds, the one way the tests find
  them. The install script runs once per session for the versions not yet seen and reuses its cache
  (~/.cache/k0sctl-resource or $K0SCTL_RESOURCE_CACHE), so only the first session builds. Without Go or
  the module proxy the calling test skips, naming the reason; under CI=true it fails (tests/support/tools.py).
- `k0sctl_binaries` (session): {version: path} of real k0sctl builds, one per version in
  $K0SCTL_CONTRACT_VERSIONS (default: the pinned release and v0.28.0).
- `k0sctl_binary` (session): the real k0sctl of the pinned release.
- `k0sctl_double_bin` (session): the path of the k0sctl test double (tests/support/k0sctl_double/k0sctl).
- `k0sctl_env` (function): an environment in which k0sctl (real or double) runs without touching the
  user's home or cache: fresh HOME and XDG_CACHE_HOME under tmp_path, telemetry and upgrade checks off,
  and no DEBUG/TRACE/DRY_RUN/K0SCTL_DOUBLE_* leaking in from the caller.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support import DOUBLE, PINNED, ROOT
from tests.support.tools import unavailable

INSTALL_SCRIPT = ROOT / "scripts" / "install-k0sctl.sh"
DEFAULT_VERSION = PINNED
EXIT_PREREQUISITE_MISSING = 3  # install-k0sctl.sh: no Go, no git, or no module proxy
INSTALL_TIMEOUT_S = 1800


def contract_versions() -> list[str]:
    """The real k0sctl versions the contract tests build and check (collection time)."""
    text = os.environ.get("K0SCTL_CONTRACT_VERSIONS", f"{DEFAULT_VERSION} v0.28.0")
    return text.split()


_BINARIES: dict[str, Path] = {}  # version -> path, built (or found) once per session


def _reports(path: Path, version: str) -> bool:
    if not os.access(path, os.X_OK):
        return False
    proc = subprocess.run([str(path), "version"], capture_output=True, text=True, timeout=30, check=False)
    return proc.returncode == 0 and proc.stdout.splitlines()[:1] == [f"version: {version}"]


def _install(versions: list[str]) -> list[Path]:
    """Run scripts/install-k0sctl.sh for `versions`: their paths, in order, each checked to report its version."""
    try:
        proc = subprocess.run(["bash", str(INSTALL_SCRIPT), *versions], capture_output=True, text=True,
                              timeout=INSTALL_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"scripts/install-k0sctl.sh {' '.join(versions)} did not finish in {INSTALL_TIMEOUT_S}s")
    notes = "\n".join(line for line in proc.stderr.splitlines() if line.startswith("install-k0sctl:"))
    if proc.returncode == EXIT_PREREQUISITE_MISSING:
        unavailable(f"real k0sctl cannot be built here: {notes or 'install-k0sctl.sh reported a missing prerequisite'}")
    if proc.returncode != 0:
        pytest.fail(f"scripts/install-k0sctl.sh failed (exit {proc.returncode}):\n{notes or proc.stderr[-3000:]}",
                    pytrace=False)
    paths = [Path(line) for line in proc.stdout.splitlines() if line.strip()]
    assert len(paths) == len(versions), proc.stdout
    for version, path in zip(versions, paths, strict=True):
        assert _reports(path, version), f"{path} does not report version {version}"
    return paths


def real_k0sctls(versions: list[str]) -> dict[str, Path]:
    """{version: path} of the real k0sctl builds of `versions` (built now when missing)."""
    missing = [version for version in dict.fromkeys(versions) if version not in _BINARIES]
    if missing:
        _BINARIES.update(zip(missing, _install(missing), strict=True))
    return {version: _BINARIES[version] for version in versions}


def real_k0sctl(version: str) -> Path:
    """The real k0sctl binary of `version` (built now when missing)."""
    return real_k0sctls([version])[version]


@pytest.fixture(scope="session")
def k0sctl_binaries() -> dict[str, Path]:
    return real_k0sctls(contract_versions())


@pytest.fixture(scope="session")
def k0sctl_binary(k0sctl_binaries: dict[str, Path]) -> Path:
    return k0sctl_binaries.get(DEFAULT_VERSION) or next(iter(k0sctl_binaries.values()))


@pytest.fixture(scope="session")
def k0sctl_double_bin() -> Path:
    assert os.access(DOUBLE, os.X_OK), f"{DOUBLE} must be executable"
    return DOUBLE


@pytest.fixture
def k0sctl_env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "k0sctl-home"
    cache = tmp_path / "k0sctl-cache"
    home.mkdir(exist_ok=True)
    cache.mkdir(exist_ok=True)
    dropped = ("DEBUG", "TRACE", "DRY_RUN", "SSH_AUTH_SOCK", "XDG_CACHE_HOME")
    env = {k: v for k, v in os.environ.items() if k not in dropped and not k.startswith("K0SCTL_DOUBLE")}
    env.update(HOME=str(home), XDG_CACHE_HOME=str(cache), DISABLE_TELEMETRY="true", DISABLE_UPGRADE_CHECK="true",
               LC_ALL="C")
    return env
