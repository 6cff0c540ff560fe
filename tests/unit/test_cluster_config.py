"""The k0sctl.yaml reader: several YAML documents, the cluster chosen as k0sctl chooses it, the bounds
over the whole file, the SSH bastion of a winRM host (config.cluster, config.safe_load)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from k0sctl_resource.config.cluster import Endpoint, parse_cluster
from k0sctl_resource.config.safe_load import MAX_NODES, load_yaml_documents
from k0sctl_resource.runtime.errors import ResourceError

PATH = Path("config/k0sctl.yaml")
CLUSTER = """apiVersion: k0sctl.k0sproject.io/v1beta1
kind: Cluster
metadata: {name: two-docs}
spec:
  hosts:
  - role: controller
    ssh: {address: 192.0.2.10, port: 2222}
  - role: worker
    ssh: {address: 192.0.2.11}
  k0s: {version: v1.31.2+k0s.0}
"""
K0S = """apiVersion: k0s.k0sproject.io/v1beta1
kind: ClusterConfig
metadata: {name: k0s}
spec: {api: {port: 6443}}
"""
MANIFEST = "apiVersion: v1\nkind: Namespace\nmetadata: {name: apps}\n"


def addresses(text: str) -> list[tuple[str, int]]:
    config = parse_cluster(text, PATH)
    return [(h.endpoint.address, h.endpoint.port) for h in config.hosts if h.endpoint is not None]


@pytest.mark.parametrize("text", [
    CLUSTER + "---\n" + K0S,
    K0S + "---\n" + CLUSTER,  # k0sctl v0.22+ takes the Cluster wherever it is
    "---\n" + CLUSTER + "...\n---\n" + K0S + "---\n" + MANIFEST + "---\n",
    CLUSTER.replace("kind: Cluster", "kind: cluster") + "---\n" + K0S,  # as k0sctl's own smoke tests spell it
])
def test_the_cluster_document_of_several(text: str) -> None:
    config = parse_cluster(text, PATH)
    assert config.name == "two-docs" and config.k0s_version == "v1.31.2+k0s.0"
    assert addresses(text) == [("192.0.2.10", 2222), ("192.0.2.11", 22)]


@pytest.mark.parametrize(("text", "message"), [
    (K0S, "k0sctl needs exactly one document of apiVersion k0sctl.k0sproject.io/v1beta1 and kind Cluster; "
          "none is"),
    (CLUSTER + "---\n" + K0S + "---\n" + CLUSTER.replace("two-docs", "other"),
     "k0sctl needs exactly one document of apiVersion k0sctl.k0sproject.io/v1beta1 and kind Cluster; "
     "documents 1, 3 are"),
    (CLUSTER + "---\n" + CLUSTER.replace("kind: Cluster", "kind: CLUSTER"), "documents 1, 2 are"),
    (CLUSTER + "---\nfoo: bar\n", "document 2: apiVersion is missing (k0sctl needs apiVersion and kind in every"),
    (CLUSTER + "---\n- a list\n", "document 2: must be a mapping with apiVersion and kind, got a list"),
    ("metadata: {name: x}\nspec: {hosts: []}\n", "config/k0sctl.yaml: apiVersion is missing"),
    ("apiVersion: k0sctl.k0sproject.io/v1beta1\nmetadata: {name: x}\n", "config/k0sctl.yaml: kind is missing"),
    ("apiVersion: k0sctl.k0sproject.io/v1beta1\nkind: [Cluster]\n", "kind must be a string, got a list"),
    (CLUSTER.replace("kind: Cluster", "kind: CLUSTER"), "kind must be Cluster, got 'CLUSTER'"),
    (CLUSTER.replace("k0sctl.k0sproject.io", "K0sctl.k0sproject.io"),
     "apiVersion must be k0sctl.k0sproject.io/v1beta1, got 'K0sctl.k0sproject.io/v1beta1'"),
    ("", "no YAML document in it"),
    ("---\n---\n# only comments\n", "no YAML document in it"),
])
def test_what_k0sctl_would_refuse_is_one_line(text: str, message: str) -> None:
    with pytest.raises(ResourceError) as exc:
        parse_cluster(text, PATH)
    assert message in exc.value.message and "\n" not in exc.value.message


def laughs(key: str) -> str:
    """A document whose aliases expand to about 74,000 values: under the bound alone."""
    line = ",".join(["1"] * 9)
    text = f"apiVersion: v1\nkind: ConfigMap\n{key}a: &{key}a [{line}]\n"
    for a, b in zip("abcd", "bcde", strict=True):
        text += f"{key}{b}: &{key}{b} [" + ",".join([f"*{key}{a}"] * 9) + "]\n"
    return text


def test_the_alias_bound_holds_for_the_whole_file() -> None:
    assert len(load_yaml_documents(CLUSTER + "---\n" + laughs("x"), "one")) == 2
    with pytest.raises(ResourceError, match=rf"^two: aliases would expand it to more than {MAX_NODES} values"):
        load_yaml_documents(CLUSTER + "---\n" + laughs("x") + "---\n" + laughs("y"), "two")


def test_every_empty_document_counts_towards_the_bound() -> None:
    with pytest.raises(ResourceError, match="alias bomb"):
        load_yaml_documents("---\n" * (MAX_NODES + 1), "empties")


def test_the_depth_bound_holds_in_a_later_document() -> None:
    with pytest.raises(ResourceError, match="nested deeper than 100 levels"):
        parse_cluster(CLUSTER + "---\na: " + "[" * 200 + "]" * 200 + "\n", PATH)


def test_a_syntax_error_in_a_later_document_is_not_valid_yaml() -> None:
    with pytest.raises(ResourceError, match=r"^config/k0sctl.yaml: not valid YAML \(line 12\)"):
        parse_cluster(CLUSTER + "---\na: b: c\n", PATH)


def test_a_winrm_host_behind_an_ssh_bastion() -> None:
    text = CLUSTER.replace("    ssh: {address: 192.0.2.11}\n", """    winRM:
      address: 198.51.100.7
      useHTTPS: true
      bastion: {address: 192.0.2.99, user: jump, port: 2200}
  - role: worker
    winRM: {address: 198.51.100.8, bastion: {address: bastion.example.test}}
""")
    hosts = parse_cluster(text, PATH).hosts
    assert [(h.connection, h.endpoint, h.bastion, h.probe_target) for h in hosts[1:]] == [
        ("winRM", Endpoint("198.51.100.7", 5986, "winRM"), Endpoint("192.0.2.99", 2200, "ssh"),
         Endpoint("192.0.2.99", 2200, "ssh")),
        ("winRM", Endpoint("198.51.100.8", 5985, "winRM"), Endpoint("bastion.example.test", 22, "ssh"),
         Endpoint("bastion.example.test", 22, "ssh")),
    ]
    assert parse_cluster(text, PATH).addresses() == ["192.0.2.10", "198.51.100.7", "198.51.100.8"]


@pytest.mark.parametrize(("bastion", "message"), [
    ("[192.0.2.99]", "spec.hosts[1].winRM.bastion must be a mapping"),
    ("{user: jump}", "spec.hosts[1].winRM.bastion.address is missing"),
    ("{address: 192.0.2.99, port: 65536}", "spec.hosts[1].winRM.bastion.port must be a port number, got 65536"),
])
def test_a_bad_winrm_bastion(bastion: str, message: str) -> None:
    text = CLUSTER.replace("    ssh: {address: 192.0.2.11}\n",
                           f"    winRM: {{address: 198.51.100.7, bastion: {bastion}}}\n")
    with pytest.raises(ResourceError, match=r"^config/k0sctl.yaml: ") as exc:
        parse_cluster(text, PATH)
    assert message in exc.value.message


def test_ping_probes_the_bastion_of_a_winrm_host() -> None:
    """A real probe on loopback: the winRM host's own port (127.0.0.2:5985) is never tried."""
    from k0sctl_resource.ping.model import PingOptions
    from k0sctl_resource.ping.probe import probe_cluster

    with socket.create_server(("127.0.0.1", 0)) as bastion:
        port = bastion.getsockname()[1]
        text = CLUSTER.replace("  - role: worker\n    ssh: {address: 192.0.2.11}\n", "").replace(
            "    ssh: {address: 192.0.2.10, port: 2222}\n",
            f"    winRM: {{address: 127.0.0.2, bastion: {{address: 127.0.0.1, port: {port}}}}}\n")
        report = probe_cluster(parse_cluster(text, PATH), PingOptions(count=1, timeout=2.0, traceroute=False))
    [host] = report.hosts
    assert host.describe() == f"127.0.0.2:5985 (controller) via bastion 127.0.0.1:{port}"
    assert (report.stats.tcp_connects, host.reachable) == (1, True)
