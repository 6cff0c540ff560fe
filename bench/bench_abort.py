"""Times of a Concourse abort with the REAL k0sctl: from SIGTERM to "no secret left" and to the step's exit.

    .venv/bin/python bench/bench_abort.py [--repeat 3] [--k0sctl VERSION]

Plays Concourse's runtime as the tests do (SIGTERM, SIGKILL 10 s later if the step is still there) on a
k0s test node (tests/support/k0s_node.py) whose sshd is SIGSTOPped while k0sctl waits on it:

- apply: a re-apply, the node's sshd stopped once k0sctl runs;
- backup: `k0s backup` hangs on the node, then its sshd is stopped;
- drill: the scratch node's sshd stopped once k0sctl runs (the drill's reset or apply);
- get: `decrypt: true` of a passphrase archive, aborted while scrypt runs (no k0sctl in a get).

"No secret left" is the first moment with no ssh-agent of the step and no private directory in its
TMPDIR. Needs root (network namespaces).
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.steps.test_abort import RunningStep, wait_for
from tests.steps.test_abort_grace import (
    PASSPHRASE,
    Abort,
    decrypting,
    k0sctl_pid,
    pid_alive,
    play_concourse,
)
from tests.support.k0s_cluster import make_cluster
from tests.support.k0s_node import K0sLab
from tests.support.netns import NetnsLab
from tests.system.test_real_k0sctl_abort import sshd_stopped, start

from k0sctl_resource.k0sctl.versions import PINNED_TEXT


def one(command: str, version: str, base: Path) -> Abort:
    with NetnsLab() as netns:
        cluster = make_cluster(K0sLab(netns, base / "lab"), base, version)
        if command == "get":
            cluster.source = {**cluster.source, "encryption": {"passphrase": PASSPHRASE}}
        cluster.put("init").expect_ok()
        cluster.put("apply").expect_ok()
        resource = cluster.resource
        if command == "get":
            ref = cluster.put("backup").expect_ok().answer["version"]["ref"]
            out = base / "plain"
            out.mkdir()
            step = RunningStep(resource, ["in", str(out)],
                               {"source": cluster.source, "version": {"ref": ref}, "params": {"decrypt": True}})
            wait_for(lambda: decrypting(step), "the decryption to start", timeout=120)
            return play_concourse(step, resource, lambda: False)
        put, node = start(cluster, command)  # k0sctl logged in to the node, or k0s backup hangs there
        with sshd_stopped(node):
            pid = k0sctl_pid(resource) or 0
            return play_concourse(put, resource, lambda: pid_alive(pid))


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the labs' cleanup runs on a kill too
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--k0sctl", default=PINNED_TEXT)
    parser.add_argument("--commands", default="apply,backup,drill,get")
    args = parser.parse_args()
    rows = []
    for command in args.commands.split(","):
        runs = []
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory(prefix="bab-") as tmp:
                runs.append(one(command, args.k0sctl, Path(tmp)))
        row = {"command": command, "k0sctl": args.k0sctl, "runs": len(runs),
               "exit_codes": sorted({r.code for r in runs}),
               "no_secret_s_median": round(statistics.median(r.to_no_secret for r in runs), 2),
               "no_secret_s_max": round(max(r.to_no_secret for r in runs), 2),
               "exit_s_median": round(statistics.median(r.to_exit for r in runs), 2),
               "exit_s_max": round(max(r.to_exit for r in runs), 2)}
        print(json.dumps(row), flush=True)
        rows.append(row)


if __name__ == "__main__":
    main()
