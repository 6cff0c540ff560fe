"""One backup cycle with the REAL k0sctl against a k0s test node: `put backup`, then `get` of it.

    .venv/bin/python bench/bench_backup_cycle.py [--sizes 1,100] [--k0sctl PINNED,v0.28.0] [--passphrase]

The node is the test suite's (tests/support/k0s_node.py); its k0s double pads the etcd snapshot with random
(incompressible) bytes so that `k0s backup` writes an archive of the asked size. Each step's wall time
is split into k0sctl (a timing wrapper around the real binary), git (a timing wrapper around every git
process; the persistent `cat-file --batch` of GitPython counts for its lifetime) and the rest, the
resource's own work (reading back, hashing, encrypting/decrypting, writing). Peak RSS is the largest sum
of VmRSS over the step's process tree (the resource and its children: git, ssh-agent, age; k0sctl is
shown apart), sampled every 20 ms. Needs root (network namespaces).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.k0s_cluster import Cluster, make_cluster
from tests.support.k0s_node import K0sLab
from tests.support.netns import NetnsLab

from k0sctl_resource.k0sctl.versions import PINNED_TEXT

WRAPPER = """#!/bin/sh
# timing wrapper: appends "<name> <seconds>" for each run of the real binary
start=$(date +%s.%N)
"{real}" "$@"
rc=$?
echo "{name} $(echo "$(date +%s.%N) - $start" | bc)" >> "{log}"
exit $rc
"""


@dataclass
class Sample:
    wall: float
    k0sctl: float
    git: float
    peak_rss_mb: float
    peak_k0sctl_mb: float

    @property
    def own(self) -> float:
        return max(0.0, self.wall - self.k0sctl - self.git)


def wrappers(directory: Path, k0sctl: Path, log: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    git = subprocess.run(["sh", "-c", "command -v git"], capture_output=True, text=True, check=True).stdout.strip()
    for name, real in (("k0sctl", k0sctl), ("git", Path(git))):
        path = directory / name
        path.write_text(WRAPPER.format(real=real, name=name, log=log), encoding="utf-8")
        path.chmod(0o755)
    return directory


def _tree_rss(root: int) -> tuple[int, int, dict[str, int]]:
    """(kB of the tree without k0sctl, kB of k0sctl processes, kB by process name) under `root`."""
    parents: dict[int, int] = {}
    names: dict[int, str] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        pid = int(entry.name)
        parents[pid] = int(fields["PPid"].strip())
        names[pid] = fields["Name"].strip()
        rss[pid] = int(fields.get("VmRSS", "0 kB").split()[0])
    tree, todo = {root}, [root]
    while todo:
        current = todo.pop()
        for pid, parent in parents.items():
            if parent == current and pid not in tree:
                tree.add(pid)
                todo.append(pid)
    k0sctl = sum(rss.get(p, 0) for p in tree if names.get(p) == "k0sctl")
    by_name: dict[str, int] = {}
    for p in tree:
        by_name[names.get(p, "?")] = by_name.get(names.get(p, "?"), 0) + rss.get(p, 0)
    return sum(rss.get(p, 0) for p in tree) - k0sctl, k0sctl, by_name


def run_step(cluster: Cluster, args: list[str], request: dict[str, Any], log: Path) -> tuple[Sample, Any]:
    log.write_text("", encoding="utf-8")
    env = cluster.resource.environment()
    argv = [*cluster.resource.argv_prefix, str(Path(sys.executable).parent / "k0sctl-resource"), *args]
    started = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    peaks = [0, 0]
    biggest: dict[str, int] = {}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            own, k0sctl, by_name = _tree_rss(proc.pid)
            peaks[0], peaks[1] = max(peaks[0], own), max(peaks[1], k0sctl)
            for name, kb in by_name.items():
                biggest[name] = max(biggest.get(name, 0), kb)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    out, err = proc.communicate(json.dumps(request).encode())
    wall = time.monotonic() - started
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"{args[0]} failed:\n{err.decode(errors='replace')[-3000:]}")
    times = {"k0sctl": 0.0, "git": 0.0}
    for line in log.read_text(encoding="utf-8").splitlines():
        name, seconds = line.split()
        times[name] += float(seconds)
    top = sorted(biggest.items(), key=lambda item: -item[1])[:3]
    print(f"# {args[0]}: largest peaks by process name: " + ", ".join(f"{n} {kb // 1024} MB" for n, kb in top),
          file=sys.stderr, flush=True)
    return Sample(wall, times["k0sctl"], times["git"], peaks[0] / 1024, peaks[1] / 1024), json.loads(out)


def cycle(version: str, size_mb: int, passphrase: bool, base: Path) -> tuple[Sample, Sample]:
    with NetnsLab() as netns:
        lab = K0sLab(netns, base / "lab")
        cluster = make_cluster(lab, base, version)
        if passphrase:
            cluster.source["encryption"] = {"passphrase": "bench-passphrase-not-a-secret"}
        log = base / "times.log"
        real = cluster.resource.path_prefix[0] / "k0sctl"
        cluster.resource.path_prefix.insert(0, wrappers(base / "wrap", real, log))
        cluster.put("init").expect_ok()
        cluster.put("apply").expect_ok()
        cluster.leader.fault("backup-pad", str(size_mb * 1024 * 1024))
        request = {"source": cluster.source, "params": {"command": "backup", "config": "config/k0sctl.yaml"}}
        backup, answer = run_step(cluster, ["out", str(cluster.build)], request, log)
        (cluster.build / "got").mkdir()
        get, _ = run_step(cluster, ["in", str(cluster.build / "got")],
                          {"source": cluster.source, "version": answer["version"]}, log)
        return backup, get


def row(what: str, s: Sample) -> str:
    share = 100 * s.own / s.wall if s.wall else 0.0
    return (f"| {what} | {s.wall:.1f} s | {s.k0sctl:.1f} s | {s.git:.1f} s | {s.own:.1f} s ({share:.0f}%) | "
            f"{s.peak_rss_mb:.0f} MB | {s.peak_k0sctl_mb:.0f} MB |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,100", help="archive sizes in MB, comma-separated")
    parser.add_argument("--k0sctl", default=f"{PINNED_TEXT},v0.28.0", help="k0sctl versions, comma-separated")
    parser.add_argument("--passphrase", action="store_true", help="encrypt with a passphrase, not a recipient")
    args = parser.parse_args()
    print("| step | wall | k0sctl | git | resource's own | peak RSS (resource tree) | peak RSS k0sctl |")
    print("|---|---|---|---|---|---|---|")
    for version in args.k0sctl.split(","):
        for size in (int(s) for s in args.sizes.split(",")):
            with tempfile.TemporaryDirectory(prefix="bcy-") as tmp:
                backup, get = cycle(version, size, args.passphrase, Path(tmp))
            print(row(f"put backup, {size} MB, k0sctl {version}", backup), flush=True)
            print(row(f"get, {size} MB, k0sctl {version}", get), flush=True)
    os.sync()


if __name__ == "__main__":
    main()
