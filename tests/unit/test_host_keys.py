"""SSH host keys as the identity a drill compares: recorded from a known_hosts file, scanned from a real sshd."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from k0sctl_resource.config.endpoints import host_endpoints
from k0sctl_resource.gitstore.commit_format import BackupFacts
from k0sctl_resource.k0sctl import host_keys
from k0sctl_resource.runtime.errors import ResourceError
from k0sctl_resource.shared.get_folder import FolderRecord
from k0sctl_resource.shared.host_facts import check_identity
from tests.support.sshd import SshServer, keygen


def fingerprint_of(public_file: Path) -> str:
    out = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", str(public_file)], capture_output=True, text=True,
                         check=True).stdout
    return out.split()[1]


@pytest.fixture
def keys(tmp_path: Path) -> list[tuple[str, str]]:
    """Three public keys: (fingerprint as ssh-keygen prints it, 'type base64')."""
    found = []
    for n in range(3):
        _, public = keygen(tmp_path / f"k{n}")
        found.append((fingerprint_of(tmp_path / f"k{n}.pub"), " ".join(public.split()[:2])))
    return found


def test_fingerprints_are_ssh_keygens(keys: list[tuple[str, str]]) -> None:
    for expected, public in keys:
        assert host_keys.fingerprint(public.split()[1]) == expected
    assert host_keys.fingerprint("not base64!") is None


def test_recorded_keys_by_host_name(tmp_path: Path, keys: list[tuple[str, str]]) -> None:
    known = tmp_path / "known_hosts"
    known.write_text(f"192.0.2.10 {keys[0][1]}\n[prod-2.example.test]:2222,198.51.100.1 {keys[1][1]}\n"
                     f"198.51.100.99 {keys[2][1]}\n# comment\n@revoked * {keys[2][1]}\n", encoding="utf-8")
    subprocess.run(["ssh-keygen", "-H", "-f", str(known)], capture_output=True, check=True)  # hash every name
    hashed = known.read_text(encoding="utf-8")
    assert "192.0.2.10" not in hashed
    assert host_keys.recorded_keys(known, [("192.0.2.10", 22), ("prod-2.example.test", 2222)]) == [keys[0][0],
                                                                                                   keys[1][0]]
    assert host_keys.recorded_keys(known, None) == [k for k, _ in keys], "trust on first use: the whole file"
    assert host_keys.recorded_keys(known, [("prod-2.example.test", 22)]) == [], "another port, another entry"
    assert host_keys.recorded_keys(tmp_path / "missing", None) == []


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    with SshServer(tmp_path_factory.mktemp("sshd")) as server:
        yield server


def sshd_fingerprint(server: SshServer) -> str:
    return fingerprint_of(server.host_key_path.with_name(server.host_key_path.name + ".pub"))


@pytest.mark.sshd
def test_scan_reads_the_key_a_real_sshd_shows(sshd: SshServer) -> None:
    shown = host_keys.scan([(sshd.host, sshd.port), ("127.0.0.1", 9)], timeout=2)  # port 9: nothing listens
    assert shown == {(sshd.host, sshd.port): {sshd_fingerprint(sshd)}}


def record(*keys: str) -> FolderRecord:
    return FolderRecord("b" * 40, "backup", BackupFacts(cluster="prod", hosts=("192.0.2.10",), host_keys=keys or None))


@pytest.mark.sshd
@pytest.mark.parametrize("how", ["address", "HostName", "bastion"])
def test_a_scratch_host_showing_a_production_key_is_refused(sshd: SshServer, how: str) -> None:
    """Whatever spelling or alias leads there: the key the host shows is the production host's."""
    if how == "address":
        conn: dict[str, Any] = {"address": str(int.from_bytes(bytes([127, 0, 0, 1]), "big")), "port": sshd.port}
    elif how == "HostName":
        conn = {"address": "scratch-1.invalid", "options": {"HostName": sshd.host, "Port": sshd.port}}
    else:
        conn = {"address": "scratch-1.invalid", "bastion": {"address": "localhost", "port": sshd.port}}
    found = [host_endpoints(0, {"role": "worker", "ssh": conn})]
    key = re.escape(sshd_fingerprint(sshd))
    with pytest.raises(ResourceError, match=rf"^drill refused: spec\.hosts\[0\]\.ssh\S* \S+ \(reached at \S+\) shows "
                                            rf"the SSH host key {key} of a host of cluster 'prod'"):
        check_identity(found, record("SHA256:other", sshd_fingerprint(sshd)))


@pytest.mark.sshd
def test_scratch_hosts_with_keys_of_their_own_pass_and_the_cost_is_reported(sshd: SshServer) -> None:
    found = [host_endpoints(0, {"role": "worker", "ssh": {"address": sshd.host, "port": sshd.port}})]
    facts = check_identity(found, record("SHA256:" + "A" * 43))
    assert facts["identity_checked"] is True and facts["identity_endpoints_answered"] == 1
    assert 0 <= facts["identity_check_s"] < 60
    assert check_identity(found, record()) == {"identity_checked": False}
    assert json.dumps(facts)


def test_ssh_config_files_matter_only_when_they_could_redirect_a_host(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from k0sctl_resource.k0sctl.ssh_config import files_matter

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr("k0sctl_resource.k0sctl.ssh_config.pwd.getpwuid", lambda uid: (_ for _ in ()).throw(KeyError))
    etc = tmp_path / "etc"
    (etc / "ssh_config.d").mkdir(parents=True)
    config = etc / "ssh_config"
    config.write_text("Include ssh_config.d/*.conf\nHost *\n  SendEnv LANG\n  HashKnownHosts yes\n", encoding="utf-8")
    assert not files_matter(config)
    (etc / "ssh_config.d" / "50-jump.conf").write_text("Host prod-*\n    ProxyJump bastion\n", encoding="utf-8")
    assert files_matter(config), "through an Include"
    (etc / "ssh_config.d" / "50-jump.conf").unlink()
    (tmp_path / "home" / ".ssh").mkdir(parents=True)
    (tmp_path / "home" / ".ssh" / "config").write_text("Host scratch-1\n  HostName 192.0.2.10\n", encoding="utf-8")
    assert files_matter(config), "the user's own file"


def test_a_backup_records_the_keys_of_its_hosts_only(tmp_path: Path, keys: list[tuple[str, str]]) -> None:
    """With source.ssh_known_hosts, the private file holds every given line: only the lines naming the
    cluster's hosts (as dialled, or the addresses their names resolved to) are its keys. Without it, the
    file started empty and holds what k0sctl met."""
    from types import SimpleNamespace
    from typing import cast

    from k0sctl_resource.shared.context import StepContext
    from k0sctl_resource.shared.host_facts import key_facts

    known = tmp_path / "known_hosts"
    known.write_text(f"192.0.2.10 {keys[0][1]}\n198.51.100.20 {keys[1][1]}\n[192.0.2.11]:2222 {keys[2][1]}\n",
                     encoding="utf-8")
    found = [host_endpoints(0, {"ssh": {"address": "prod-1.example.test"}}),
             host_endpoints(1, {"ssh": {"address": "x", "options": {"HostName": "192.0.2.11", "Port": 2222}}})]

    def ctx(strict: bool) -> StepContext:
        k0sctl = SimpleNamespace(known_hosts=known)
        return cast(StepContext, SimpleNamespace(k0sctl=lambda: k0sctl,
                                                 source=SimpleNamespace(ssh_known_hosts="lines" if strict else None)))

    assert key_facts(ctx(True), found, ("192.0.2.10",)) == (keys[0][0], keys[2][0])
    assert key_facts(ctx(False), found) == tuple(k for k, _ in keys)
