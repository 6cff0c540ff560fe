"""Benchmark: the drill guard with 3,000 hosts a side stays under a second.

A backup record of 3,000 production hosts (hosts, endpoints and addresses) and a scratch config of
3,000 hosts in mixed forms (plain addresses in inet_aton and IPv6 spellings, options.HostName/Port,
ProxyJump lists, bastions with their own options, two-level bastion chains, winRM behind a bastion),
none of them production: `check_not_production` computes every host's endpoints and compares both
sides. Reading the YAML (which every put does once, guard or not) is timed apart. Names are not resolved here (the
resolver's own bound, 5 s, is the cost of a config full of names that do not answer). A second run
hides one production address at the end of the scratch list, which must be refused.

Run: ``python bench/bench_drill_guard.py [--hosts 3000] [--runs 5]``. Prints the median and the worst
run; exit status 1 when the worst run takes a second or more, or a result is wrong.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from k0sctl_resource.config.cluster import CLUSTER_API, ClusterConfig, parse_cluster
from k0sctl_resource.config.spelling import canonical_host
from k0sctl_resource.gitstore.commit_format import BackupFacts
from k0sctl_resource.runtime.errors import ResourceError
from k0sctl_resource.shared.drill_guard import check_not_production
from k0sctl_resource.shared.get_folder import FolderRecord

TARGET_S = 1.0


def no_resolver(names: Any) -> dict[str, frozenset[str]]:
    return {}


def production(count: int) -> FolderRecord:
    base = int(ipaddress.IPv4Address("10.0.0.0"))
    hosts = tuple(str(ipaddress.IPv4Address(base + n)) for n in range(count))
    return FolderRecord("c" * 40, "backup", BackupFacts(cluster="prod", hosts=hosts, endpoints=hosts,
                                                        addresses=hosts[: count // 2]))


def scratch_entry(n: int) -> dict[str, Any]:
    ip = ipaddress.IPv4Address(int(ipaddress.IPv4Address("172.16.0.0")) + n)
    forms: list[dict[str, Any]] = [
        {"ssh": {"address": str(ip)}},
        {"ssh": {"address": str(int(ip)), "port": 2222}},
        {"ssh": {"address": f"::ffff:{ip}"}},
        {"ssh": {"address": f"s{n}.example.test", "options": {"HostName": str(ip), "Port": 2200}}},
        {"ssh": {"address": str(ip), "options": {"ProxyJump": f"root@{ip}:2201,jump{n % 7}.example.test"}}},
        {"ssh": {"address": str(ip), "bastion": {"address": f"b{n}.example.test", "options": {"HostName": str(ip)}}}},
        {"ssh": {"address": str(ip), "bastion": {"address": f"b{n}.example.test", "bastion": {"address": str(ip)}}}},
        {"winRM": {"address": str(ip), "bastion": {"address": str(ip), "port": 22}}},
    ]
    return {"role": "worker", **forms[n % len(forms)]}


def config_text(count: int, hidden: str | None = None) -> str:
    items = [scratch_entry(n) for n in range(count)]
    if hidden is not None:
        items[-1] = {"role": "worker", "ssh": {"address": "last.example.test", "options": {"HostName": hidden}}}
    return json.dumps({"apiVersion": CLUSTER_API, "kind": "Cluster", "metadata": {"name": "scratch"},
                       "spec": {"hosts": items}})


def timed(config: ClusterConfig, record: FolderRecord) -> tuple[float, str | None]:
    canonical_host.cache_clear()  # every run cold
    started = time.perf_counter()
    try:
        check_not_production(config, record, resolve=no_resolver)
        refused = None
    except ResourceError as exc:
        refused = exc.message
    return time.perf_counter() - started, refused


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    record = production(args.hosts)
    started = time.perf_counter()
    clean = parse_cluster(config_text(args.hosts), Path("scratch.yaml"))
    parse_s = time.perf_counter() - started
    hiding = parse_cluster(config_text(args.hosts, hidden=str(int(ipaddress.IPv4Address("10.0.0.7")))), Path("s.yaml"))
    passes, refusals = [], []
    for _ in range(args.runs):
        seconds, refused = timed(clean, record)
        if refused is not None:
            print(f"wrong: a scratch config without production hosts was refused: {refused}")
            return 1
        passes.append(seconds)
        seconds, refused = timed(hiding, record)
        if refused is None or f"spec.hosts[{args.hosts - 1}].ssh.options.HostName" not in refused:
            print(f"wrong: the hidden production host was not refused: {refused}")
            return 1
        refusals.append(seconds)
    worst = max(passes + refusals)
    print(f"drill guard, {args.hosts} hosts a side: passing config median {statistics.median(passes):.3f} s, "
          f"refused config median {statistics.median(refusals):.3f} s, worst {worst:.3f} s (target < {TARGET_S} s); "
          f"reading the {args.hosts}-host YAML itself: {parse_s:.3f} s")
    return 0 if worst < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
