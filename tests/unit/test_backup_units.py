"""Unit tests of the backup repository's pieces: names, trailers, URLs, archives, age (with the real CLI)."""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import sys
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from k0sctl_resource.archive import crypto, inspection
from k0sctl_resource.config.models import Encryption, Retention, parse_source
from k0sctl_resource.gitstore.auth import RemoteUrl
from k0sctl_resource.gitstore.commit_format import (
    BackupFacts,
    InitFacts,
    archive_name,
    format_message,
    metadata_of,
    parse_facts,
    unique_name,
)
from k0sctl_resource.gitstore.pruning import Pruning
from k0sctl_resource.gitstore.runner import classify
from k0sctl_resource.runtime.errors import ResourceError
from k0sctl_resource.runtime.workspace import Workspace
from tests.support.backup_support import age_key, k0s_backup_tar, ssh_key
from tests.support.stores import auth_of
from tests.support.tools import needs_tool

needs_age = needs_tool("age", "Debian package age")


# -- names and messages ----------------------------------------------------------------------------

def test_archive_names_sort_and_collide() -> None:
    moment = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    assert archive_name("prod-eu", moment, True) == "prod-eu-20260304T050607Z.tar.gz.age"
    assert archive_name("a b/../c", moment, False) == "a-b-..-c-20260304T050607Z.tar.gz"
    taken = {"prod-eu-20260304T050607Z.tar.gz.age"}
    second = unique_name("prod-eu-20260304T050607Z.tar.gz.age", taken)
    assert second == "prod-eu-20260304T050607Z-2.tar.gz.age"
    assert unique_name(second, taken | {second}) == "prod-eu-20260304T050607Z-3.tar.gz.age"
    # retention removed the first two archives of that second from the tree: their names are not used again
    kept = {"prod-eu-20260304T050607Z-3.tar.gz.age", "prod-eu-20260304T050607Z-4.tar.gz.age"}
    assert unique_name("prod-eu-20260304T050607Z.tar.gz.age", kept) == "prod-eu-20260304T050607Z-5.tar.gz.age"
    assert unique_name("prod-eu-20260304T050608Z.tar.gz.age", kept) == "prod-eu-20260304T050608Z.tar.gz.age"
    assert unique_name("notes.txt", {"notes.txt", "notes.txt-2"}) == "notes.txt-3"


def test_retention_keeps_newest_and_never_foreign_files() -> None:
    names = ["c-20260101T000000Z.tar.gz.age", "c-20260102T000000Z-2.tar.gz.age", "c-20260102T000000Z.tar.gz.age",
             "README.tar.gz", "c-20251231T235959Z.tar.gz", "c-eu-20200101T000000Z.tar.gz", "notes.txt"]

    def removed(policy: Retention | None) -> list[str]:
        return list(Pruning(policy, "c", datetime(2027, 1, 1, tzinfo=UTC)).decide(names).removed)

    assert removed(None) == []
    assert removed(Retention(keep_last=2)) == ["c-20260101T000000Z.tar.gz.age", "c-20251231T235959Z.tar.gz"]
    assert removed(Retention(keep_last=1)) == ["c-20260102T000000Z.tar.gz.age", "c-20260101T000000Z.tar.gz.age",
                                               "c-20251231T235959Z.tar.gz"]


def test_trailers_round_trip_typed_and_are_one_line() -> None:
    facts = BackupFacts(archive="x.tar.gz.age", size=12, encrypted=True, cluster="evil\nK0sctl-Resource-Kind: init",
                        parts=("etcd", "pki"), build="team/p/j #1")
    message = format_message("backup x", ["body line"], facts)
    assert "K0sctl-Resource-Kind: backup\nArchive: x.tar.gz.age\n" in message
    parsed = parse_facts(message)
    assert parsed == BackupFacts(archive="x.tar.gz.age", size=12, encrypted=True,
                                 cluster="evil K0sctl-Resource-Kind: init", parts=("etcd", "pki"), build="team/p/j #1")
    assert metadata_of(parsed) == {"archive": "x.tar.gz.age", "cluster": "evil K0sctl-Resource-Kind: init",
                                   "size": 12, "encrypted": True, "parts": ["etcd", "pki"]}
    init = InitFacts(created_at="2026-01-01T00:00:00Z", archived_as="k0sctl-backup-archive/x", build="b")
    assert parse_facts(format_message("init b", [], init)) == init
    assert parse_facts("just a subject\n") is None
    assert parse_facts("subject\n\nK0sctl-Resource-Kind: other\nSize: 3\n") is None
    assert parse_facts("subject\n\nK0sctl-Resource-Kind: backup\nSize: many\n") == BackupFacts()


@pytest.mark.parametrize(("stderr", "kind"), [
    ("git@h: Permission denied (publickey).\nfatal: Could not read from remote repository.", "auth"),
    ("Host key verification failed.\nfatal: Could not read from remote repository.", "host_key"),
    ("fatal: '/nope.git' does not appear to be a git repository", "not_found"),
    ("fatal: couldn't find remote ref refs/heads/k0sctl-backup", "missing_ref"),
    ("fatal: remote error: upload-pack: not our ref 0123", "missing_object"),
    ("ssh: connect to host 127.0.0.1 port 9: Connection refused", "network"),
    ("error: Server does not allow request for unadvertised object abc", "unadvertised"),
    ("!\trefs/x:refs/heads/b\t[rejected] (fetch first)", "rejected"),
    ("something odd", "other"),
])
def test_classify_git_errors(stderr: str, kind: str) -> None:
    assert classify(stderr)[0] == kind


# -- URLs and credentials --------------------------------------------------------------------------

def test_git_runs_as_a_plain_subprocess_of_its_own_group() -> None:
    """git commands run as plain subprocesses in their own process group (so that a bound or an abort
    can kill the whole group); the package depends on no git library."""
    code = ("import os\n"
            "from pathlib import Path\n"
            "from k0sctl_resource.gitstore.runner import GitRunner\n"
            "print(os.getpgrp())\n"
            "print(GitRunner(Path('.'), {}).ok('-c', 'alias.pg=!ps -o pgid= -p $PPID', 'pg', what='git'))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    ours, git_group = (int(x) for x in proc.stdout.split())
    assert git_group != ours


def test_remote_urls() -> None:
    https = RemoteUrl.parse("https://bob:s3cr%40t@git.example.test/ops/backups.git")
    assert https.url == "https://git.example.test/ops/backups.git"
    assert (https.transport, https.username, https.password) == ("https", "bob", "s3cr@t")
    ssh = RemoteUrl.parse("ssh://git@git.example.test:2222/ops/backups.git")
    assert (ssh.transport, ssh.url, ssh.host) == ("ssh", "ssh://git@git.example.test:2222/ops/backups.git",
                                                  "git.example.test")
    scp = RemoteUrl.parse("git@github.com:ops/backups.git")
    assert (scp.transport, scp.host, scp.url) == ("ssh", "github.com", "git@github.com:ops/backups.git")
    assert RemoteUrl.parse("file:///srv/backups.git").transport == "file"
    assert RemoteUrl.parse("/srv/backups.git").transport == "file"
    with pytest.raises(ResourceError, match="unsupported scheme"):
        RemoteUrl.parse("ftp://example.test/x")


def _ask_helper(helper: Path, env: dict[str, str], protocol: str, host: str) -> str:
    request = f"protocol={protocol}\nhost={host}\nwwwauth[]=Basic realm=x\n\n"
    return subprocess.run([str(helper), "get"], input=request, env={**os.environ, **env}, capture_output=True,
                          text=True, check=True).stdout


def test_https_credentials_only_through_the_host_bound_helper() -> None:
    source = parse_source({"backup": {"uri": "https://u:from-url@Git.Example.TEST/r.git", "password": "pw-123456"}})
    with Workspace() as ws:
        auth = auth_of(source, ws)
        env = auth.env
        assert auth.url == "https://Git.Example.TEST/r.git"
        helper = ws.path / "git-auth" / "credential"
        assert helper.stat().st_mode & 0o777 == 0o700
        assert "pw-123456" not in helper.read_text() and "from-url" not in helper.read_text()
        config = [(env[f"GIT_CONFIG_KEY_{i}"], env[f"GIT_CONFIG_VALUE_{i}"])
                  for i in range(int(env["GIT_CONFIG_COUNT"]))]
        helpers = [value for key, value in config if key == "credential.helper"]
        assert helpers[0] == "" and helpers[-1] in (f"!'{helper}'", f"!{helper}")
        assert env["GIT_ASKPASS"] == "" and env["GIT_ALLOW_PROTOCOL"] == "https"
        assert _ask_helper(helper, env, "https", "git.example.test") == "username=u\npassword=pw-123456\n"
        for protocol, host in (("https", "evil.example.test"), ("https", "git.example.test:8443"),
                               ("http", "git.example.test"), ("https", "git.example.test.evil.test"),
                               ("https", "127.0.0.2"), ("", "")):
            assert _ask_helper(helper, env, protocol, host) == "", (protocol, host)


def test_ssh_key_is_in_no_file_and_never_home(tmp_path: Path) -> None:
    from k0sctl_resource.gitstore.runner import KEY_FD_VAR, GitEnv, key_file

    key = ssh_key(tmp_path)
    source = parse_source({"backup": {"uri": "git@git.example.test:ops/b.git", "private_key": key.private},
                           "ssh_known_hosts": "git.example.test ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE"})
    with Workspace() as ws:
        env = auth_of(source, ws).env
        command = env["GIT_SSH_COMMAND"]
        assert "IdentitiesOnly=yes" in command and "StrictHostKeyChecking=yes" in command
        assert "-F /dev/null" in command and "IdentityAgent=none" in command
        assert command.endswith(f'-i "/proc/$PPID/fd/${{{KEY_FD_VAR}}}"')  # each git call's memory file
        assert str(ws.path) in command and "/.ssh" not in command
        marker = key.private.strip().splitlines()[1]
        assert marker not in command and marker not in str(dict(env))
        written = [p.read_text(errors="replace") for p in ws.path.rglob("*") if p.is_file()]
        assert not [text for text in written if marker in text], "the key is in a file of the workspace"
        assert isinstance(env, GitEnv) and env.ssh_key is not None
        with key_file(env.ssh_key) as fd:
            assert os.fstat(fd).st_mode & 0o777 == 0o600
            assert Path(f"/proc/self/fd/{fd}").read_text() == key.private.replace("\r\n", "\n").strip() + "\n"
            assert os.readlink(f"/proc/self/fd/{fd}").startswith("/memfd:")  # in no directory
        with pytest.raises(OSError):
            os.fstat(fd)  # closed when the call ends


def test_passphrase_protected_backup_key_is_named(tmp_path: Path) -> None:
    path = tmp_path / "locked"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "hunter22", "-f", str(path)], check=True)
    source = parse_source({"backup": {"uri": "ssh://git@h/r.git", "private_key": path.read_text()}})
    with Workspace() as ws, pytest.raises(ResourceError, match="protected by a passphrase"):
        _ = auth_of(source, ws).env


# -- archives --------------------------------------------------------------------------------------

def test_inspect_recognises_k0s_parts(tmp_path: Path) -> None:
    path = tmp_path / "a.tar.gz"
    path.write_bytes(k0s_backup_tar())
    facts = inspection.inspect(path)
    assert facts.entries == 3
    assert facts.parts == ("config", "etcd", "pki")
    assert facts.size == path.stat().st_size and len(facts.sha256) == 64


@pytest.mark.parametrize(("content", "reason"), [
    (b"", "empty"),
    (b"this is not gzip at all", "not a readable tar.gz"),
    (gzip.compress(b"plain text, not a tar" * 10, mtime=0), "not a readable tar.gz"),
    (None, "truncated"),
    ("empty-tar", "no entries"),
], ids=["empty", "not-gzip", "gzip-not-tar", "truncated", "empty-tar"])
def test_inspect_refuses_unusable_archives(tmp_path: Path, content: object, reason: str) -> None:
    path = tmp_path / "bad.tar.gz"
    if content is None:
        good = k0s_backup_tar(extra=200_000)
        path.write_bytes(good[: len(good) // 2])
    elif content == "empty-tar":
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz"):
            pass
        path.write_bytes(buf.getvalue())
    else:
        assert isinstance(content, bytes)
        path.write_bytes(content)
    with pytest.raises(ResourceError, match=reason):
        inspection.inspect(path)


# -- age, interoperating with the real age CLI -----------------------------------------------------

@needs_age
@pytest.mark.parametrize("kind", ["age", "ssh-ed25519", "ssh-rsa"])
def test_resource_encrypts_what_age_cli_decrypts(tmp_path: Path, kind: str) -> None:
    plain = tmp_path / "plain.tar.gz"
    plain.write_bytes(k0s_backup_tar(extra=300_000))
    if kind == "age":
        key = age_key(tmp_path)
        recipient, identity_file = key.recipient, key.path
    else:
        sk = ssh_key(tmp_path, kind=kind.removeprefix("ssh-"))
        recipient, identity_file = sk.public, sk.path
    other = age_key(tmp_path, "other")
    sealed = tmp_path / "out.age"
    crypto.encrypt_file(plain, sealed, Encryption(recipients=(recipient, other.recipient)))
    assert sealed.stat().st_mode & 0o777 == 0o600
    out = subprocess.run(["age", "-d", "-i", str(identity_file), str(sealed)], capture_output=True, check=True)
    assert out.stdout == plain.read_bytes()


@needs_age
def test_resource_decrypts_what_age_cli_encrypted(tmp_path: Path) -> None:
    plain = tmp_path / "plain.tar.gz"
    plain.write_bytes(k0s_backup_tar(extra=100_000))
    a = age_key(tmp_path, "a")
    s = ssh_key(tmp_path, "s")
    for recipient_args, identities in (
        (["-r", a.recipient], a.identity),
        (["-R", str(s.path) + ".pub"], s.private),
        # several identities in one string: an SSH key and an age identity, only one of which matches
        (["-r", a.recipient], s.private + "\n" + a.identity),
    ):
        sealed = tmp_path / "cli.age"
        subprocess.run(["age", *recipient_args, "-o", str(sealed), str(plain)], check=True)
        dst = tmp_path / "decrypted"
        crypto.decrypt_file(sealed, dst, Encryption(identities=identities))
        assert dst.read_bytes() == plain.read_bytes()
        assert dst.stat().st_mode & 0o777 == 0o600


def test_passphrase_round_trip_and_wrong_passphrase(tmp_path: Path) -> None:
    plain = tmp_path / "p"
    plain.write_bytes(os.urandom(5000))
    sealed = tmp_path / "p.age"
    crypto.encrypt_file(plain, sealed, Encryption(passphrase="correct horse"))
    assert crypto.read_header(sealed).passphrase
    dst = tmp_path / "d"
    crypto.decrypt_file(sealed, dst, Encryption(passphrase="correct horse"))
    assert dst.read_bytes() == plain.read_bytes()
    with pytest.raises(ResourceError, match=r"passphrase does not decrypt"):
        crypto.decrypt_file(sealed, tmp_path / "d2", Encryption(passphrase="wrong"))
    assert not (tmp_path / "d2").exists()
    with pytest.raises(ResourceError, match=r"set source\.encryption\.passphrase"):
        crypto.decrypt_file(sealed, tmp_path / "d3", Encryption(identities=age_key(tmp_path).identity))


def test_no_matching_identity_and_tampering(tmp_path: Path) -> None:
    plain = tmp_path / "p"
    plain.write_bytes(os.urandom(200_000))
    mine, other = age_key(tmp_path, "mine"), age_key(tmp_path, "other")
    sealed = tmp_path / "p.age"
    crypto.encrypt_file(plain, sealed, Encryption(recipients=(mine.recipient,)))
    with pytest.raises(ResourceError, match=r"no identity in source\.encryption\.identities matches"):
        crypto.decrypt_file(sealed, tmp_path / "x", Encryption(identities=other.identity))
    data = bytearray(sealed.read_bytes())
    data[len(data) // 2] ^= 0x01
    tampered = tmp_path / "t.age"
    tampered.write_bytes(bytes(data))
    with pytest.raises(ResourceError, match="damaged or was tampered with"):
        crypto.decrypt_file(tampered, tmp_path / "y", Encryption(identities=mine.identity))
    assert not (tmp_path / "y").exists()


def test_bad_keys_are_named_without_their_value(tmp_path: Path) -> None:
    with pytest.raises(ResourceError, match=r"recipients\[1\]: not a valid") as err:
        crypto.parse_recipients((age_key(tmp_path).recipient, "ssh-ed25519 AAAAnotbase64"))
    assert "AAAAnotbase64" not in str(err.value)
    with pytest.raises(ResourceError, match="line 2 is not a valid age identity") as err2:
        crypto.parse_identities("# comment\nAGE-SECRET-KEY-NOPE secret-stuff\n")
    assert "secret-stuff" not in str(err2.value)
    with pytest.raises(ResourceError, match="line 1 is neither an age identity") as err3:
        crypto.parse_identities("pasted-the-wrong-secret-stuff\n")
    assert "secret-stuff" not in str(err3.value)
    locked = tmp_path / "locked"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "pw", "-f", str(locked)], check=True)
    with pytest.raises(ResourceError, match=r"protected by a passphrase|not a usable key"):
        crypto.parse_identities(locked.read_text())
