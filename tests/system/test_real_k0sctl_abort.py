"""A Concourse abort (SIGTERM, then SIGKILL at 10 s) against the REAL k0sctl, mid-phase, on a k0s test
node whose sshd stops answering (SIGSTOP): k0sctl answers "Aborting..." and waits on the host; the
step removes its secrets, kills k0sctl and exits with its one error line before the runtime's SIGKILL.
The measured times are printed (run with -s)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.steps.test_abort import assert_aborted, wait_for
from tests.steps.test_abort_grace import assert_nothing_left_after_kill, k0sctl_pid, pid_alive, play_concourse
from tests.support import PINNED
from tests.support.k0s_cluster import Cluster, make_cluster
from tests.support.k0s_node import K0S_VERSION, K0sLab, K0sNode, _descendants, k0s_double
from tests.support.resource import executable

pytestmark = [pytest.mark.k0sctl, pytest.mark.netns, pytest.mark.sshd]


class Step:
    """A put started as Concourse does (in the worker's network namespace), left running."""

    def __init__(self, cluster: Cluster, command: str, **params: Any) -> None:
        resource = cluster.resource
        source = {**cluster.source, "ssh_known_hosts": cluster.lab.known_hosts()}
        request = {"source": source,
                   "params": {"command": command, "config": "config/k0sctl.yaml", **params}}
        self.proc = subprocess.Popen([*resource.argv_prefix, executable(), "out", str(cluster.build)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=resource.environment())
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(request).encode())
        self.proc.stdin.close()
        self.proc.stdin = None


@contextlib.contextmanager
def sshd_stopped(node: K0sNode) -> Iterator[None]:
    """SIGSTOP the node's sshd and its sessions: connections stay open, nothing answers."""
    assert node.sshd is not None
    pids = [node.sshd.pid, *_descendants(node.sshd.pid)]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):  # a session that just ended
            os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


def logins(node: K0sNode) -> int:
    return node.log().count("Accepted publickey")


def start(cluster: Cluster, command: str) -> tuple[Step, K0sNode]:
    """The put `command` started, and k0sctl busy on the node that is to stop answering (that node)."""
    if command == "backup":
        cluster.leader.fault("fault-backup-hang")  # `k0s backup` hangs on the node: k0sctl is mid-phase
        step = Step(cluster, "backup")
        wait_for(lambda: "backup-hanging" in cluster.leader.sh("ls /run/k0s-double"), "k0s backup", timeout=120)
        return step, cluster.leader
    if command == "apply":
        before = logins(cluster.leader)
        step = Step(cluster, "apply")
        wait_for(lambda: logins(cluster.leader) > before, "k0sctl to log in", timeout=120)
        return step, cluster.leader
    # drill: node A's backup, as a get writes it (encrypted), onto the scratch node B
    scratch = cluster.lab.node("single")
    ref = cluster.put("backup").expect_ok().answer["version"]["ref"]
    cluster.get({"ref": ref}, "backup")
    config = cluster.build / "config" / "scratch.yaml"
    config.write_text("apiVersion: k0sctl.k0sproject.io/v1beta1\nkind: Cluster\nmetadata:\n  name: k0s-drill\n"
                      f"spec:\n  hosts:\n{scratch.host(k0s_double(cluster.lab.root))}  k0s:\n"
                      f"    version: {K0S_VERSION}\n", encoding="utf-8")
    step = Step(cluster, "drill", config="config/scratch.yaml", restore_from="backup", confirm="k0s-drill")
    wait_for(lambda: logins(scratch) > 0, "k0sctl to log in to the scratch node", timeout=120)
    return step, scratch


@pytest.mark.parametrize("command", ["backup", "apply", "drill"])
def test_abort_with_the_real_k0sctl_waiting_on_a_silent_host(k0s_lab: K0sLab, tmp_path: Path, command: str) -> None:
    cluster = make_cluster(k0s_lab, tmp_path, PINNED)
    cluster.put("init").expect_ok()
    cluster.put("apply").expect_ok()
    step, node = start(cluster, command)
    resource = cluster.resource
    with sshd_stopped(node):
        pid = k0sctl_pid(resource)
        assert pid is not None, "k0sctl is not running"
        result = play_concourse(step, resource, lambda: pid_alive(pid))
        print(f"{command} (k0sctl {PINNED}, silent host): no secret after {result.to_no_secret:.2f}s, "
              f"exit after {result.to_exit:.2f}s")
        assert result.code == 128 + signal.SIGTERM, "the runtime's SIGKILL came first: " + result.err
        assert_aborted(result.code, result.out, result.err, signal.SIGTERM)
        assert result.to_no_secret <= result.to_exit
        assert_nothing_left_after_kill(resource)
    cluster.close()
