"""put `command: drill` through the real `out` step, with the k0sctl test double and a real backup repository.

The production cluster is `prod-eu` (192.0.2.10, 192.0.2.11; tests.support.fixtures.k0sctl_yaml); the
backup is taken from it with put `backup` and handed over by a real get. The scratch cluster is
`scratch-eu`: its controller on a loopback address where a real TLS API server answers (tests/support/
scratch_api.py; the double's `k0sctl kubeconfig` names it), a worker on 198.51.100.21. The double records
every k0sctl call (`version` included), so "refused before k0sctl runs" is: no call at all.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.backup_support import age_key, backup_source, bare_repo, commit_trailers, put_request
from tests.support.fixtures import CLUSTER_NAME, Double, k0sctl_yaml
from tests.support.resource import Resource, StepRun
from tests.support.scratch_api import ScratchApiServer

SCRATCH = "scratch-eu"
SCRATCH_CONFIG = "config/scratch/k0sctl.yaml"


def scratch_hosts(controller: str) -> list[dict[str, Any]]:
    return [{"role": "controller", "ssh": {"address": controller, "user": "root"}},
            {"role": "worker", "ssh": {"address": "198.51.100.21", "user": "root"}}]


@dataclass
class Backup:
    source: dict[str, Any]
    repo: Path
    ref: str
    record: dict[str, Any]  # the get's metadata.json


def scratch_config(workdir: Path, name: str = SCRATCH, hosts: list[dict[str, Any]] | None = None,
                   controller: str = "198.51.100.20") -> None:
    path = workdir / SCRATCH_CONFIG
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(k0sctl_yaml(name, hosts or scratch_hosts(controller)), encoding="utf-8")


def take_backup(resource: Resource, workdir: Path, double: Double, source: dict[str, Any], repo: Path,
                get_params: dict[str, Any] | None = None) -> Backup:
    """put backup of prod-eu, then a get into workdir/cluster; the double's record starts empty after."""
    double.set(running=True)
    ref = resource.put(put_request(source, "backup"), workdir).expect_ok().answer["version"]["ref"]
    params = get_params if get_params is not None else {"decrypt": True}  # the refusals below edit the plain file
    resource.get({"source": source, "version": {"ref": ref}, "params": params}, workdir / "cluster").expect_ok()
    double.record_file.unlink()
    double.set(running=False, restores=[])
    record = json.loads((workdir / "cluster" / "metadata.json").read_text(encoding="utf-8"))
    return Backup(source, repo, ref, record)


@pytest.fixture
def backup(resource: Resource, workdir: Path, double: Double, tmp_path: Path, scratch_api: ScratchApiServer) -> Backup:
    repo = bare_repo(tmp_path / "backups.git")
    source = backup_source(f"file://{repo}", plaintext=True)
    scratch_config(workdir, controller=scratch_api.address)
    taken = take_backup(resource, workdir, double, source, repo)
    double.set(kubeconfig_text=scratch_api.admin_kubeconfig())
    return taken


def drill(resource: Resource, workdir: Path, source: dict[str, Any], **params: Any) -> StepRun:
    params = {"config": SCRATCH_CONFIG, "restore_from": "cluster", "confirm": SCRATCH, **params}
    params = {k: v for k, v in params.items() if v is not None}
    return resource.put(put_request(source, "drill", **params), workdir)


def names(double: Double) -> list[str]:
    return [argv[0] for argv in double.commands()]


# -- the record --------------------------------------------------------------------------------------

def test_a_backup_records_its_hosts(backup: Backup) -> None:
    trailers = commit_trailers(backup.repo, backup.ref)
    assert trailers["Hosts"] == trailers["Endpoints"] == "192.0.2.10, 192.0.2.11"
    assert backup.record["hosts"] == backup.record["endpoints"] == ["192.0.2.10", "192.0.2.11"]
    assert "Addresses" not in trailers and "addresses" not in backup.record, "no names to resolve"
    assert "host_keys" not in backup.record, "the double opens no SSH connection"
    assert backup.record["cluster"] == CLUSTER_NAME
    assert commit_trailers(backup.repo, backup.ref)["K0s-Version"] == "v1.31.2+k0s.0"
    assert backup.record["k0s_version"] == "v1.31.2+k0s.0", "what k0sctl found running"


# -- the drill ---------------------------------------------------------------------------------------

def test_drill_restores_checks_and_resets(resource: Resource, workdir: Path, double: Double, backup: Backup,
                                          scratch_api: ScratchApiServer) -> None:
    run = drill(resource, workdir, backup.source).expect_ok()
    commands = double.commands()
    assert names(double) == ["reset", "apply", "kubeconfig", "reset"]
    configs = [Path(argv[argv.index("--config") + 1]) for argv in commands]
    (cfg,) = {configs[0], configs[2], configs[3]}
    assert cfg.name == "k0sctl.yaml" and cfg.is_relative_to(resource.tmpdir), "one private copy"
    assert double.state()["cluster_name"] == SCRATCH, "of the scratch config"
    assert configs[1].name == "k0sctl.restore.yaml" and configs[1].parent.parent == cfg.parent.parent, \
        "apply gets a private copy with the restore hooks"
    apply = commands[1]
    handed = Path(apply[apply.index("--restore-from") + 1])
    assert handed.name == "backup.tar.gz" and handed.is_relative_to(resource.tmpdir), "a private, verified copy"
    assert not handed.exists(), "removed with the step's private directory"
    assert "--dry-run" not in apply and "--no-wait" not in apply
    (restored,) = double.state()["restores"]
    assert restored["sha256"] == backup.record["sha256"]
    assert double.state()["running"] is False, "the scratch cluster is reset afterwards"

    meta = run.metadata
    assert run.answer["version"] == {"ref": backup.ref}, "the branch's newest commit"
    assert meta["command"] == "drill" and meta["cluster"] == SCRATCH and meta["source_cluster"] == CLUSTER_NAME
    assert meta["drilled_ref"] == backup.ref and meta["drilled_archive"] == backup.record["archive"]
    assert meta["restored"] == "true" and meta["api_ready"] == "true" and meta["kept"] == "false"
    assert meta["k0s_version"] == meta["backup_k0s_version"] == "v1.31.2+k0s.0"
    assert "restored onto k0s" not in run.stderr
    assert meta["api_server"] == f"https://{scratch_api.address}:{scratch_api.port}"
    assert meta["scratch_endpoints"] == scratch_api.address
    assert [path for _, path in scratch_api.requests] == ["/readyz", "/api/v1/namespaces/default/endpoints/kubernetes"]
    assert float(meta["k0sctl_ready_s"]) <= float(meta["restore_s"])
    assert meta["scratch_was_running"] == "false" and meta["scratch_hosts"] == "2"
    assert 0 <= float(meta["restore_s"]) <= float(meta["total_s"]) <= float(meta["duration_s"])
    assert "client-key-data" not in run.stderr, "the kubeconfig is checked, never printed"


def test_drill_resets_a_running_scratch_cluster_first_and_keep_leaves_it(
        resource: Resource, workdir: Path, double: Double, backup: Backup) -> None:
    double.set(running=True)  # left by an earlier drill with keep: true
    config = workdir / SCRATCH_CONFIG
    config.write_text(config.read_text(encoding="utf-8").replace("v1.31.2+k0s.0", "v1.32.1+k0s.0"), encoding="utf-8")
    run = drill(resource, workdir, backup.source, keep=True).expect_ok()
    assert run.metadata["k0s_version"] == "v1.32.1+k0s.0" and run.metadata["backup_k0s_version"] == "v1.31.2+k0s.0"
    assert "the backup was taken from k0s v1.31.2+k0s.0 and restored onto k0s v1.32.1+k0s.0" in run.stderr
    assert names(double) == ["reset", "apply", "kubeconfig"]
    assert run.metadata["scratch_was_running"] == "true" and run.metadata["kept"] == "true"
    assert double.state()["running"] is True
    assert double.state()["cluster_name"] == SCRATCH


def test_a_failed_restore_resets_the_scratch_hosts_and_fails_with_k0sctls_reason(
        resource: Resource, workdir: Path, double: Double, backup: Backup) -> None:
    double.set(fail={"apply": "restore failed: command failed: exit status 1"})
    run = drill(resource, workdir, backup.source, keep=True)
    assert run.returncode == 1
    assert run.error_lines == ["error: k0sctl apply --restore-from failed: restore failed: command failed: exit "
                               "status 1; the scratch hosts were reset"]
    assert names(double) == ["reset", "apply", "reset"], "keep does not keep a failed drill"
    assert double.state()["running"] is False
    assert run.answer is None


def test_a_failed_kubeconfig_check_fails_the_drill_after_a_reset(resource: Resource, workdir: Path, double: Double,
                                                                 backup: Backup) -> None:
    double.set(fail={"kubeconfig": "read kubeconfig from host: command failed"})
    run = drill(resource, workdir, backup.source)
    assert run.returncode == 1
    assert "k0sctl kubeconfig failed after the restore: read kubeconfig from host" in run.error_lines[0]
    assert run.error_lines[0].endswith("the scratch hosts were reset")
    assert names(double) == ["reset", "apply", "kubeconfig", "reset"]


def test_a_failed_first_reset_stops_the_drill(resource: Resource, workdir: Path, double: Double,
                                              backup: Backup) -> None:
    double.set(fail={"reset": "failed to connect to 198.51.100.20:22: connection refused"})
    run = drill(resource, workdir, backup.source)
    assert run.returncode == 1
    assert run.error_lines == ["error: k0sctl reset of the scratch hosts (before the drill) failed: failed to "
                               "connect to 198.51.100.20:22: connection refused"]
    assert names(double) == ["reset"]


def test_an_encrypted_get_is_decrypted_and_checked_against_the_record(
        resource: Resource, workdir: Path, double: Double, tmp_path: Path, scratch_api: ScratchApiServer) -> None:
    key = age_key(tmp_path)
    repo = bare_repo(tmp_path / "backups.git")
    source = backup_source(f"file://{repo}", recipients=[key.recipient], identities=key.identity)
    resource.secrets.append(key.identity)
    scratch_config(workdir, controller=scratch_api.address)
    backup = take_backup(resource, workdir, double, source, repo, get_params={})  # the default
    double.set(kubeconfig_text=scratch_api.admin_kubeconfig())
    assert (workdir / "cluster" / "backup.tar.gz.age").is_file()
    drill(resource, workdir, source).expect_ok()
    (restored,) = double.state()["restores"]
    assert restored["sha256"] == backup.record["sha256"]


@pytest.mark.parametrize("server", ["https://192.0.2.10:6443", "https://198.51.100.99:6443"])
def test_a_kubeconfig_naming_another_api_server_fails_the_drill(
        resource: Resource, workdir: Path, double: Double, backup: Backup, scratch_api: ScratchApiServer,
        server: str) -> None:
    """The restored admin kubeconfig names production (192.0.2.10): k0sctl's wait proved nothing."""
    double.set(kubeconfig_text=scratch_api.admin_kubeconfig(server))
    run = drill(resource, workdir, backup.source)
    what = "a host of the backed-up cluster" if "192.0.2" in server else "not a scratch controller"
    assert run.returncode == 1 and run.error_lines == [
        f"error: drill failed: the scratch cluster's admin kubeconfig names {server}, {what}; the scratch control "
        "plane was not proven; the scratch hosts were reset"], run.stderr
    assert names(double) == ["reset", "apply", "kubeconfig", "reset"] and scratch_api.requests == []


# -- refusals: before k0sctl runs (no call at all, not even `version`) -------------------------------

REFUSALS = {
    "same address": (SCRATCH, [{"role": "single", "ssh": {"address": "192.0.2.11", "user": "root"}}],
                     "drill refused: spec.hosts[0].ssh.address 192.0.2.11 is a host of cluster 'prod-eu'"),
    "same address, other spelling": (SCRATCH, [{"role": "single", "openSSH": {"address": "::FFFF:192.0.2.10"}}],
                                     "drill refused: spec.hosts[0].openSSH.address ::FFFF:192.0.2.10 "
                                     "(reached as 192.0.2.10) is a host"),
    "through a bastion": (SCRATCH, [{"role": "single", "ssh": {"address": "198.51.100.20", "bastion": {
        "address": "192.0.2.10", "user": "root"}}}],
        "drill refused: spec.hosts[0].ssh.bastion.address 192.0.2.10 is a host of cluster 'prod-eu'"),
    "same name": (CLUSTER_NAME, None, "drill refused: the scratch cluster's metadata.name 'prod-eu' is the name"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_a_drill_that_could_reach_production_is_refused_before_k0sctl(
        resource: Resource, workdir: Path, double: Double, backup: Backup, case: str) -> None:
    name, hosts, expected = REFUSALS[case]
    scratch_config(workdir, name, hosts)
    run = drill(resource, workdir, backup.source, confirm=name)
    assert run.returncode == 1
    assert len(run.error_lines) == 1 and run.error_lines[0].startswith(f"error: {expected}"), run.stderr
    assert double.calls() == []


@pytest.mark.parametrize(("confirm", "expected"), [
    (None, "params.confirm: required for drill; set it to the scratch cluster's name ('scratch-eu')"),
    ("prod-eu", "params.confirm: 'prod-eu' does not match the scratch cluster's metadata.name 'scratch-eu'"),
])
def test_confirm_must_name_the_scratch_cluster(resource: Resource, workdir: Path, double: Double, backup: Backup,
                                              confirm: str | None, expected: str) -> None:
    run = drill(resource, workdir, backup.source, confirm=confirm)  # None: no confirm at all
    assert run.returncode == 1 and run.error_lines[0].startswith(f"error: {expected}"), run.stderr
    assert double.calls() == []


def test_a_backup_that_records_no_hosts_is_refused(resource: Resource, workdir: Path, double: Double,
                                                   backup: Backup) -> None:
    """Backups taken before the record existed: nothing proves the scratch hosts are not production's."""
    meta = workdir / "cluster" / "metadata.json"
    meta.write_text(json.dumps({k: v for k, v in backup.record.items() if k != "hosts"}), encoding="utf-8")
    run = drill(resource, workdir, backup.source)
    assert run.returncode == 1
    assert "records no host addresses" in run.error_lines[0] and "take a new backup" in run.error_lines[0]
    assert double.calls() == []


@pytest.mark.parametrize(("changed", "expected"), [
    ({"hosts": "192.0.2.10"}, "drill refused: metadata.json of backup {ref} records its hosts in a form a drill "
                              "cannot check (expected a list of strings)"),
    ({"endpoints": [1]}, "drill refused: metadata.json of backup {ref} records its endpoints in a form"),
    ({"addresses": ["${PROD}"]}, "drill refused: backup {ref} records the host address '${{PROD}}', which k0sctl "
                                 "fills in from environment variables"),
    ({"host_keys": ["SHA256:" + "A" * 43, 7]}, "drill refused: metadata.json of backup {ref} records its host_keys "
                                                 "in a form a drill cannot check"),
    ({"sha256": 12}, "params.restore_from: metadata.json records no sha256 for cluster/backup.tar.gz"),
    ({"kind": None}, "restore_from: version {ref} is not a backup (kind: None); there is nothing to drill"),
])
def test_a_record_in_a_form_a_drill_cannot_check_is_refused(resource: Resource, workdir: Path, double: Double,
                                                           backup: Backup, changed: dict[str, Any],
                                                           expected: str) -> None:
    """A get's metadata.json edited by hand (or by anyone who can write the folder): refused in one line."""
    meta = workdir / "cluster" / "metadata.json"
    meta.write_text(json.dumps({**backup.record, **changed}), encoding="utf-8")
    run = drill(resource, workdir, backup.source)
    assert run.returncode == 1 and len(run.error_lines) == 1, run.stderr
    assert run.error_lines[0].startswith(f"error: {expected.format(ref=backup.ref[:12])}"), run.stderr
    assert double.calls() == []


def test_restore_from_must_be_a_verified_get_of_a_backup(resource: Resource, workdir: Path, double: Double,
                                                         backup: Backup) -> None:
    get_dir = workdir / "cluster"
    shutil.copy(get_dir / "backup.tar.gz", workdir / "snap.tar.gz")
    file_run = drill(resource, workdir, backup.source, restore_from="snap.tar.gz")
    assert "is not a directory; a drill needs a get of this resource" in file_run.error_lines[0]

    (get_dir / "backup.tar.gz").write_bytes((get_dir / "backup.tar.gz").read_bytes() + b"\0")
    tampered = drill(resource, workdir, backup.source)
    assert "does not match the sha256 recorded in metadata.json" in tampered.error_lines[0]

    (get_dir / "backup.tar.gz").unlink()
    (get_dir / "backup.tar.gz").symlink_to(workdir / "snap.tar.gz")
    linked = drill(resource, workdir, backup.source)
    assert "cluster/backup.tar.gz is a symbolic link, not a regular file" in linked.error_lines[0]

    (get_dir / "backup.tar.gz").unlink()
    skipped = drill(resource, workdir, backup.source)
    assert "holds neither backup.tar.gz nor backup.tar.gz.age" in skipped.error_lines[0]

    (get_dir / "metadata.json").write_text(json.dumps({"ref": "a" * 40, "kind": "init"}), encoding="utf-8")
    init = drill(resource, workdir, backup.source)
    assert "is not a backup (kind: init)" in init.error_lines[0]
    assert double.calls() == []


@pytest.mark.parametrize(("params", "expected"), [
    ({"kep": True}, "params.kep: unknown key (did you mean keep?)"),
    ({"keep": "yes"}, "params.keep: expected a boolean (true or false), got a string"),
    ({"config": None}, "params.config: required"),
    ({"restore_from": None}, "params.restore_from: required"),
    ({"backup_first": True}, "params.backup_first: not a parameter of command drill (it belongs to apply and reset)"),
])
def test_params_are_checked_strictly(resource: Resource, workdir: Path, double: Double, params: dict[str, Any],
                                     expected: str) -> None:
    request = {"command": "drill", "config": SCRATCH_CONFIG, "restore_from": "cluster", "confirm": SCRATCH, **params}
    run = resource.put({"source": {}, "params": {k: v for k, v in request.items() if v is not None}}, workdir)
    assert run.returncode == 1 and run.error_lines == [f"error: {expected}"]
    assert double.calls() == []


def test_a_backup_of_an_alias_records_where_it_leads(resource: Resource, workdir: Path, double: Double,
                                                     tmp_path: Path) -> None:
    """Production reached as `prod-1` with options.HostName: the record says where k0sctl connected, so a
    scratch config naming the IP (in another spelling) is refused."""
    repo = bare_repo(tmp_path / "backups.git")
    source = backup_source(f"file://{repo}", plaintext=True)
    (workdir / "config" / "k0sctl.yaml").write_text(k0sctl_yaml(hosts=[
        {"role": "single", "ssh": {"address": "prod-1", "options": {"HostName": "192.0.2.10"}}}]), encoding="utf-8")
    scratch_config(workdir, hosts=[{"role": "single", "ssh": {"address": "3221225994"}}])
    backup = take_backup(resource, workdir, double, source, repo)
    assert backup.record["hosts"] == ["prod-1"] and backup.record["endpoints"] == ["prod-1", "192.0.2.10"]
    run = drill(resource, workdir, source)
    assert run.error_lines == [f"error: drill refused: spec.hosts[0].ssh.address 3221225994 (reached as 192.0.2.10) "
                               f"is a host of cluster 'prod-eu' (backup {backup.ref[:12]}); a drill resets its hosts "
                               "and never runs on the cluster it restores"]
    assert double.calls() == []


def test_a_dollar_anywhere_in_the_scratch_config_is_refused(resource: Resource, workdir: Path, double: Double,
                                                            backup: Backup) -> None:
    """k0sctl substitutes variables in the text before it parses it: even a comment could become hosts."""
    path = workdir / SCRATCH_CONFIG
    path.write_text(path.read_text(encoding="utf-8") + "\n# ${EXTRA_HOSTS}\n", encoding="utf-8")
    run = drill(resource, workdir, backup.source)
    assert len(run.error_lines) == 1 and run.error_lines[0].startswith(
        "error: drill refused: the scratch config holds a '$' (line "), run.stderr
    assert double.calls() == []
