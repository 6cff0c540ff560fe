"""Where the REAL k0sctl (the pinned release) connects, recorded by listeners, against what `config.endpoints` says.

Each case is a host entry that hides where it leads (`options.HostName`, `options.Port`, ProxyJump in its
forms, bastions with their own options, chains, `openSSH` with options, aliases and inet_aton spellings).
k0sctl (`apply --dry-run`) is stopped as soon as a listener records its first connection; that
(host, port) must be one of the endpoints computed for the entry, and the drill guard must refuse the
entry when the backup recorded that listener's address. Through a real sshd bastion the connection the
bastion opens onward is recorded too, so the inner hop of a chain is checked as well.
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from k0sctl_resource.config import cluster
from k0sctl_resource.config.endpoints import host_endpoints
from k0sctl_resource.config.spelling import canonical_host, ip_of
from k0sctl_resource.gitstore.commit_format import BackupFacts
from k0sctl_resource.k0sctl import host_keys, ssh_config
from k0sctl_resource.runtime.errors import ResourceError
from k0sctl_resource.shared.drill_guard import check_not_production
from k0sctl_resource.shared.get_folder import FolderRecord
from tests.support import PINNED
from tests.support.k0sctl_fixtures import real_k0sctl
from tests.support.listener import Listeners
from tests.support.sshd import SshServer

pytestmark = [pytest.mark.k0sctl, pytest.mark.sshd]

FIRST_CONNECTION_S = 60.0  # a bound, not a pace: k0sctl normally connects within a second
Target = tuple[str, int]


def as_int(host: str) -> str:
    return str(int(ipaddress.IPv4Address(host)))


def as_octal(host: str) -> str:
    return ".".join(f"0{int(p):o}" for p in host.split("."))


def alias_config(folder: Path, target: Target) -> Path:
    path = folder / f"ssh_config-{target[1]}"
    path.write_text(f"Host prod-alias\n  HostName {as_int(target[0])}\n  Port {target[1]}\n", encoding="utf-8")
    return path


# name -> (listener host, entry built from (target, key path, bastion sshd)); the entry leads to target
CASES: dict[str, tuple[str, Callable[[Target, str, SshServer], dict[str, Any]]]] = {
    "ssh HostName+Port": ("127.0.0.31", lambda t, k, b: {"ssh": {
        "address": "scratch-1.example.test", "keyPath": k, "options": {"HostName": t[0], "Port": t[1]}}}),
    "ssh native port beats options.Port": ("127.0.0.32", lambda t, k, b: {"ssh": {
        "address": t[0], "port": t[1], "keyPath": k, "options": {"Port": 9}}}),
    "ssh HostName %h": ("127.0.0.33", lambda t, k, b: {"ssh": {
        "address": t[0], "keyPath": k, "options": {"HostName": "%h", "Port": t[1]}}}),
    "ssh ProxyJump list": ("127.0.0.34", lambda t, k, b: {"ssh": {
        "address": "scratch-1.example.test", "keyPath": k,
        "options": {"ProxyJump": f"root@{t[0]}:{t[1]},root@127.0.0.99:22"}}}),
    "ssh ProxyJump ssh://": ("127.0.0.35", lambda t, k, b: {"ssh": {
        "address": "scratch-1.example.test", "keyPath": k, "options": {"ProxyJump": f"ssh://root@{t[0]}:{t[1]}"}}}),
    "bastion with its own HostName": ("127.0.0.36", lambda t, k, b: {"ssh": {
        "address": "scratch-1.example.test", "keyPath": k, "bastion": {
            "address": "jump.example.test", "keyPath": k, "options": {"HostName": t[0], "Port": t[1]}}}}),
    "bastion of a bastion": ("127.0.0.37", lambda t, k, b: {"ssh": {
        "address": "scratch-1.example.test", "keyPath": k, "bastion": {
            "address": "jump-2.example.test", "keyPath": k, "bastion": {"address": t[0], "port": t[1],
                                                                         "keyPath": k}}}}),
    "bastion with a ProxyJump": ("127.0.0.38", lambda t, k, b: {"ssh": {
        "address": "scratch-1.example.test", "keyPath": k, "bastion": {
            "address": "jump.example.test", "keyPath": k, "options": {"ProxyJump": f"{t[0]}:{t[1]}"}}}}),
    "winRM through a bastion": ("127.0.0.39", lambda t, k, b: {"winRM": {
        "address": "scratch-1.example.test", "bastion": {"address": t[0], "port": t[1], "keyPath": k}}}),
    "through a real sshd bastion to HostName": ("127.0.0.40", lambda t, k, b: {"ssh": {
        "address": "scratch-1.example.test", "keyPath": k, "options": {"HostName": t[0], "Port": t[1]},
        "bastion": {"address": b.host, "port": b.port, "user": b.user, "keyPath": k}}}),
    "openSSH options": ("127.0.0.41", lambda t, k, b: {"openSSH": {
        "address": "scratch-1.example.test", "keyPath": k, "options": {"HostName": t[0], "Port": t[1]}}}),
    "openSSH integer address": ("127.0.0.42", lambda t, k, b: {"openSSH": {
        "address": as_int(t[0]), "port": t[1], "keyPath": k}}),
    "openSSH octal address": ("127.0.0.43", lambda t, k, b: {"openSSH": {
        "address": as_octal(t[0]), "port": t[1], "keyPath": k}}),
    "openSSH user@ and ssh:// destinations": ("127.0.0.44", lambda t, k, b: {"openSSH": {
        "address": f"ssh://root@{t[0]}:{t[1]}", "keyPath": k}}),
    "openSSH ProxyJump": ("127.0.0.45", lambda t, k, b: {"openSSH": {
        "address": "scratch-1.example.test", "keyPath": k, "options": {"ProxyJump": f"root@{t[0]}:{t[1]}"}}}),
    "openSSH configPath alias": ("127.0.0.46", lambda t, k, b: {"openSSH": {
        "address": "prod-alias", "keyPath": k, "configPath": str(alias_config(b.root, t))}}),
    "ssh 0.0.0.0": ("127.0.0.1", lambda t, k, b: {"ssh": {"address": "0.0.0.0", "port": t[1], "keyPath": k}}),  # noqa: S104
}


def exactly(host: str) -> str:
    """The IP a host spells, loopback addresses kept apart (0.0.0.0 reaches 127.0.0.1), else the name."""
    ip = ip_of(host)
    return host if ip is None else "127.0.0.1" if ip.is_unspecified else str(ip)


@pytest.fixture(scope="module")
def bastion(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    with SshServer(tmp_path_factory.mktemp("bastion")) as server:
        yield server


def first_connection(config: Path, home: Path, listeners: Listeners) -> Target:
    env = {**os.environ, "HOME": str(home), "XDG_CACHE_HOME": str(home / "cache"),
           "SSH_KNOWN_HOSTS": str(home / "known_hosts"),
           "DISABLE_TELEMETRY": "true", "DISABLE_UPGRADE_CHECK": "true"}
    proc = subprocess.Popen([str(real_k0sctl(PINNED)), "apply", "--dry-run", "--config", str(config)], env=env,
                            cwd=home, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        connected = listeners.wait(FIRST_CONNECTION_S)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        out = proc.communicate()[0].decode(errors="replace")
    assert connected, f"k0sctl connected to no listener:\n{out[-1500:]}"
    return listeners.seen[0]


@pytest.mark.parametrize("case", sorted(CASES))
def test_k0sctl_connects_where_the_endpoints_say(case: str, tmp_path: Path, bastion: SshServer) -> None:
    host, entry = CASES[case]
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / "known_hosts").touch()  # as the step's private file: empty, filled by trust on first use
    with Listeners() as listeners:
        target = listeners.add(host)
        item = {"role": "single", **entry(target, str(bastion.client_key_path), bastion)}
        doc = {"apiVersion": cluster.CLUSTER_API, "kind": "Cluster", "metadata": {"name": "scratch"},
               "spec": {"hosts": [item], "k0s": {"version": "v1.31.2+k0s.0"}}}
        config = tmp_path / "k0sctl.yaml"
        config.write_text(json.dumps(doc), encoding="utf-8")
        reached = first_connection(config, home, listeners)

    predicted = host_endpoints(0, item, ssh_config.ssh_g)
    assert not predicted.problems, predicted.problems
    exact = {(exactly(h.host), h.port) for h in predicted.hops}
    assert reached in exact, predicted
    assert canonical_host(reached[0]) in predicted.canonical
    record = FolderRecord("a" * 40, "backup", BackupFacts(cluster="prod", hosts=(reached[0],)))
    with pytest.raises(ResourceError, match=r"^drill refused: spec\.hosts\[0\]\.") as refused:
        check_not_production(cluster.parse_cluster(config.read_text(), config), record, ssh_g=ssh_config.ssh_g)
    keys = host_keys.recorded_keys(home / "known_hosts", None)
    if "sshd bastion" in case:  # what a backup records: exactly the keys of the hosts rig connected to
        public = bastion.host_key_path.with_name(bastion.host_key_path.name + ".pub").read_text().split()[1]
        assert keys == [host_keys.fingerprint(public)]
    else:
        assert keys == [], "no key exchange with a listener"
    print(f"\n{case}: k0sctl connected to {reached[0]}:{reached[1]}; {refused.value.message}")
