"""A k0s cluster of test nodes driven through the resource's check / in / out with the REAL k0sctl.

:func:`make_cluster` builds the nodes (tests/support/k0s_node.py), a file:// bare backup repository, the put's
directory with config/k0sctl.yaml, and the resource running in the lab's ctl namespace with the real
k0sctl of the given version first on PATH. :meth:`Cluster.close` checks the contract of the doubles:
no command line that the real k0sctl sent was unknown to them.
"""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support import OLDER, PINNED
from tests.support.backup_support import AgeKey, age_key, bare_repo, git
from tests.support.k0s_node import K0S_VERSION, K0sLab, K0sNode
from tests.support.k0sctl_fixtures import real_k0sctl
from tests.support.resource import Resource, StepRun

VERSIONS = (PINNED, OLDER)
CLUSTER = "k0s-lab"
BRANCH = "k0sctl-backup"


@dataclass
class Cluster:
    lab: K0sLab
    resource: Resource
    build: Path
    repo: Path
    key: AgeKey
    source: dict[str, Any]
    version: str

    @property
    def nodes(self) -> list[K0sNode]:
        return self.lab.nodes

    @property
    def leader(self) -> K0sNode:
        return self.lab.nodes[0]

    def write_config(self, k0s_version: str = K0S_VERSION) -> None:
        (self.build / "config" / "k0sctl.yaml").write_text(self.lab.k0sctl_yaml(CLUSTER, k0s_version),
                                                            encoding="utf-8")

    def put(self, command: str, *, source: dict[str, Any] | None = None, timeout: float = 180,
            **params: Any) -> StepRun:
        request = {"source": source or self.source,
                   "params": {"command": command, "config": "config/k0sctl.yaml", **params}}
        return self.resource.put(request, self.build, timeout=timeout)

    def check(self, version: dict[str, str] | None = None) -> StepRun:
        request: dict[str, Any] = {"source": self.source}
        if version is not None:
            request["version"] = version
        return self.resource.check(request).expect_ok()

    def get(self, version: dict[str, str], name: str) -> Path:
        directory = self.build / name
        directory.mkdir()
        self.resource.get({"source": self.source, "version": version}, directory).expect_ok()
        return directory

    def refs(self) -> str:
        return git(self.repo, "for-each-ref")

    def plain_of(self, sealed: bytes) -> bytes:
        """An age file decrypted with the age CLI (not with the resource's code)."""
        return subprocess.run(["age", "-d", "-i", str(self.key.path)], input=sealed, capture_output=True,
                              check=True).stdout

    def stored_plain(self, ref: str) -> bytes:
        """The archive a backup commit holds, decrypted with the age CLI (not with the resource's code)."""
        path = next(p for p in git(self.repo, "ls-tree", "-r", "--name-only", ref).split() if p.endswith(".age"))
        sealed = subprocess.run(["git", "-C", str(self.repo), "show", f"{ref}:{path}"], capture_output=True,
                                check=True).stdout
        return self.plain_of(sealed)

    def node_backups(self) -> list[str]:
        return self.leader.lines("backups.sha256")

    def close(self) -> None:
        for node in self.nodes:
            refused = node.lines("unknown")
            assert refused == [], f"the doubles on {node.hostname} refused command lines of k0sctl: {refused}"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_cluster(lab: K0sLab, tmp_path: Path, version: str, roles: tuple[str, ...] = ("single",)) -> Cluster:
    for role in roles:
        lab.node(role)
    home, tmpdir, build = tmp_path / "home", tmp_path / "tmp", tmp_path / "build"
    for d in (home, tmpdir, build / "config", tmp_path / "keys"):
        d.mkdir(parents=True)
    resource = Resource(home=home, tmpdir=tmpdir, path_prefix=[real_k0sctl(version).parent],
                        argv_prefix=["ip", "netns", "exec", lab.ctl.name])
    key = age_key(tmp_path / "keys")
    resource.secrets += [lab.client.private, key.identity.splitlines()[-1]]
    repo = bare_repo(tmp_path / "backups.git")
    source = {"ssh_private_key": lab.client.private, "ssh_known_hosts": lab.known_hosts(),
              "backup": {"uri": f"file://{repo}", "branch": BRANCH},
              "encryption": {"recipients": [key.recipient], "identities": key.identity}}
    cluster = Cluster(lab, resource, build, repo, key, source, version)
    cluster.write_config()
    return cluster
