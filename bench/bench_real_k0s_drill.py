"""Restore drills with the REAL k0s controller (real etcd and kube-apiserver) and the real k0sctl, through the
resource: `restore_s` and `total_s` as a drill reports them.

    K0S_BINARY=/path/to/k0s .venv/bin/python bench/bench_real_k0s_drill.py \
        [--k0sctl PINNED,v0.28.0] [--controllers 1] [--runs 2] [--production reachable,unreachable]

Per k0sctl version: production (`k0s-lab`, N controllers) is installed and backed up once, and a get hands the
archive over; then the drill runs `--runs` times onto N other controllers (`k0s-drill`), with production
reachable from the scratch hosts and with it blocked (a `prohibit` route on each scratch host). The nodes are
the real-k0s tier's (tests/support/real_k0s.py): K0S_BINARY is a k0s built with -tags=osusergo,netgo,noembedbins;
etcd and kube-apiserver come from scripts/install-k0s-components.sh. Needs root (network namespaces) and about
650 MB per node.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support import PINNED
from tests.support.k0s_cluster import make_cluster
from tests.support.k0s_node import K0S_VERSION
from tests.support.netns import NetnsLab
from tests.support.real_k0s import RealK0sLab, k0s_binary, why_not_run

SCRATCH = "k0s-drill"


def one_version(version: str, controllers: int, runs: int, modes: list[str]) -> list[tuple[str, dict[str, str]]]:
    binary = k0s_binary()
    assert binary is not None
    results: list[tuple[str, dict[str, str]]] = []
    with tempfile.TemporaryDirectory(prefix="bench-real-k0s-") as tmp, NetnsLab() as netns:
        root = Path(tmp)
        lab = RealK0sLab(netns, root / "lab", binary)
        cluster = make_cluster(lab, root / "cluster", version, roles=("controller",) * controllers)
        cluster.put("init").expect_ok()
        started = time.monotonic()
        cluster.put("apply", timeout=900).expect_ok()
        print(f"k0sctl {version}: production apply ({controllers} controller(s)) {time.monotonic() - started:.1f} s")
        ref = cluster.put("backup").expect_ok().answer["version"]["ref"]
        cluster.get({"ref": ref}, "backup")
        production = list(cluster.nodes)
        scratch = [lab.node("controller") for _ in range(controllers)]
        config = cluster.build / "config" / "scratch.yaml"
        config.write_text("apiVersion: k0sctl.k0sproject.io/v1beta1\nkind: Cluster\n"
                          f"metadata:\n  name: {SCRATCH}\nspec:\n  hosts:\n"
                          + "".join(node.host(binary) for node in scratch)
                          + f"  k0s:\n    version: {K0S_VERSION}\n", encoding="utf-8")
        source = {**cluster.source, "ssh_known_hosts": lab.known_hosts()}
        for mode in modes:
            for node in scratch:
                verb = "add" if mode == "unreachable" else "del"
                for prod in production:
                    node.sh(f"ip route {verb} prohibit {prod.address}/32", check=mode == "unreachable")
            for _ in range(runs):
                run = cluster.put("drill", source=source, config="config/scratch.yaml", restore_from="backup",
                                  confirm=SCRATCH, timeout=1800).expect_ok()
                meta = run.metadata
                print(f"  drill, production {mode}: restore_s {meta['restore_s']} (k0sctl ready after "
                      f"{meta['k0sctl_ready_s']}), total_s {meta['total_s']}, step {meta['duration_s']} s")
                results.append((mode, meta))
        cluster.close()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--k0sctl", default=f"{PINNED},v0.28.0")
    parser.add_argument("--controllers", type=int, default=1)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--production", default="reachable,unreachable")
    args = parser.parse_args()
    reason = why_not_run()
    if reason:
        print(f"bench_real_k0s_drill: cannot run: {reason}", file=sys.stderr)
        return 2
    for version in args.k0sctl.split(","):
        results = one_version(version, args.controllers, args.runs, args.production.split(","))
        for key in ("restore_s", "total_s"):
            values = [float(meta[key]) for _, meta in results]
            print(f"k0sctl {version}, {args.controllers} controller(s): {key} median {statistics.median(values):.1f} "
                  f"(min {min(values):.1f}, max {max(values):.1f}, n={len(values)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
