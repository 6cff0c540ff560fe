"""The real k0sctl (both supported versions) installs, backs up, resets, restores and upgrades k0s on
test nodes (tests/support/k0s_node.py), driven through the resource's check / in / out as Concourse drives it.
Each node's k0s double records what k0s was asked to do, so the bytes are followed end to end: what
`k0s backup` wrote on the node, what git holds, what a get hands back, what `k0s restore` received."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.backup_support import first_parents
from tests.support.k0s_cluster import CLUSTER, VERSIONS, Cluster, make_cluster, sha256
from tests.support.k0s_node import K0sLab

pytestmark = [pytest.mark.k0sctl, pytest.mark.netns, pytest.mark.sshd]

NEWER = "v1.32.3+k0s.0"


@pytest.fixture(params=VERSIONS)
def cluster(k0s_lab: K0sLab, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    made = make_cluster(k0s_lab, tmp_path, request.param)
    yield made
    made.close()


def installed(cluster: Cluster) -> str:
    """init, then apply on the fresh node; the ref of the init commit."""
    init = cluster.put("init").expect_ok()
    cluster.put("apply").expect_ok()
    assert cluster.leader.running() == ["k0scontroller"]
    return str(init.answer["version"]["ref"])


def test_backup_check_get_reset_restore(cluster: Cluster) -> None:
    # (1) init -> apply -> backup -> check -> get
    installed(cluster)
    backup = cluster.put("backup").expect_ok()
    ref = backup.answer["version"]["ref"]
    (written,) = cluster.node_backups()
    assert sha256(cluster.stored_plain(ref)) == written  # git holds exactly what `k0s backup` wrote
    assert backup.metadata["sha256"] == written
    versions = cluster.check().answer
    assert versions[-1] == {"ref": ref}
    got = cluster.get({"ref": ref}, "backup")  # as the sample pipeline does: the archive as stored
    assert not (got / "backup.tar.gz").exists()
    assert sha256(cluster.plain_of((got / "backup.tar.gz.age").read_bytes())) == written
    before = cluster.leader.state()
    assert before and any(path.startswith("/var/lib/k0s/pki/") for path in before)

    # (2) reset (confirm, backup_first) -> empty node -> apply restore_from the get
    reset = cluster.put("reset", confirm=CLUSTER, backup_first=True).expect_ok()
    assert reset.metadata["backup_ref"] == first_parents(cluster.repo)[-1] != ref
    assert cluster.leader.state() == {} and cluster.leader.running() == []
    restored = cluster.put("apply", restore_from="backup", restore="required").expect_ok()
    assert restored.metadata["restored"] == "true"
    assert "Restore cluster state" in restored.stderr
    assert cluster.leader.lines("restored.sha256") == [written]  # k0s restore received exactly those bytes
    assert cluster.leader.state() == before
    assert cluster.leader.running() == ["k0scontroller"]
    assert cluster.leader.stray() == []


def test_restore_onto_a_running_cluster(cluster: Cluster) -> None:
    # (3) `restore: required` fails before anything changes; `restore: auto` says it did not restore
    installed(cluster)
    cluster.put("backup").expect_ok()
    ref = first_parents(cluster.repo)[-1]
    cluster.get({"ref": ref}, "backup")
    state, refs, calls = cluster.leader.state(), cluster.refs(), len(cluster.leader.lines("calls"))

    required = cluster.put("apply", restore_from="backup", restore="required")
    assert required.returncode != 0 and len(required.error_lines) == 1, required.stderr
    assert "k0s is already running on" in required.error_lines[0]
    assert "nothing was changed" in required.error_lines[0]
    new_calls = cluster.leader.lines("calls")[calls:]
    assert not [c for c in new_calls if c.startswith(("k0s install", "k0s restore", "systemctl st"))], new_calls
    assert (cluster.leader.state(), cluster.refs()) == (state, refs)

    auto = cluster.put("apply", restore_from="backup").expect_ok()
    assert auto.metadata["restored"] == "false"
    assert "restore: NOT restored: k0s is already running on 192.0.2.11:22" in auto.stderr
    runs = [line for line in auto.stderr.splitlines() if line.startswith("$ k0sctl apply")]
    assert len(runs) == 2 and "--dry-run" in runs[0], runs  # the resource asked first (k0sctl's facts) …
    assert not any("--restore-from" in line for line in runs), runs  # … so k0sctl is never asked to restore
    assert cluster.leader.lines("restored.sha256") == []
    assert cluster.leader.state() == state
    admin = cluster.leader.sh("cat /var/lib/k0s/pki/admin.conf")
    assert f"server: https://{cluster.leader.address}:6443" in admin, "the running cluster keeps its admin.conf"


def test_upgrade_backs_up_first(cluster: Cluster) -> None:
    # (4) a config commit raises spec.k0s.version; backup_first: true
    installed(cluster)
    calls_before = len(cluster.leader.lines("calls"))
    cluster.write_config(NEWER)
    run = cluster.put("apply", backup_first=True).expect_ok()
    (written,) = cluster.node_backups()
    ref = run.metadata["backup_ref"]
    assert run.answer["version"] == {"ref": ref}
    assert sha256(cluster.stored_plain(ref)) == written
    calls = cluster.leader.lines("calls")[calls_before:]
    backup_at = next(i for i, c in enumerate(calls) if c.startswith("k0s backup"))
    changes = [i for i, c in enumerate(calls) if c.startswith(("k0s install", "systemctl stop", "systemctl start"))]
    assert all(i > backup_at for i in changes), calls  # k0sctl touched nothing before the backup was taken
    assert run.stderr.index("pushed") < run.stderr.index("$ k0sctl apply"), run.stderr
    status = cluster.leader.sh("k0s status -o json")
    assert f'"Version":"{NEWER}"' in status, status
    assert cluster.leader.sh("k0s version").strip() == NEWER
