"""Shared fixtures: the resource as Concourse runs it, the k0sctl test double, a put directory."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support import DOUBLE, DOUBLE_DIR, PINNED
from tests.support.resource import Resource

CLUSTER_NAME = "prod-eu"


def k0sctl_yaml(name: str = CLUSTER_NAME, hosts: list[dict[str, Any]] | None = None) -> str:
    hosts = hosts or [
        {"role": "controller", "ssh": {"address": "192.0.2.10", "user": "root", "port": 22}},
        {"role": "worker", "ssh": {"address": "192.0.2.11", "user": "root"}},
    ]
    doc = {
        "apiVersion": "k0sctl.k0sproject.io/v1beta1",
        "kind": "Cluster",
        "metadata": {"name": name},
        "spec": {"hosts": hosts, "k0s": {"version": "v1.31.2+k0s.0"}},
    }
    return json.dumps(doc, indent=2)  # JSON is YAML


@dataclass
class DoubleRun:
    """One run of the double started by `Double.run`."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def fatal(self) -> str | None:
        """The message of k0sctl's `level=fatal` line, unquoted."""
        match = re.search(r'level=fatal msg=(?:"((?:[^"\\]|\\.)*)"|(\S+))', self.stdout)
        if match is None:
            return None
        if match.group(2) is not None:
            return match.group(2)
        return match.group(1).replace('\\"', '"').replace("\\n", "\n")

    def __str__(self) -> str:
        return f"exit {self.returncode}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


@dataclass
class Double:
    """The k0sctl test double (tests/support/k0sctl_double/k0sctl): the scenario it plays (its state file)
    and the calls it records, in `dir`. The steps find it on PATH (`resource`); `run` and `start` run it
    directly with `env` in `dir`, on the config `config` (the double's own tests)."""

    dir: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def state_file(self) -> Path:
        return self.dir / "double-state.json"

    @property
    def record_file(self) -> Path:
        return self.dir / "double-calls.jsonl"

    @property
    def config(self) -> Path:
        return self.dir / "k0sctl.yaml"

    def set(self, **state: Any) -> None:
        current = self.state()
        current.update(state)
        self.state_file.write_text(json.dumps(current), encoding="utf-8")

    def state(self) -> dict[str, Any]:
        if not self.state_file.exists():
            return {}
        loaded: dict[str, Any] = json.loads(self.state_file.read_text(encoding="utf-8"))
        return loaded

    def calls(self) -> list[dict[str, Any]]:
        if not self.record_file.exists():
            return []
        return [json.loads(line) for line in self.record_file.read_text(encoding="utf-8").splitlines() if line]

    def commands(self) -> list[list[str]]:
        return [call["argv"] for call in self.calls() if call["argv"][:1] != ["version"]]

    def environment(self, version: str = PINNED, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {**self.env, "K0SCTL_DOUBLE_VERSION": version, "K0SCTL_DOUBLE_STATE": str(self.state_file),
                "K0SCTL_DOUBLE_RECORD": str(self.record_file), **(extra or {})}

    def run(self, *args: str, version: str = PINNED, env: dict[str, str] | None = None,
            stdin: str | None = None, cwd: Path | None = None, config: bool = True) -> DoubleRun:
        argv = [str(DOUBLE), *args]
        if config and args and args[0] != "version" and not {"-c", "--config"} & set(args):
            argv += ["--config", str(self.config)]
        proc = subprocess.run(argv, env=self.environment(version, env), cwd=cwd or self.dir, capture_output=True,
                              text=True, input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL,
                              timeout=60, check=False)
        return DoubleRun(proc.returncode, proc.stdout, proc.stderr)

    def start(self, *args: str, version: str = PINNED) -> subprocess.Popen[str]:
        argv = [str(DOUBLE), *args, "--config", str(self.config)]
        return subprocess.Popen(argv, env=self.environment(version), cwd=self.dir, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)


@pytest.fixture
def double(tmp_path: Path) -> Double:
    d = Double(tmp_path)
    d.set(running=False)
    return d


@pytest.fixture
def running(double: Double) -> Double:
    """The double's cluster runs k0s: `k0sctl backup` writes an archive of 50,000 bytes."""
    double.set(running=True, backup_bytes=50_000)
    return double


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """An empty bare repository for the backups (file:// URL: `f"file://{repo}"`)."""
    from tests.support.sshd import bare_repo

    return bare_repo(tmp_path / "backups.git")


@pytest.fixture
def resource(tmp_path: Path, double: Double) -> Iterator[Resource]:
    home = tmp_path / "home"
    tmpdir = tmp_path / "tmp"
    home.mkdir()
    tmpdir.mkdir()
    res = Resource(home=home, tmpdir=tmpdir, path_prefix=[DOUBLE_DIR],
                   env={"K0SCTL_DOUBLE_STATE": str(double.state_file),
                        "K0SCTL_DOUBLE_RECORD": str(double.record_file)})
    yield res


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A put's directory with the config repository's k0sctl.yaml at config/k0sctl.yaml."""
    d = tmp_path / "build"
    (d / "config").mkdir(parents=True)
    (d / "config" / "k0sctl.yaml").write_text(k0sctl_yaml(), encoding="utf-8")
    return d


@pytest.fixture(scope="session")
def ssh_keypair(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A freshly generated ed25519 key pair: (private key text, public key line)."""
    d = tmp_path_factory.mktemp("sshkey")
    key = d / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test", "-f", str(key)], check=True)
    return key.read_text(), (d / "id_ed25519.pub").read_text().strip()

