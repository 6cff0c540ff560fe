"""Benchmark: does probing many hosts cost about one host's timeout path?

Builds a network-namespace lab (needs root): a client, a router, 17 answering addresses on four
node namespaces (sshd stand-ins listening on tcp/22) and 3 addresses where no host answers. In the
same run, alternately, it times ``probe_cluster`` (inside the client namespace) for

* one host that does not answer (one timeout path: echoes, route trace and TCP connect all wait
  for the timeout), and
* all 20 hosts (3 of them not answering),

and prints both medians and their ratio (target: <= 1.5). Run: ``python bench/bench_ping.py``.
Exit status 1 when the target is missed or the results are wrong, 77 when namespaces are
unavailable.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.netns import NetnsLab, netns_unavailable_reason
from tests.system.test_ping import (
    CLIENT,
    NodeSpec,
    build_ping_lab,
    cluster_yaml,
    run_probe,
    ssh_host,
)

ANSWERING = [f"198.51.100.{n}" for n in range(10, 27)]  # 17 hosts
SILENT = ["198.51.100.90", "198.51.100.91", "198.51.100.92"]  # 3 hosts, nobody there
TARGET_RATIO = 1.5


def _config(addresses: list[str]) -> str:
    roles = ["controller"] * 3 + ["worker"] * (len(addresses) - 3)
    return cluster_yaml(*(ssh_host(a, role) for a, role in zip(addresses, roles, strict=False)))


def _check(result: dict[str, Any], reachable: int, unreachable: int) -> None:
    summary = result["report"]["summary"]
    if summary["reachable"] != reachable or summary["unreachable"] != unreachable:
        raise SystemExit(f"unexpected result: {summary} (wanted {reachable} reachable, "
                         f"{unreachable} unreachable)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-traceroute", action="store_true")
    args = parser.parse_args()
    reason = netns_unavailable_reason()
    if reason is not None:
        print(f"skipped: network namespaces unavailable: {reason}", file=sys.stderr)
        return 77
    options = {"count": args.count, "timeout": args.timeout, "traceroute": not args.no_traceroute}
    hosts = ANSWERING[:9] + SILENT[:1] + ANSWERING[9:] + SILENT[1:]
    groups = [ANSWERING[i::4] for i in range(4)]
    singles: list[float] = []
    fulls: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-ping-") as tmp, NetnsLab() as lab:
        ping_lab = build_ping_lab(lab, [NodeSpec(f"node{i}", g, [22]) for i, g in enumerate(groups)],
                                  Path(tmp))
        client = ping_lab.clients["client"]
        warm = run_probe(client, _config(ANSWERING[:1]), {**options, "timeout": 0.5})  # ARP, caches
        _check(warm, 1, 0)
        last: dict[str, Any] = {}
        for _ in range(args.repeats):
            single = run_probe(client, _config(SILENT[:1]), options)
            _check(single, 0, 1)
            singles.append(single["wall_s"])
            full = run_probe(client, _config(hosts), options)
            _check(full, 17, 3)
            fulls.append(full["wall_s"])
            last = full
        conns = sum(len(ping_lab.connections(f"node{i}")) for i in range(4))
    one = statistics.median(singles)
    many = statistics.median(fulls)
    ratio = many / one
    stats = last["report"]["stats"]
    print(f"ping benchmark: count={args.count} timeout={args.timeout:g}s traceroute={not args.no_traceroute} "
          f"icmp={last['report']['icmp_mode']} repeats={args.repeats}")
    print(f"  one silent host (timeout path):   median {one:.3f}s   runs {', '.join(f'{s:.3f}' for s in singles)}")
    print(f"  20 hosts (17 answer, 3 silent):   median {many:.3f}s   runs {', '.join(f'{s:.3f}' for s in fulls)}")
    print(f"  ratio 20 hosts / one timeout path: {ratio:.2f} (target <= {TARGET_RATIO})")
    print(f"  per 20-host run: {stats['icmp_requests']} ICMP requests, {stats['tcp_connects']} TCP connects; "
          f"listeners saw {conns} connects in all (client {CLIENT})")
    if ratio > TARGET_RATIO:
        print("  TARGET MISSED", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
