"""The real k0sctl through check / in / out on k0s test nodes: a controller + worker cluster, and faults
(the node's sshd dies mid-backup, `k0s backup` fails, a changed host key, a clock off by minutes): one
clear error each, nothing committed, nothing left behind on the worker (the step's tmpdir, checked by
the harness) or on the node."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support import OLDER
from tests.support.k0s_cluster import CLUSTER, VERSIONS, Cluster, make_cluster, sha256
from tests.support.k0s_node import K0sLab
from tests.support.node import keypair
from tests.support.resource import StepRun

pytestmark = [pytest.mark.k0sctl, pytest.mark.netns, pytest.mark.sshd]


@pytest.fixture(params=VERSIONS)
def version(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def single(k0s_lab: K0sLab, tmp_path: Path, version: str) -> Iterator[Cluster]:
    made = make_cluster(k0s_lab, tmp_path, version)
    made.put("init").expect_ok()
    yield made
    made.close()


def one_error(run: StepRun) -> str:
    assert run.returncode != 0, run.stderr
    assert len(run.error_lines) == 1, run.stderr
    assert "Traceback" not in run.stderr and "internal error" not in run.stderr
    return run.error_lines[0]


def test_controller_and_worker(k0s_lab: K0sLab, tmp_path: Path, version: str) -> None:
    cluster = make_cluster(k0s_lab, tmp_path, version, roles=("controller", "worker"))
    leader, worker = cluster.nodes
    cluster.put("init").expect_ok()
    cluster.put("apply").expect_ok()
    assert (leader.running(), worker.running()) == (["k0scontroller"], ["k0sworker"])
    assert "k0s token create --role=worker --expiry=10m0s --data-dir=/var/lib/k0s" in leader.lines("calls")
    assert worker.state().keys() == {"/var/lib/k0s/kubelet.conf", "/etc/k0s/k0stoken"}

    backup = cluster.put("backup").expect_ok()
    assert "k0s etcd member-list --data-dir=/var/lib/k0s" in leader.lines("calls")
    (written,) = cluster.node_backups()
    assert sha256(cluster.stored_plain(backup.answer["version"]["ref"])) == written
    assert worker.lines("backups.sha256") == []

    cluster.put("reset", confirm=CLUSTER, backup_first=False).expect_ok()
    assert (leader.state(), worker.state()) == ({}, {})
    assert (leader.running(), worker.running()) == ([], [])
    assert (leader.stray(), worker.stray()) == ([], [])
    cluster.close()


def test_sshd_dies_mid_backup(single: Cluster) -> None:
    single.put("apply").expect_ok()
    refs = single.refs()
    node = single.leader
    node.fault("fault-backup-hang")
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(single.put, "backup")
        deadline = time.monotonic() + 60
        while "backup-hanging" not in node.sh("ls /run/k0s-double"):
            assert time.monotonic() < deadline and not pending.done(), "k0s backup never started"
            time.sleep(0.05)
        node.kill_sshd()
        run = pending.result(timeout=120)
    error = one_error(run)
    assert error.startswith("error: k0sctl backup failed: "), error
    assert single.refs() == refs
    # No archive stays on the node; k0sctl's host lock does (it lost the connection before releasing it).
    # The next k0sctl run waits for that lock to go stale (about 2.5 minutes here), then goes on.
    lock = "/run/lock/k0sctl" if single.version == OLDER else "/tmp/k0sctl.lock"
    assert node.stray() == [lock], run.stderr


def test_k0s_backup_fails(single: Cluster) -> None:
    single.put("apply").expect_ok()
    refs = single.refs()
    single.leader.fault("fault-backup-fail", "etcd snapshot: no space left on device")
    run = single.put("backup")
    error = one_error(run)
    assert error.startswith("error: k0sctl backup failed: "), error
    # v0.32 carries the command's stderr into its error; v0.28.0 (rig v0.21) drops it, in its log too
    why = "Process exited with status 1" if single.version == OLDER else "etcd snapshot: no space left on device"
    assert why in error, error
    assert single.refs() == refs
    assert single.leader.stray() == []


def test_changed_host_key(single: Cluster, tmp_path: Path) -> None:
    single.put("apply").expect_ok()
    refs, calls = single.refs(), single.leader.lines("calls")
    other = keypair(tmp_path / "other_host_key", "another-host")
    source = {**single.source, "ssh_known_hosts": f"{single.leader.address} {' '.join(other.public.split()[:2])}\n"}
    error = one_error(single.put("backup", source=source, timeout=120))
    assert "host key mismatch" in error or "knownhosts: key mismatch" in error, error
    assert single.refs() == refs
    assert single.leader.lines("calls") == calls  # k0sctl never ran a command on the node


def test_clock_off_by_minutes(k0s_lab: K0sLab, tmp_path: Path, version: str) -> None:
    # k0sctl compares each host's clock with the median of all hosts' clocks (not with its own), so a
    # clock that is off shows only among two hosts or more.
    cluster = make_cluster(k0s_lab, tmp_path, version, roles=("controller", "worker"))
    cluster.put("init").expect_ok()
    refs = cluster.refs()
    cluster.nodes[1].fault("clock-offset", "-120")
    run = cluster.put("apply")
    error = one_error(run)
    assert "clock skew exceeds the maximum on 1 hosts" in error, error
    # k0sctl measures the skew against its own clock in the time a command takes: 119 to 121 seconds
    assert re.search(r"clock skew of 1[12]\d seconds exceeds the maximum of 30 seconds", run.stderr), run.stderr
    assert cluster.refs() == refs
    for node in cluster.nodes:
        assert (node.state(), node.running(), node.stray()) == ({}, [], [])
    cluster.close()
