"""How a drill spells the addresses it compares with a backup's record (config.cluster.normal_address)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from k0sctl_resource.config import cluster
from k0sctl_resource.config.cluster import normal_address
from k0sctl_resource.runtime.errors import ResourceError
from k0sctl_resource.shared.drill_guard import check_not_production
from k0sctl_resource.shared.get_folder import FolderRecord


@pytest.mark.parametrize(("given", "spelled"), [
    ("192.0.2.10", "192.0.2.10"),
    (" 192.0.2.10 ", "192.0.2.10"),
    ("::ffff:192.0.2.10", "192.0.2.10"),
    ("[2001:DB8::0:1]", "2001:db8::1"),
    ("Node-1.Example.TEST.", "node-1.example.test"),
    ("127.0.0.2", "localhost"),
    ("::1", "localhost"),
    ("LOCALHOST", "localhost"),
    ("198.51.100.7", "198.51.100.7"),
])
def test_one_spelling(given: str, spelled: str) -> None:
    assert normal_address(given) == spelled


def scratch(*hosts: str, bastion: str | None = None, via: str = "ssh") -> cluster.ClusterConfig:
    items = []
    for address in hosts:
        conn: dict[str, object] = {"address": address}
        if bastion:
            conn["bastion"] = {"address": bastion}
        items.append({"role": "controller", via: conn})
    doc = {"apiVersion": cluster.CLUSTER_API, "kind": "Cluster", "metadata": {"name": "scratch"},
           "spec": {"hosts": items or [{"localhost": {}}]}}
    return cluster.parse_cluster(json.dumps(doc), Path("scratch.yaml"))


RAW = {"ref": "a" * 40, "kind": "backup", "cluster": "prod", "hosts": ["192.0.2.10", "2001:db8::1"]}
RECORD = FolderRecord.of_json(RAW)  # as a get's metadata.json is read back


@pytest.mark.parametrize(("config", "refused"), [
    (scratch("198.51.100.20"), None),
    (scratch("198.51.100.20", bastion="192.0.2.99"), None),
    (scratch("198.51.100.20", "192.0.2.10"), "spec.hosts[1].ssh.address 192.0.2.10"),
    (scratch("[2001:db8::0001]"), "spec.hosts[0].ssh.address [2001:db8::0001]"),
    (scratch("198.51.100.20", bastion="192.0.2.10"), "spec.hosts[0].ssh.bastion.address 192.0.2.10"),
    (scratch("198.51.100.20", bastion="192.0.2.99", via="winRM"), None),
    (scratch("198.51.100.20", bastion="::ffff:192.0.2.10", via="winRM"),
     "spec.hosts[0].winRM.bastion.address ::ffff:192.0.2.10"),
    (scratch("192.0.2.10", bastion="198.51.100.9", via="winRM"), "spec.hosts[0].winRM.address 192.0.2.10"),
])
def test_scratch_hosts_against_the_record(config: cluster.ClusterConfig, refused: str | None) -> None:
    if refused is None:
        check_not_production(config, RECORD)
        return
    with pytest.raises(ResourceError, match=r"^drill refused: ") as exc:
        check_not_production(config, RECORD)
    assert refused in exc.value.message


def test_a_localhost_scratch_host_is_refused() -> None:
    """k0sctl's localhost connection is the worker the drill runs on: reset it never."""
    config = cluster.parse_cluster('{"apiVersion": "k0sctl.k0sproject.io/v1beta1", "kind": "Cluster", '
                                   '"metadata": {"name": "s"}, "spec": {"hosts": [{"localhost": {"enabled": true}}]}}',
                                   Path("s.yaml"))
    with pytest.raises(ResourceError, match=r"^drill refused: spec.hosts\[0\].localhost is k0sctl's localhost"):
        check_not_production(config, RECORD)


@pytest.mark.parametrize("config", [scratch("${PROD}"), scratch("$PROD"), scratch("198.51.100.20", bastion="${JUMP}"),
                                    scratch("198.51.100.20", bastion="${JUMP}", via="winRM")])
def test_addresses_k0sctl_fills_in_from_the_environment_are_refused(config: cluster.ClusterConfig) -> None:
    """k0sctl substitutes environment variables (source.k0sctl.env among them) before it connects."""
    with pytest.raises(ResourceError, match=r"^drill refused: .*environment variables"):
        check_not_production(config, RECORD)


@pytest.mark.parametrize(("hosts", "why"), [
    (["${PROD_HOST}"], "environment variables"),
    ({"a": 1}, "cannot check"),
    ("192.0.2.10", "cannot check"),
    ([1, 2], "cannot check"),
])
def test_a_record_of_hosts_that_proves_nothing_is_refused(hosts: object, why: str) -> None:
    with pytest.raises(ResourceError, match=rf"^drill refused: .*{why}"):
        check_not_production(scratch("198.51.100.20"), FolderRecord.of_json({**RAW, "hosts": hosts}))
