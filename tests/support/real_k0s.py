"""The real-k0s tier: k0s test nodes (tests/support/k0s_node.py) that run the REAL k0s controller, with real etcd
and kube-apiserver, driven by the real k0sctl through the resource.

What it takes:

* ``K0S_BINARY``: a k0s built without its embedded binaries (``-tags=osusergo,netgo,noembedbins``, cgo on), the
  version the configs pin (v1.31.2+k0s.0). No package registry reachable here serves k0s; build it from its
  source tree (see docs/performance.md or the closing note of the drill work);
* etcd and kube-apiserver from ``scripts/install-k0s-components.sh`` (cached by version), bound over the nodes'
  ``/usr/local/sbin``: k0s looks in ``<dataDir>/bin``, then on PATH, and ``reset`` deletes the data directory;
* role ``controller`` with ``--disable-components=konnectivity-server,kube-scheduler,kube-controller-manager``
  (no kubelet, no containerd), a 400 MB ``/usr/local/bin`` (k0s is about 130 MB; v0.28.0 briefly holds two
  copies), and the fake systemctl of tests/support/k0s_real/ that really starts the unit's ExecStart.

The tier is marked ``realk0s`` and kept out of the default run: it runs with ``-m realk0s``. Whenever its tests
are not run, the session says so in one line, with the reason (never a silent skip).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.k0s_node import K0sLab
from tests.support.netns import NetnsLab
from tests.support.node import HostGuard, require_node_support

MARKER = "realk0s"
REPO = Path(__file__).resolve().parents[2]
SYSTEMCTL = Path(__file__).resolve().parent / "k0s_real" / "systemctl"
INSTALL_FLAGS = "--disable-components=konnectivity-server,kube-scheduler,kube-controller-manager"
BIN_SIZE = "400m"


def k0s_binary() -> Path | None:
    given = os.environ.get("K0S_BINARY", "")
    return Path(given) if given else None


_FROM_WORKERS: set[str] = set()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist's controller: keep the line a worker gave (every worker collects the same tests)."""
    line = getattr(node, "workeroutput", {}).get(MARKER)
    if isinstance(line, str):
        _FROM_WORKERS.add(line)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in sorted(_FROM_WORKERS):
        terminalreporter.write_line(line)


def why_not_run() -> str | None:
    """Why the tier cannot run here, or None."""
    binary = k0s_binary()
    if binary is None:
        return "K0S_BINARY is not set (a k0s v1.31.2+k0s.0 built with -tags=osusergo,netgo,noembedbins)"
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        return f"K0S_BINARY={binary} is not an executable file"
    return None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}: runs the real k0s controller on test nodes (slow; -m {MARKER})")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tier = [item for item in items if item.get_closest_marker(MARKER)]
    if not tier:
        return
    asked = MARKER in (config.getoption("markexpr") or "")
    reason = why_not_run() if asked else f"run them with -m {MARKER} and K0S_BINARY set"
    if reason is None:
        return
    items[:] = [item for item in items if not item.get_closest_marker(MARKER)]
    config.hook.pytest_deselected(items=tier)
    line = f"{MARKER}: {len(tier)} tests of the real-k0s tier not run: {reason}"
    worker_output = getattr(config, "workeroutput", None)
    if worker_output is not None:  # an xdist worker: its terminal is not shown; the controller says it
        worker_output[MARKER] = line
    elif (reporter := config.pluginmanager.get_plugin("terminalreporter")) is not None:
        reporter.write_line(line)
    if asked and os.environ.get("CI") == "true":
        raise pytest.UsageError(line)


def components(root: Path) -> Path:
    """A directory holding etcd and kube-apiserver (hard links to the cached builds), for /usr/local/sbin."""
    proc = subprocess.run(["bash", str(REPO / "scripts" / "install-k0s-components.sh")], capture_output=True,
                          text=True, check=False, timeout=3600)
    if proc.returncode != 0:
        pytest.fail(f"scripts/install-k0s-components.sh failed (exit {proc.returncode}): {proc.stderr[-600:]}")
    sbin = root / "sbin"
    sbin.mkdir(parents=True)
    for built in map(Path, proc.stdout.split()):
        try:
            os.link(built, sbin / built.name)
        except OSError:
            subprocess.run(["cp", built, sbin / built.name], check=True)
    return sbin


class RealK0sLab(K0sLab):
    def __init__(self, lab: NetnsLab, root: Path, binary: Path) -> None:
        super().__init__(lab, root)
        self.sbin = components(root)
        self.k0s_binary = binary
        self.host_extra = f"      installFlags:\n        - {INSTALL_FLAGS}\n"

    def node_args(self) -> list[str]:
        return [str(SYSTEMCTL), BIN_SIZE, str(self.sbin)]


@pytest.fixture
def real_k0s_lab(tmp_path: Path) -> Iterator[RealK0sLab]:
    """Namespaces for real k0s nodes (add them with `.node("controller")`); the machine is checked unchanged."""
    require_node_support()
    binary = k0s_binary()
    assert binary is not None, why_not_run()
    guard = HostGuard()
    with NetnsLab() as lab:
        yield RealK0sLab(lab, tmp_path / "k0s-lab", binary)
    guard.check()
