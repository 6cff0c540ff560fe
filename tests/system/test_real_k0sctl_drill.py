"""Restore drills with the REAL k0sctl (both supported versions) on two k0s test nodes (tests/support/k0s_node.py).

Node A (192.0.2.11) is the production cluster `k0s-lab`, backed up through put `backup` and handed over by a
get; node B (192.0.2.12) is the scratch cluster `k0s-drill`. The k0s doubles record what each node's k0s was
asked to do (`calls`, `restored.sha256`), and each node's sshd logs every connection, so a refusal can be
shown to have opened none.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from k0sctl_resource.k0sctl.host_keys import fingerprint
from tests.support.k0s_cluster import VERSIONS, Cluster, make_cluster, sha256
from tests.support.k0s_node import K0S_VERSION, K0sLab, K0sNode, k0s_double
from tests.support.k0sctl_fixtures import real_k0sctl
from tests.support.resource import StepRun

pytestmark = [pytest.mark.k0sctl, pytest.mark.netns, pytest.mark.sshd]

SCRATCH = "k0s-drill"
SCRATCH_CONFIG = "config/scratch/k0sctl.yaml"
MB = 1_000_000


@pytest.fixture(params=VERSIONS)
def cluster(k0s_lab: K0sLab, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """Node A installed as `k0s-lab` (init, apply), then node B added, empty."""
    made = make_cluster(k0s_lab, tmp_path, request.param)
    made.put("init").expect_ok()
    made.put("apply").expect_ok()
    k0s_lab.node("single")
    yield made
    made.close()


def node_a(cluster: Cluster) -> K0sNode:
    return cluster.nodes[0]


def node_b(cluster: Cluster) -> K0sNode:
    return cluster.nodes[1]


def scratch_config(cluster: Cluster, host: str) -> None:
    binary = k0s_double(cluster.lab.root, K0S_VERSION)
    path = cluster.build / SCRATCH_CONFIG
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("apiVersion: k0sctl.k0sproject.io/v1beta1\nkind: Cluster\n"
                    f"metadata:\n  name: {SCRATCH}\nspec:\n  hosts:\n{host}  k0s:\n    version: {K0S_VERSION}\n",
                    encoding="utf-8")
    assert binary.exists()


def backup_of_a(cluster: Cluster, name: str = "backup") -> tuple[Path, str, dict[str, str]]:
    """put backup of A, a get of it; the get's directory, the sha256 A's k0s backup wrote, A's state then."""
    ref = cluster.put("backup").expect_ok().answer["version"]["ref"]
    written = node_a(cluster).lines("backups.sha256")[-1]
    state = node_a(cluster).state()
    return cluster.get({"ref": ref}, name), written, state


def drill(cluster: Cluster, restore_from: str = "backup", timeout: float = 300, **params: Any) -> StepRun:
    source = {**cluster.source, "ssh_known_hosts": cluster.lab.known_hosts()}
    return cluster.put("drill", source=source, config=SCRATCH_CONFIG, restore_from=restore_from, confirm=SCRATCH,
                       timeout=timeout, **params)


def data(state: dict[str, str]) -> dict[str, str]:
    """The restored part of a node's state: /var/lib/k0s (k0s.yaml is written by k0sctl from each config)."""
    return {path: digest for path, digest in state.items() if path.startswith("/var/lib/k0s/")}


def connections(node: K0sNode) -> int:
    return node.log().count("Accepted publickey")


def test_drill_restores_a_onto_b_and_resets_b(cluster: Cluster) -> None:
    a, b = node_a(cluster), node_b(cluster)
    get_dir, written, a_at_backup = backup_of_a(cluster)
    record = json.loads((get_dir / "metadata.json").read_text(encoding="utf-8"))
    assert record["hosts"] == [a.address] and record["k0s_version"] == K0S_VERSION
    assert record["host_keys"] == [fingerprint(a.host_public.split()[1])], "A's key, as k0sctl's connection saw it"
    scratch_config(cluster, b.host(k0s_double(cluster.lab.root)))
    a_calls = len(a.lines("calls"))

    kept = drill(cluster, keep=True).expect_ok()
    assert b.lines("restored.sha256") == [written] == [record["sha256"]], "B's k0s restore got the archive's bytes"
    assert data(b.state()) == data(a_at_backup) and data(a_at_backup), "B's state is A's at backup time"
    assert b.running() == ["k0scontroller"]
    meta = kept.metadata
    assert meta["restored"] == "true" and meta["api_ready"] == "true" and meta["kept"] == "true"
    assert meta["cluster"] == SCRATCH and meta["source_cluster"] == "k0s-lab" and meta["drilled_ref"] == record["ref"]
    assert meta["k0s_version"] == meta["backup_k0s_version"] == K0S_VERSION
    assert meta["identity_checked"] == "true" and meta["identity_endpoints_answered"] == "1", "B's key was read"
    print(f"\nidentity check k0sctl {cluster.version}: {meta['identity_check_s']} s")
    assert meta["api_server"] == f"https://{b.address}:6443"
    assert 0 < float(meta["restore_s"]) <= float(meta["total_s"])

    again = drill(cluster).expect_ok()  # B runs (kept): reset first, restore, check, reset
    assert again.metadata["scratch_was_running"] == "true" and again.metadata["kept"] == "false"
    assert b.lines("restored.sha256") == [written, written]
    assert b.state() == {} and b.running() == [] and b.stray() == [], "B is empty afterwards"
    assert a.lines("calls")[a_calls:] == [], "nothing ran on A"
    assert a.running() == ["k0scontroller"]


@pytest.mark.parametrize("how", ["address", "bastion"])
def test_a_drill_naming_a_is_refused_before_any_ssh_connection(cluster: Cluster, how: str) -> None:
    a, b = node_a(cluster), node_b(cluster)
    backup_of_a(cluster)
    binary = k0s_double(cluster.lab.root)
    host = a.host(binary) if how == "address" else b.host(binary).replace(
        "        port: 22\n", f"        port: 22\n        bastion:\n          address: {a.address}\n"
        "          user: root\n          port: 22\n")
    scratch_config(cluster, host)
    seen = (connections(a), connections(b), len(a.lines("calls")), len(b.lines("calls")))

    run = drill(cluster)
    where = "spec.hosts[0].ssh.address" if how == "address" else "spec.hosts[0].ssh.bastion.address"
    assert run.returncode == 1 and run.error_lines == [
        f"error: drill refused: {where} {a.address} is a host of cluster 'k0s-lab' (backup "
        f"{json.loads((cluster.build / 'backup' / 'metadata.json').read_text())['ref'][:12]}); a drill resets its "
        "hosts and never runs on the cluster it restores"], run.stderr
    assert "$ k0sctl" not in run.stderr
    assert (connections(a), connections(b), len(a.lines("calls")), len(b.lines("calls"))) == seen


def test_a_failed_restore_leaves_b_reset_and_fails_with_k0sctls_reason(cluster: Cluster) -> None:
    b = node_b(cluster)
    _, written, _ = backup_of_a(cluster)
    scratch_config(cluster, b.host(k0s_double(cluster.lab.root)))
    b.sh("mkdir -p /var/lib/k0s && : > /var/lib/k0s/etcd")  # a file where k0s restore unpacks etcd/: it fails

    run = drill(cluster, keep=True)
    assert run.returncode == 1 and len(run.error_lines) == 1, run.stderr
    line = run.error_lines[0]
    print(f"\nk0sctl {cluster.version}: {line}")
    assert line.startswith("error: k0sctl apply --restore-from failed: ") and "exit code" not in line, line
    assert line.endswith("; the scratch hosts were reset"), line
    assert b.lines("restored.sha256") == [written], "k0s restore was reached, and failed"
    assert b.state() == {} and b.running() == [] and b.stray() == []


@pytest.mark.parametrize("size", [MB, 100 * MB], ids=["1MB", "100MB"])
def test_restore_s_by_archive_size(cluster: Cluster, size: int, record_property: Any) -> None:
    a, b = node_a(cluster), node_b(cluster)
    a.sh(f"echo {size} > /run/k0s-double/backup-pad")
    # The backup is taken with v0.28.0, which downloads it with `cat`: v0.32 reads it back in `dd bs=1`
    # chunks (K0S-NODE.md), minutes for 100 MB, a cost of backups, not of the restore measured here.
    drilling_with = cluster.resource.path_prefix
    cluster.resource.path_prefix = [real_k0sctl("v0.28.0").parent]
    try:
        get_dir, written, _ = backup_of_a(cluster)
    finally:
        cluster.resource.path_prefix = drilling_with
    archive = (get_dir / "backup.tar.gz.age").stat().st_size  # as stored: the drill decrypts privately
    assert archive >= size
    scratch_config(cluster, b.host(k0s_double(cluster.lab.root)))
    run = drill(cluster, timeout=1800).expect_ok()
    assert b.lines("restored.sha256") == [written]
    assert sha256(cluster.plain_of((get_dir / "backup.tar.gz.age").read_bytes())) == written
    record_property("restore_s", run.metadata["restore_s"])
    print(f"\ndrill k0sctl {cluster.version}: archive {archive} bytes: restore_s {run.metadata['restore_s']}, "
          f"total_s {run.metadata['total_s']}, duration_s {run.metadata['duration_s']}")


def api_requests_from(node: K0sNode, peer: K0sNode) -> list[str]:
    """The requests `node`'s API server answered from `peer`'s address."""
    return [line for line in node.lines("api-requests") if line.split()[0] == peer.address]


def test_the_restored_admin_conf_names_a_so_a_answers_bs_readiness_probe(cluster: Cluster) -> None:
    """The false "ready", without k0sctl: B restored and started, its API server not up yet; `k0s kubectl get
    --raw=/readyz` with the restored admin.conf (what k0sctl asks first) is answered "ok" by A."""
    a, b = node_a(cluster), node_b(cluster)
    get_dir, written, _ = backup_of_a(cluster)
    archive = cluster.stored_plain(json.loads((get_dir / "metadata.json").read_text(encoding="utf-8"))["ref"])
    assert sha256(archive) == written
    assert b.run("cat > /usr/local/bin/k0s && chmod 0755 /usr/local/bin/k0s",
                 stdin=k0s_double(cluster.lab.root).read_bytes()).returncode == 0
    assert b.run("cat > /root/backup.tar.gz", stdin=archive).returncode == 0
    b.sh("mkdir -p /etc/k0s && k0s config create > /etc/k0s/k0s.yaml && k0s restore /root/backup.tar.gz && "
         "k0s install controller --config=/etc/k0s/k0s.yaml")
    assert f"server: https://{a.address}:6443" in b.sh("cat /var/lib/k0s/pki/admin.conf")
    b.fault("fault-api-delay", "600")  # B's API server is not up while we look
    b.sh("systemctl start k0scontroller")
    try:
        assert b.sh("k0s kubectl get --raw=/readyz").strip() == "ok"
        assert api_requests_from(a, b) == [f"{b.address} /readyz"], "A answered the probe on B"
    finally:
        b.sh("systemctl stop k0scontroller")


@pytest.mark.parametrize("delay", [3])
def test_a_drill_waits_for_bs_own_api_server_and_never_asks_a(cluster: Cluster, delay: int) -> None:
    """B's API server starts `delay` s after k0s: A answers none of the drill's or k0sctl's probes, and restore_s
    covers B's start."""
    a, b = node_a(cluster), node_b(cluster)
    backup_of_a(cluster)
    scratch_config(cluster, b.host(k0s_double(cluster.lab.root)))
    b.fault("fault-api-delay", str(delay))
    run = drill(cluster).expect_ok()
    assert api_requests_from(a, b) == [], "nothing from B reached A's API server"
    assert f"{b.address} /readyz" in [line.split(" ", 1)[0] + " " + line.split()[1] for line in b.lines("api-requests")]
    meta = run.metadata
    assert meta["api_server"] == f"https://{b.address}:6443" and meta["scratch_endpoints"] == b.address
    assert float(meta["restore_s"]) >= delay and float(meta["k0sctl_ready_s"]) >= delay
    assert b.state() == {} and b.running() == [] and b.stray() == []
    assert b.sh("ls /root") == "", "the archived config k0s restore wrote is removed"


def test_a_drill_whose_scratch_api_server_never_starts_fails_although_a_answers(cluster: Cluster) -> None:
    """A is reachable and would answer "ok"; B's API server never starts: the drill fails (bounded by
    source.k0sctl.timeout), nothing from B reached A, and B is reset."""
    a, b = node_a(cluster), node_b(cluster)
    backup_of_a(cluster)
    scratch_config(cluster, b.host(k0s_double(cluster.lab.root)))
    b.fault("fault-api-never")
    source = {**cluster.source, "ssh_known_hosts": cluster.lab.known_hosts(), "k0sctl": {"timeout": "40s"}}
    run = cluster.put("drill", source=source, config=SCRATCH_CONFIG, restore_from="backup", confirm=SCRATCH,
                      timeout=300)
    assert run.returncode == 1 and len(run.error_lines) == 1, run.stderr
    assert "drill passed" not in run.stderr and "within source.k0sctl.timeout (40s)" in run.error_lines[0]
    assert api_requests_from(a, b) == [], "nothing from B reached A's API server"
    assert b.state() == {} and b.running() == []
