"""The drill's proof of the scratch control plane (steps/scratch_api.py) and the restore hooks (steps/restore_hooks.py),
against a real TLS server on a loopback address (tests/support/scratch_api.py) and real files."""

from __future__ import annotations

import base64
import stat
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from k0sctl_resource.config.cluster import load_cluster
from k0sctl_resource.runtime.errors import ResourceError
from k0sctl_resource.shared import scratch_api as proof
from k0sctl_resource.shared.restore_hooks import admin_conf_hook, data_dir, with_restore_hooks
from tests.support.scratch_api import ScratchApiServer, make_ca

PRODUCTION = ["192.0.2.10", "192.0.2.11"]


def config(tmp_path: Path, hosts: str, extra: str = "") -> Path:
    path = tmp_path / "k0sctl.yaml"
    path.write_text("apiVersion: k0sctl.k0sproject.io/v1beta1\nkind: Cluster\nmetadata:\n  name: scratch\n"
                    f"spec:\n  hosts:\n{hosts}  k0s:\n    version: v1.31.2+k0s.0\n{extra}", encoding="utf-8")
    return path


def controller(address: str, more: str = "") -> str:
    return f"  - role: controller\n    ssh:\n      address: {address}\n{more}"


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(proof, "WAIT_S", 2.0)
    monkeypatch.setattr(proof, "POLL_S", 0.05)


def prove(server: ScratchApiServer, tmp_path: Path, kubeconfig: str | None = None) -> dict[str, object]:
    scratch = load_cluster(config(tmp_path, controller(server.address)))
    text = kubeconfig or server.admin_kubeconfig()
    named = yaml.safe_load(text)["clusters"][0]["cluster"]["server"]
    private = tmp_path / "private"
    private.mkdir(exist_ok=True)
    return proof.prove(text, named, scratch, PRODUCTION, private, time.monotonic())


def test_the_scratch_api_server_answers(scratch_api: ScratchApiServer, tmp_path: Path) -> None:
    facts = prove(scratch_api, tmp_path)
    assert facts["scratch_endpoints"] == scratch_api.address and float(str(facts["restore_s"])) >= 0
    assert [path for _, path in scratch_api.requests] == ["/readyz", proof.ENDPOINTS]


def test_restored_endpoints_naming_production_are_waited_for(scratch_api: ScratchApiServer, tmp_path: Path,
                                                             quick: None) -> None:
    scratch_api.endpoint_answers = [["192.0.2.10"], ["192.0.2.10", scratch_api.address]]
    assert prove(scratch_api, tmp_path)["scratch_endpoints"] == scratch_api.address
    assert [p for _, p in scratch_api.requests].count(proof.ENDPOINTS) == 3


def test_endpoints_that_keep_naming_production_fail_the_drill(scratch_api: ScratchApiServer, tmp_path: Path,
                                                              quick: None) -> None:
    scratch_api.endpoints = ["192.0.2.10"]
    with pytest.raises(ResourceError, match=r"^drill failed: the kubernetes Endpoints did not come to name scratch "
                                            r"controllers only within 2 s \(last: the kubernetes Endpoints name "
                                            r"192\.0\.2\.10\)$"):
        prove(scratch_api, tmp_path)


def test_a_scratch_api_server_that_is_not_ready_fails_the_drill(scratch_api: ScratchApiServer, tmp_path: Path,
                                                                quick: None) -> None:
    scratch_api.ready = False
    with pytest.raises(ResourceError, match=r"did not answer /readyz within 2 s \(last: HTTP 500\)$"):
        prove(scratch_api, tmp_path)


def test_an_api_server_with_another_ca_is_not_the_restored_cluster(scratch_api: ScratchApiServer, tmp_path: Path,
                                                                   quick: None) -> None:
    other, _, _ = make_ca(tmp_path / "other", scratch_api.address)
    text = scratch_api.admin_kubeconfig()
    good = base64.b64encode(scratch_api.ca.read_bytes()).decode()
    text = text.replace(good, base64.b64encode(other.read_bytes()).decode())
    with pytest.raises(ResourceError, match=r"\(last: its certificate is not signed by the restored CA\)$"):
        prove(scratch_api, tmp_path, text)


@pytest.mark.parametrize(("server", "what"), [("https://192.0.2.10:6443", "a host of the backed-up cluster"),
                                              ("https://198.51.100.99:6443", "not a scratch controller")])
def test_a_kubeconfig_naming_another_server_is_refused_without_a_request(
        scratch_api: ScratchApiServer, tmp_path: Path, server: str, what: str) -> None:
    with pytest.raises(ResourceError, match=f"names {server}, {what}; the scratch control plane was not proven"):
        prove(scratch_api, tmp_path, scratch_api.admin_kubeconfig(server))
    assert scratch_api.requests == []


# -- the restore hooks ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("host", "expected"), [
    ({}, "/var/lib/k0s"),
    ({"dataDir": "/srv/k0s"}, "/srv/k0s"),
    ({"dataDir": "/srv/k0s", "installFlags": ["--data-dir=/data/k0s"]}, "/data/k0s"),
    ({"installFlags": ["--debug", "--data-dir /data/k0s"]}, "/data/k0s"),
])
def test_the_data_dir_is_the_one_k0sctl_uses(host: dict[str, object], expected: str) -> None:
    assert data_dir(host) == expected


def test_controllers_get_the_hooks_in_a_private_copy(tmp_path: Path) -> None:
    hosts = (controller("198.51.100.20", "    dataDir: /srv/k0s\n    hooks:\n      apply:\n        before:\n"
                        "          - echo mine\n")
             + "  - role: worker\n    ssh:\n      address: 198.51.100.21\n")
    original = config(tmp_path, hosts, "---\napiVersion: k0s.k0sproject.io/v1beta1\nkind: ClusterConfig\n")
    written = original.read_bytes()
    (tmp_path / "private").mkdir()
    copy = with_restore_hooks(load_cluster(original), tmp_path / "private")
    assert original.read_bytes() == written and copy.path.parent == tmp_path / "private"
    assert stat.S_IMODE(copy.path.stat().st_mode) == 0o600
    docs = list(yaml.safe_load_all(copy.path.read_text(encoding="utf-8")))
    assert docs[1]["kind"] == "ClusterConfig"
    ctl, worker = docs[0]["spec"]["hosts"]
    assert ctl["hooks"]["apply"] == {"before": ["echo mine", admin_conf_hook("/srv/k0s")],
                                     "after": ["rm -f -- ~/k0s_k0s_backup.yaml"]}
    assert "hooks" not in worker
    assert load_cluster(copy.path).hosts == load_cluster(original).hosts


def test_the_hook_removes_the_restored_admin_conf_where_k0s_is_not_running(tmp_path: Path) -> None:
    (tmp_path / "pki").mkdir()
    (tmp_path / "pki" / "admin.conf").write_text("server: https://192.0.2.10:6443\n", encoding="utf-8")
    subprocess.run(["sh", "-c", admin_conf_hook(str(tmp_path))], check=True)  # no k0s runs on this machine
    assert not (tmp_path / "pki" / "admin.conf").exists()
