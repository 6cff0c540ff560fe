"""A put acts on one cluster only: the config file that was checked is the one k0sctl reads, and an
archive restores only into the cluster its record names (unless `migrate_from` names that cluster).

`k0sctl.timeout` stops k0sctl, which retries connecting to listeners that close every connection: a
bound (k0sctl connects within a second when the machine is idle), never a pace the test relies on.

The glob case runs the REAL k0sctl (the pinned release), which reads `--config` as a glob pattern: two listeners
stand for the sandbox and the production hosts and record where k0sctl connects.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.steps.test_apply_reset import k0s_archive, put
from tests.support import PINNED
from tests.support.fixtures import CLUSTER_NAME, Double, k0sctl_yaml
from tests.support.k0sctl_fixtures import real_k0sctl
from tests.support.listener import Listeners
from tests.support.resource import Resource
from tests.support.sshd import keygen


def other_clusters_archive(workdir: Path, cluster: str | None = "other-prod") -> None:
    (workdir / "other").mkdir()
    archive = k0s_archive(workdir / "other" / "backup.tar.gz")
    meta = archive.parent / "metadata.json"
    record = json.loads(meta.read_text(encoding="utf-8"))
    if cluster is not None:
        record["cluster"] = cluster
    meta.write_text(json.dumps(record), encoding="utf-8")


def test_an_archive_of_another_cluster_is_refused_before_k0sctl(resource: Resource, workdir: Path,
                                                                double: Double) -> None:
    other_clusters_archive(workdir)
    run = resource.put(put({"command": "apply", "restore_from": "other"}), workdir)
    assert run.returncode == 1
    assert run.error_lines == [
        f"error: restore_from: other/backup.tar.gz is a backup of cluster 'other-prod', not of '{CLUSTER_NAME}' "
        "(metadata.name); set migrate_from: other-prod to restore it into this cluster on purpose; nothing was "
        "changed"]
    assert double.calls() == []
    wrong = resource.put(put({"command": "apply", "restore_from": "other", "migrate_from": "acme"}), workdir)
    assert "(migrate_from is 'acme')" in wrong.error_lines[0] and double.calls() == []


def test_migrate_from_restores_it_on_purpose_and_says_so(resource: Resource, workdir: Path, double: Double) -> None:
    other_clusters_archive(workdir)
    run = resource.put(put({"command": "apply", "restore_from": "other", "migrate_from": "other-prod"}),
                       workdir).expect_ok()
    assert run.metadata["migrated_from"] == "other-prod" and run.metadata["restored"] == "true"
    assert f"restoring cluster 'other-prod''s archive into cluster '{CLUSTER_NAME}', as asked" in run.stderr
    dry, real = double.commands()  # the resource asks first whether k0s runs (a dry run), then restores
    assert dry[0] == real[0] == "apply" and "--dry-run" in dry and "--restore-from" in real


@pytest.mark.parametrize(("cluster", "params"), [(CLUSTER_NAME, {}), (None, {}),
                                                 (CLUSTER_NAME, {"migrate_from": "other-prod"})])
def test_its_own_archive_and_older_records_restore_as_before(resource: Resource, workdir: Path, double: Double,
                                                              cluster: str | None, params: dict[str, Any]) -> None:
    other_clusters_archive(workdir, cluster)
    run = resource.put(put({"command": "apply", "restore_from": "other", **params}), workdir).expect_ok()
    assert run.metadata["restored"] == "true" and "migrated_from" not in run.metadata


def test_migrate_from_needs_restore_from(resource: Resource, workdir: Path, double: Double) -> None:
    run = resource.put(put({"command": "apply", "migrate_from": "other-prod"}), workdir)
    assert run.error_lines == ["error: params.migrate_from: needs restore_from (the archive of the cluster named)"]


@pytest.mark.k0sctl
@pytest.mark.parametrize("name", ["k0sctl[1].yaml", "k0sctl?.yaml", "k0sctl*.yaml", "k0sctl{1,2}.yaml",
                                  "k0sctl\\1.yaml"])
def test_k0sctl_reads_the_file_that_was_confirmed(resource: Resource, workdir: Path, tmp_path: Path,
                                                  name: str) -> None:
    """`config/k0sctl[1].yaml` is the sandbox; beside it `config/k0sctl1.yaml`, a copy of production,
    matches the glob. `reset` confirmed with the sandbox's name must reach the sandbox's host only."""
    key, _ = keygen(tmp_path / "client")
    resource.secrets.append(key)
    resource.path_prefix = [real_k0sctl(PINNED).parent]
    with Listeners() as listeners:
        sandbox, production = listeners.add("127.0.0.61"), listeners.add("127.0.0.62")
        config = workdir / "config"
        for file, cluster, (host, port) in ((name, "acme-sandbox", sandbox), ("k0sctl1.yaml", "acme-prod", production)):
            hosts = [{"role": "single", "ssh": {"address": host, "port": port, "user": "root"}}]
            (config / file).write_text(k0sctl_yaml(cluster, hosts), encoding="utf-8")
        run = resource.put({"source": {"ssh_private_key": key, "k0sctl": {"timeout": "15s"}},
                            "params": {"command": "reset", "config": f"config/{name}", "confirm": "acme-sandbox",
                                       "backup_first": False}}, workdir)
        seen = list(listeners.seen)
    assert run.returncode == 1, run.stderr  # the listeners close every connection
    assert "resetting cluster 'acme-sandbox'" in run.stderr
    assert sandbox in seen and production not in seen, seen


HIDING = {
    "address": lambda t: {"ssh": {"address": t[0], "port": t[1]}},
    "HostName": lambda t: {"ssh": {"address": "scratch-1.example.test", "options": {"HostName": t[0], "Port": t[1]}}},
    "ProxyJump": lambda t: {"ssh": {"address": "scratch-1.example.test", "options": {"ProxyJump": f"{t[0]}:{t[1]}"}}},
    "bastion": lambda t: {"ssh": {"address": "scratch-1.example.test", "bastion": {
        "address": "jump.example.test", "options": {"HostName": t[0], "Port": t[1]}}}},
    "openSSH": lambda t: {"openSSH": {"address": "scratch-1.example.test", "options": {"HostName": t[0],
                                                                                       "Port": t[1]}}},
    "control: another cluster's host": None,
}


@pytest.mark.k0sctl
@pytest.mark.parametrize("how", sorted(HIDING))
def test_a_refused_drill_connects_nowhere(resource: Resource, workdir: Path, tmp_path: Path, how: str) -> None:
    """The backup's host is a listener; the scratch config leads there in some hidden way: the drill is
    refused and nothing (no k0sctl, no ssh -G, no key scan) connects to it. The control leads there while
    the backup is another cluster's: then k0sctl does connect, so the listener would have seen it."""
    key, _ = keygen(tmp_path / "client")
    resource.secrets.append(key)
    resource.path_prefix = [real_k0sctl(PINNED).parent]
    with Listeners() as listeners:
        production = listeners.add("127.0.0.71")
        hide = HIDING[how]
        entry = hide(production) if hide is not None else {"ssh": {"address": production[0], "port": production[1]}}
        scratch = workdir / "config" / "scratch.yaml"
        scratch.write_text(k0sctl_yaml("scratch", [{"role": "single", **entry}]), encoding="utf-8")
        (workdir / "prod").mkdir()
        archive = k0s_archive(workdir / "prod" / "backup.tar.gz")
        record = json.loads((archive.parent / "metadata.json").read_text(encoding="utf-8"))
        record.update(cluster="prod", hosts=["192.0.2.99" if hide is None else production[0]],
                      host_keys=["SHA256:" + "B" * 43])
        (archive.parent / "metadata.json").write_text(json.dumps(record), encoding="utf-8")
        run = resource.put({"source": {"ssh_private_key": key, "k0sctl": {"timeout": "15s"}},
                            "params": {"command": "drill", "config": "config/scratch.yaml", "restore_from": "prod",
                                       "confirm": "scratch"}}, workdir)
        seen = list(listeners.seen)
    assert run.returncode == 1
    if hide is None:
        assert seen and "drill refused" not in run.stderr, run.stderr
        return
    assert len(run.error_lines) == 1, run.stderr
    assert run.error_lines[0].startswith("error: drill refused: spec.hosts[0]."), run.stderr
    assert "is a host of cluster 'prod'" in run.error_lines[0]
    assert seen == [] and "$ k0sctl" not in run.stderr


@pytest.mark.sshd
def test_a_scratch_host_showing_a_recorded_host_key_is_refused_before_any_login(
        resource: Resource, workdir: Path, double: Double, tmp_path: Path) -> None:
    """The record names another address, so the endpoints pass; the key the host shows is production's.
    The check is a key exchange (ssh-keyscan): sshd logs no login, and k0sctl never runs."""
    from k0sctl_resource.k0sctl.host_keys import fingerprint
    from tests.support.sshd import SshServer

    with SshServer(tmp_path / "sshd", host="127.0.0.81") as sshd:
        public = sshd.host_key_path.with_name(sshd.host_key_path.name + ".pub").read_text().split()[1]
        scratch = workdir / "config" / "scratch.yaml"
        scratch.write_text(k0sctl_yaml("scratch", [{"role": "single", "ssh": {
            "address": "scratch-1.invalid", "options": {"HostName": "2130706513", "Port": sshd.port}}}]),
            encoding="utf-8")
        (workdir / "prod").mkdir()
        archive = k0s_archive(workdir / "prod" / "backup.tar.gz")
        record = json.loads((archive.parent / "metadata.json").read_text(encoding="utf-8"))
        record.update(cluster="prod", hosts=["192.0.2.10"], host_keys=[fingerprint(public)])
        (archive.parent / "metadata.json").write_text(json.dumps(record), encoding="utf-8")
        run = resource.put(put({"command": "drill", "config": "config/scratch.yaml", "restore_from": "prod",
                                "confirm": "scratch"}), workdir)
        log = sshd.log_file.read_text(errors="replace")
    assert run.error_lines == [
        f"error: drill refused: spec.hosts[0].ssh.options.HostName 2130706513 (reached at 2130706513:{sshd.port}) "
        f"shows the SSH host key {fingerprint(public)} of a host of cluster 'prod' (backup 000000000000): it is that "
        "host, whatever its address says"], run.stderr
    assert "Accepted" not in log and double.calls() == []
