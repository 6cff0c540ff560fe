"""Benchmark: what the drill's identity check (SSH host keys, `ssh-keyscan`) costs per drill.

Starts N real sshd servers on loopback (tests.support.sshd), builds the endpoints of a scratch config
naming them, and times `check_identity` against a record of other keys (the passing case: every host
is scanned), for N = 1, 10 and 30 by default; plus one host that does not answer (port 9), whose cost
is ssh-keyscan's timeout (`host_keys.SCAN_TIMEOUT`, 5 s) at most.

Run: ``python bench/bench_drill_identity.py [--hosts 1 10 30]``. Exit status 1 when a result is wrong.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from tests.support.sshd import SshServer

from k0sctl_resource.config.endpoints import host_endpoints
from k0sctl_resource.gitstore.commit_format import BackupFacts
from k0sctl_resource.shared.get_folder import FolderRecord
from k0sctl_resource.shared.host_facts import check_identity

RECORD = FolderRecord("d" * 40, "backup", BackupFacts(cluster="prod", hosts=("192.0.2.10",),
                                                     host_keys=("SHA256:" + "C" * 43,)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, nargs="+", default=[1, 10, 30])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        servers = [stack.enter_context(SshServer(Path(tmp) / f"s{n}", host=f"127.0.1.{n + 1}", port=2222))
                   for n in range(max(args.hosts))]  # one port, as a real cluster's sshd
        for count in args.hosts:
            found = [host_endpoints(i, {"role": "worker", "ssh": {"address": s.host, "port": s.port}})
                     for i, s in enumerate(servers[:count])]
            started = time.perf_counter()
            facts = check_identity(found, RECORD)
            seconds = time.perf_counter() - started
            if facts.get("identity_endpoints_answered") != count:
                print(f"wrong: {facts}")
                return 1
            print(f"identity check, {count} scratch hosts: {seconds:.3f} s")
        silent = [host_endpoints(0, {"role": "worker", "ssh": {"address": "127.0.0.1", "port": 9}})]
        started = time.perf_counter()
        check_identity(silent, RECORD)
        print(f"identity check, 1 host that does not answer: {time.perf_counter() - started:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
