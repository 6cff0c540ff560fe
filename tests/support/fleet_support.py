"""A fleet for tests and the benchmark: one backup repository with a branch per cluster (backups written
by `build_history`, drill records by the drill record's own formatter), clusters.yml, and a server that
accepts connections and never answers (a hanging git server)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from k0sctl_resource.gitstore.drill_record import DRILLS_PREFIX, DrillRecord, format_drill_record
from tests.support.backup_support import build_history, git


@dataclass(frozen=True)
class ClusterSpec:
    """One cluster's branch: `backups` backup commits, the newest `backup_age` old (None: no branch at
    all), then `drills`: (result, age, restore_s) oldest first."""

    name: str
    backups: int = 2
    backup_age: timedelta | None = timedelta(hours=1)
    drills: tuple[tuple[str, timedelta, float], ...] = (("passed", timedelta(days=1), 42.5),)

    @property
    def branch(self) -> str:
        return f"k0sctl-backup-{self.name}"


def add_drills(repo: Path, branch: str, drills: tuple[tuple[str, timedelta, float], ...],
               now: datetime) -> None:
    """Drill records on `k0sctl-drills/<branch>`, one empty-tree commit each, oldest first."""
    empty = git(repo, "hash-object", "-t", "tree", "-w", "--stdin", input=b"")
    parent: str | None = None
    for result, age, restore_s in drills:
        record = DrillRecord(result="passed" if result == "passed" else "failed", drilled_ref="b" * 40,
                             drilled_archive=f"{branch}.tar.gz.age", restore_s=restore_s, total_s=restore_s + 60,
                             drilled_at=(now - age).strftime("%Y-%m-%dT%H:%M:%SZ"), source_cluster=branch,
                             scratch_cluster=f"{branch}-drill", reason=None if result == "passed" else "API not ready")
        args = ["commit-tree", empty, "-m", format_drill_record(record)]
        if parent:
            args[2:2] = ["-p", parent]
        parent = git(repo, *args)
    if parent:
        git(repo, "update-ref", f"refs/heads/{DRILLS_PREFIX}{branch}", parent)


def build_fleet(repo: Path, specs: list[ClusterSpec], now: datetime | None = None) -> None:
    """Every spec's branch and drill branch in the bare `repo`."""
    moment = now or datetime.now(UTC)
    for spec in specs:
        if spec.backup_age is None:
            continue
        start = moment - spec.backup_age - timedelta(minutes=spec.backups - 1)
        build_history(repo, spec.backups, 64, cluster=spec.name, branch=spec.branch, start=start)
        add_drills(repo, spec.branch, spec.drills, moment)


def clusters_yml(path: Path, specs: list[ClusterSpec], uri: str, *, known_hosts: str = "",
                 timeout: str = "20s", extra: list[dict[str, Any]] | None = None) -> Path:
    doc = {
        "defaults": {"max_age": "26h", "max_drill_age": "8d", "timeout": timeout,
                     "vars": {"backup_repo_uri": uri, "cluster_ssh_known_hosts": known_hosts}},
        "clusters": [{"name": s.name, "config": f"clusters/{s.name}/k0sctl.yaml"} for s in specs] + (extra or []),
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


@contextlib.contextmanager
def hanging_server() -> Iterator[int]:
    """A TCP server on 127.0.0.1 that accepts every connection and never sends a byte; its port."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError):
                conn, _ = listener.accept()
                accepted.append(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        for conn in accepted:
            conn.close()
        thread.join(timeout=5)


def run_fleet_status(clusters: Path, *, env: dict[str, str] | None = None, json_out: bool = True,
                     timeout: float = 300) -> subprocess.CompletedProcess[str]:
    from tests.support.resource import executable

    args = [executable(), "fleet-status", "-f", str(clusters), *(["--json"] if json_out else [])]
    full = {k: v for k, v in os.environ.items() if not k.startswith("K0SCTL_FLEET_")}
    full.update(env or {})
    return subprocess.run(args, env=full, capture_output=True, text=True, timeout=timeout, check=False,
                          stdin=subprocess.DEVNULL)
