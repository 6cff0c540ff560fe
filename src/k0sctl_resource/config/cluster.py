"""Reading the facts this resource needs from a k0sctl cluster config (k0sctl.yaml).

Only what the resource itself uses is read: the cluster name and, for every host, its role and how
k0sctl connects to it (and through which SSH bastion). k0sctl validates the rest of the file itself.

The file may hold several YAML documents (`---`), e.g. the k0sctl `Cluster` and a k0s `ClusterConfig`.
The cluster is chosen as k0sctl (v0.22 and newer, cmd/flags.go readConfig) chooses it: every
document needs an `apiVersion` and a `kind`, and exactly one must be `k0sctl.k0sproject.io/v1beta1`
`Cluster` (compared ignoring case, then validated exactly). Older k0sctl reads only the first
document; where both succeed they use the same one.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from k0sctl_resource.config.paths import read_regular
from k0sctl_resource.config.safe_load import load_yaml_documents
from k0sctl_resource.config.spelling import LOCALHOST, canonical_host
from k0sctl_resource.runtime.errors import ResourceError
from k0sctl_resource.runtime.workspace import open_private

DEFAULT_CLUSTER_NAME = "k0s-cluster"
CLUSTER_API = "k0sctl.k0sproject.io/v1beta1"
MAX_CONFIG = 4 * 1024 * 1024
GLOB_CHARACTERS = "[]*?{}\\"  # what k0sctl's --config treats as a pattern


def normal_address(text: str) -> str:
    """An address in one spelling, for comparing hosts (`spelling.canonical_host`): every IP spelling the
    resolver accepts as one, every loopback address and a k0sctl `localhost` connection as `localhost`.
    Names are not resolved here."""
    return canonical_host(text)


@dataclass(frozen=True)
class Endpoint:
    """Where a host is reached: an address and the TCP port of its management protocol."""

    address: str
    port: int
    protocol: str  # "ssh", "openSSH" or "winRM"


@dataclass(frozen=True)
class Host:
    """One entry of spec.hosts, as far as this resource cares."""

    index: int
    role: str
    connection: str  # "ssh", "openSSH", "winRM" or "localhost"
    endpoint: Endpoint | None  # None for localhost hosts
    bastion: Endpoint | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)  # the YAML entry

    @property
    def is_controller(self) -> bool:
        return self.role.startswith("controller") or self.role == "single"

    @property
    def probe_target(self) -> Endpoint | None:
        """The endpoint a reachability probe should hit: the bastion when there is one."""
        return self.bastion or self.endpoint

    @property
    def address(self) -> str:
        """The host's own address, normalised (`localhost` for a localhost connection)."""
        return normal_address(self.endpoint.address) if self.endpoint is not None else LOCALHOST

    @property
    def label(self) -> str:
        if self.endpoint is None:
            return f"host[{self.index}] (localhost)"
        return f"{self.endpoint.address} ({self.role})"


@dataclass(frozen=True)
class ClusterConfig:
    path: Path  # the file k0sctl is given: after `private_copy`, the copy of exactly the bytes read
    name: str
    hosts: list[Host] = field(default_factory=list)
    k0s_version: str | None = None
    data: bytes = field(default=b"", repr=False)  # the bytes that were read and checked
    shown: Path | None = None  # the path the config was read from, for messages

    def addresses(self) -> list[str]:
        """The hosts' own addresses (not their bastions), normalised, in config order, once each."""
        return list(dict.fromkeys(host.address for host in self.hosts))

    def private_copy(self, folder: Path, data: bytes | None = None, name: str = "k0sctl.yaml") -> ClusterConfig:
        """This config with `path` set to a private file `folder/name` that holds `data` (default: the bytes
        that were read): k0sctl reads `--config` as a glob pattern, so it is only ever given a path without
        glob characters, holding exactly the bytes that were checked."""
        target = folder / name
        if any(c in GLOB_CHARACTERS for c in str(target)):
            raise ResourceError(f"the private directory {folder} holds one of {GLOB_CHARACTERS!r}, which k0sctl reads "
                                "as a glob in --config; set TMPDIR to a plain path")
        fd = open_private(target, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(self.data if data is None else data)
        return dataclasses.replace(self, path=target, shown=self.shown or self.path)


def _mapping(value: Any, where: str, path: Path) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ResourceError(f"{path}: {where} must be a mapping")
    return value


def _port(value: Any, default: int, where: str, path: Path) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise ResourceError(f"{path}: {where} must be a port number, got {_short(value)}")
    return value


def _endpoint(conn: dict[str, Any], protocol: str, where: str, path: Path) -> Endpoint:
    address = conn.get("address")
    if not isinstance(address, str) or not address.strip():
        raise ResourceError(f"{path}: {where}.address is missing")
    https = bool(conn.get("useHTTPS"))
    default = (5986 if https else 5985) if protocol == "winRM" else 22
    return Endpoint(address=address.strip(), port=_port(conn.get("port"), default, f"{where}.port", path),
                    protocol=protocol)


def _host(index: int, raw: Any, path: Path) -> Host:
    where = f"spec.hosts[{index}]"
    item = _mapping(raw, where, path)
    role = item.get("role", "worker")
    if not isinstance(role, str):
        raise ResourceError(f"{path}: {where}.role must be a string")
    kinds = [k for k in ("ssh", "openSSH", "winRM", "localhost") if item.get(k) is not None]
    if len(kinds) != 1:
        raise ResourceError(
            f"{path}: {where} needs exactly one of ssh, openSSH, winRM or localhost (found {len(kinds)})"
        )
    kind = kinds[0]
    if kind == "localhost":
        return Host(index=index, role=role, connection=kind, endpoint=None, raw=item)
    conn = _mapping(item[kind], f"{where}.{kind}", path)
    endpoint = _endpoint(conn, kind, f"{where}.{kind}", path)
    bastion = None
    if kind in ("ssh", "winRM") and conn.get("bastion") is not None:  # rig: an SSH bastion for both
        bastion = _endpoint(_mapping(conn["bastion"], f"{where}.{kind}.bastion", path), "ssh",
                            f"{where}.{kind}.bastion", path)
    return Host(index=index, role=role, connection=kind, endpoint=endpoint, bastion=bastion, raw=item)


def _cluster_document(documents: list[Any], path: Path) -> dict[str, Any]:
    """The one k0sctl `Cluster` document among `documents` (see the module doc)."""
    documents = [doc for doc in documents if doc is not None]  # k0sctl skips empty documents
    if not documents:
        raise ResourceError(f"{path}: no YAML document in it; k0sctl needs a Cluster document")
    clusters: list[tuple[int, dict[str, Any]]] = []
    for number, doc in enumerate(documents, 1):
        where = f"document {number}: " if len(documents) > 1 else ""
        if not isinstance(doc, dict):
            raise ResourceError(f"{path}: {where}must be a mapping with apiVersion and kind, got {_short(doc)}")
        for key in ("apiVersion", "kind"):
            if isinstance(doc.get(key), dict | list):
                raise ResourceError(f"{path}: {where}{key} must be a string, got {_short(doc[key])}")
            if doc.get(key) in (None, ""):
                raise ResourceError(f"{path}: {where}{key} is missing (k0sctl needs apiVersion and kind in "
                                    "every document)")
        if str(doc["apiVersion"]).lower() == CLUSTER_API and str(doc["kind"]).lower() == "cluster":
            clusters.append((number, doc))
    if len(clusters) != 1:
        found = f"documents {', '.join(str(n) for n, _ in clusters)} are" if clusters else "none is"
        raise ResourceError(f"{path}: k0sctl needs exactly one document of apiVersion {CLUSTER_API} and kind "
                            f"Cluster; {found}")
    root = clusters[0][1]
    if root["apiVersion"] != CLUSTER_API:
        raise ResourceError(f"{path}: apiVersion must be {CLUSTER_API}, got {_short(root['apiVersion'])}")
    if root["kind"] not in ("Cluster", "cluster"):
        raise ResourceError(f"{path}: kind must be Cluster, got {_short(root['kind'])}")
    return root


def parse_cluster(text: str, path: Path) -> ClusterConfig:
    root = _cluster_document(load_yaml_documents(text, str(path)), path)
    metadata = _mapping(root.get("metadata"), "metadata", path)
    name = metadata.get("name") or DEFAULT_CLUSTER_NAME
    if not isinstance(name, str):
        raise ResourceError(f"{path}: metadata.name must be a string")
    spec = _mapping(root.get("spec"), "spec", path)
    raw_hosts = spec.get("hosts") or []
    if not isinstance(raw_hosts, list):
        raise ResourceError(f"{path}: spec.hosts must be a list")
    hosts = [_host(i, h, path) for i, h in enumerate(raw_hosts)]
    k0s = _mapping(spec.get("k0s"), "spec.k0s", path)
    version = k0s.get("version")
    if version is not None and not isinstance(version, str | int | float):
        raise ResourceError(f"{path}: spec.k0s.version must be a string")
    return ClusterConfig(path=path, name=name, hosts=hosts,
                         k0s_version=str(version) if version else None)


def _short(value: Any) -> str:
    """A value for an error message: its type for collections (which may be huge), else a short repr."""
    if isinstance(value, dict | list):
        return f"a {'mapping' if isinstance(value, dict) else 'list'}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def load_cluster(path: Path) -> ClusterConfig:
    """Read and parse the k0sctl config at `path`: a regular file (never a FIFO, a device or a symbolic
    link loop) of at most `MAX_CONFIG` bytes of UTF-8."""
    data = read_regular(path, "k0sctl config", MAX_CONFIG)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ResourceError(f"k0sctl config {path}: not UTF-8 text (byte {exc.start})") from None
    return dataclasses.replace(parse_cluster(text, path), data=data)
