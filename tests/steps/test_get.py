"""get (`in`) of versions the resource wrote, against real repositories, with the real age CLI."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import PINNED
from tests.support.backup_support import (
    BRANCH,
    age_key,
    backup_source,
    bare_repo,
    build_history,
    git,
    k0s_backup_tar,
    put_request,
    ssh_key,
    stub_k0sctl,
    use_stub,
)
from tests.support.resource import BUILD_ENV, Resource, git_history_text
from tests.support.sshd import SshServer
from tests.support.tools import needs_tool, require_tool

PAYLOAD_SIZE = 300_000


@pytest.fixture
def payload(tmp_path: Path, resource: Resource) -> bytes:
    data = k0s_backup_tar(extra=PAYLOAD_SIZE)
    use_stub(resource, stub_k0sctl(tmp_path / "stub-bin", backup_bytes=data))
    return data


def get(resource: Resource, source: dict[str, Any], ref: str, out: Path, **params: Any) -> Any:
    request: dict[str, Any] = {"source": source, "version": {"ref": ref}}
    if params:
        request["params"] = params
    return resource.get(request, out)


def stored_archive(repo: Path, ref: str, name: str) -> bytes:
    return subprocess.run(["git", "-C", str(repo), "cat-file", "blob", f"{ref}:backups/{name}"],
                          capture_output=True, check=True).stdout


def backup(resource: Resource, workdir: Path, source: dict[str, Any]) -> str:
    run = resource.put(put_request(source, "backup"), workdir, env=BUILD_ENV).expect_ok()
    return str(run.answer["version"]["ref"])


def test_get_none_writes_only_metadata(resource: Resource, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run = get(resource, {}, "none", out).expect_ok()
    assert sorted(p.name for p in out.iterdir()) == ["metadata.json"]
    assert json.loads((out / "metadata.json").read_text()) == {"ref": "none", "kind": "none"}
    assert run.answer["version"] == {"ref": "none"}
    assert "warning" not in run.stderr
    # With a backup repository no put prints it any more; a get of it (pinned by hand, say) still writes
    # metadata.json only (README, "`get`: fetch a backup"), and warns that it holds no backup.
    again = tmp_path / "again"
    warned = get(resource, backup_source("file:///nonexistent.git", plaintext=True), "none", again).expect_ok()
    assert sorted(p.name for p in again.iterdir()) == ["metadata.json"]
    assert "warning: version none names no commit of the backup branch" in warned.stderr


def test_get_decrypts_and_verifies(resource: Resource, workdir: Path, repo: Path, payload: bytes,
                                   tmp_path: Path) -> None:
    key = age_key(tmp_path)
    resource.secrets.append(key.identity)
    source = backup_source(f"file://{repo}", recipients=[key.recipient], identities=key.identity)
    ref = backup(resource, workdir, source)
    out = tmp_path / "out"
    run = get(resource, source, ref, out, decrypt=True).expect_ok()
    assert (out / "backup.tar.gz").read_bytes() == payload
    assert (out / "backup.tar.gz").stat().st_mode & 0o777 == 0o600
    assert not (out / "backup.tar.gz.age").exists()
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["ref"] == ref and meta["kind"] == "backup" and meta["cluster"] == "prod-eu"
    assert meta["sha256"] == hashlib.sha256(payload).hexdigest() and meta["size"] == len(payload)
    assert meta["encrypted"] is True and meta["k0sctl_version"] == PINNED
    assert re.fullmatch(r"prod-eu-\d{8}T\d{6}Z\.tar\.gz\.age", meta["archive"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", meta["created_at"])
    assert meta["build_url"].startswith("https://ci.example.test/")
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", item["name"]) for item in run.answer["metadata"])
    assert run.metadata["file"] == "backup.tar.gz"
    assert key.identity.strip().splitlines()[-1] not in git_history_text(repo)


def test_get_without_identity_or_decrypt_false_writes_the_age_file(
        resource: Resource, workdir: Path, repo: Path, payload: bytes, tmp_path: Path) -> None:
    key = age_key(tmp_path)
    writer = backup_source(f"file://{repo}", recipients=[key.recipient])
    ref = backup(resource, workdir, writer)
    for name, source, params in (
        ("no-identity", writer, {}),
        ("decrypt-false", backup_source(f"file://{repo}", identities=key.identity), {"decrypt": False}),
        ("default", backup_source(f"file://{repo}", identities=key.identity), {}),  # decrypt is opt-in
    ):
        out = tmp_path / name
        get(resource, source, ref, out, **params).expect_ok()
        assert sorted(p.name for p in out.iterdir()) == ["backup.tar.gz.age", "metadata.json"]
    age = require_tool("age", "Debian package age")  # the files are age files: the age CLI decrypts them
    for name in ("no-identity", "decrypt-false", "default"):
        plain = subprocess.run([age, "-d", "-i", str(key.path), str(tmp_path / name / "backup.tar.gz.age")],
                               capture_output=True, check=True).stdout
        assert plain == payload


def test_skip_download_and_init_commits(resource: Resource, workdir: Path, repo: Path, payload: bytes,
                                        tmp_path: Path) -> None:
    source = backup_source(f"file://{repo}", plaintext=True)
    init = resource.put(put_request(source, "init"), workdir).expect_ok().answer["version"]["ref"]
    ref = backup(resource, workdir, source)
    out = tmp_path / "skip"
    get(resource, source, ref, out, skip_download=True).expect_ok()
    assert sorted(p.name for p in out.iterdir()) == ["metadata.json"]
    assert json.loads((out / "metadata.json").read_text())["encrypted"] is False
    out2 = tmp_path / "init"
    get(resource, source, init, out2).expect_ok()
    assert sorted(p.name for p in out2.iterdir()) == ["metadata.json"]
    assert json.loads((out2 / "metadata.json").read_text())["kind"] == "init"
    out3 = tmp_path / "plain"
    get(resource, source, ref, out3).expect_ok()
    assert (out3 / "backup.tar.gz").read_bytes() == payload


def test_ssh_recipient_and_passphrase(resource: Resource, workdir: Path, repo: Path, payload: bytes,
                                      tmp_path: Path) -> None:
    sk = ssh_key(tmp_path, "age-ssh")
    resource.secrets.append(sk.private)
    source = backup_source(f"file://{repo}", recipients=[sk.public], identities=sk.private)
    ref = backup(resource, workdir, source)
    out = tmp_path / "ssh"
    get(resource, source, ref, out, decrypt=True).expect_ok()
    assert (out / "backup.tar.gz").read_bytes() == payload
    secret = "a long passphrase for the test"
    resource.secrets.append(secret)
    pw_source = backup_source(f"file://{repo}", passphrase=secret)
    ref2 = backup(resource, workdir, pw_source)
    out2 = tmp_path / "pw"
    get(resource, pw_source, ref2, out2, decrypt=True).expect_ok()
    assert (out2 / "backup.tar.gz").read_bytes() == payload
    wrong = get(resource, backup_source(f"file://{repo}", passphrase="not it at all"), ref2, tmp_path / "w",
                decrypt=True)
    assert wrong.returncode != 0 and "passphrase does not decrypt" in wrong.error_lines[0]
    assert not (tmp_path / "w" / "backup.tar.gz").exists()
    # The stored archive is a plain age file for the ssh key: the age CLI decrypts it.
    sealed = tmp_path / "sealed.age"
    sealed.write_bytes(stored_archive(repo, ref, json.loads((out / "metadata.json").read_text())["archive"]))
    age = require_tool("age", "Debian package age")
    plain = subprocess.run([age, "-d", "-i", str(sk.path), str(sealed)], capture_output=True, check=True)
    assert plain.stdout == payload


def _rewrite_archive(repo: Path, ref: str, tmp_path: Path, change: Any) -> str:
    """A commit with the same message as `ref` whose archive bytes went through `change`."""
    work = tmp_path / "tamper"
    git(tmp_path, "clone", "-q", "-b", BRANCH, str(repo), str(work))
    (path,) = [p for p in (work / "backups").iterdir()]
    path.write_bytes(change(path.read_bytes()))
    git(work, "-c", "user.name=x", "-c", "user.email=x@x", "commit", "-q", "-a", "-C", ref)
    git(work, "push", "-q", "origin", BRANCH)
    return git(work, "rev-parse", "HEAD")


def _flip(data: bytes) -> bytes:
    mutable = bytearray(data)
    mutable[len(mutable) // 2] ^= 0x01
    return bytes(mutable)


def test_tampered_encrypted_archive_is_refused(resource: Resource, workdir: Path, repo: Path, payload: bytes,
                                               tmp_path: Path) -> None:
    key = age_key(tmp_path)
    source = backup_source(f"file://{repo}", recipients=[key.recipient], identities=key.identity, keep=1)
    ref = backup(resource, workdir, source)
    bad = _rewrite_archive(repo, ref, tmp_path, _flip)
    out = tmp_path / "out"
    run = get(resource, source, bad, out, decrypt=True)
    assert run.returncode != 0
    assert "damaged or was tampered with" in run.error_lines[0]
    assert not list(out.glob("backup.tar.gz*"))


def test_plain_archive_with_wrong_sha256_is_refused(resource: Resource, workdir: Path, repo: Path,
                                                    payload: bytes, tmp_path: Path) -> None:
    source = backup_source(f"file://{repo}", plaintext=True, keep=1)
    ref = backup(resource, workdir, source)
    bad = _rewrite_archive(repo, ref, tmp_path, lambda _: k0s_backup_tar(extra=100))
    out = tmp_path / "out"
    run = get(resource, source, bad, out)
    assert run.returncode != 0
    assert "does not match its recorded sha256" in run.error_lines[0]
    assert not list(out.glob("*backup.tar.gz*"))


def test_get_of_a_deleted_version_fails_clearly(resource: Resource, workdir: Path, repo: Path, payload: bytes,
                                                tmp_path: Path) -> None:
    source = backup_source(f"file://{repo}", plaintext=True)
    first = backup(resource, workdir, source)
    second = backup(resource, workdir, source)
    git(repo, "update-ref", f"refs/heads/{BRANCH}", first)  # the branch is rewritten…
    git(repo, "reflog", "expire", "--expire=now", "--all")
    git(repo, "gc", "-q", "--prune=now")  # …and the commit is gone from the server
    run = get(resource, source, second, tmp_path / "out")
    assert run.returncode != 0
    assert len(run.error_lines) == 1
    assert f"version {second} no longer exists" in run.error_lines[0]
    get(resource, source, first, tmp_path / "still").expect_ok()


def test_get_fetches_one_archive_whatever_the_history(resource: Resource, workdir: Path, repo: Path,
                                                      payload: bytes, tmp_path: Path) -> None:
    key = age_key(tmp_path)
    build_history(repo, 40, 200_000)  # 8 MB of older archives, all in the tree
    source = backup_source(f"file://{repo}", recipients=[key.recipient], identities=key.identity)
    ref = backup(resource, workdir, source)
    run = get(resource, source, ref, tmp_path / "out").expect_ok()
    fetched = int(re.search(r"fetched (\d+) bytes", run.stderr).group(1))  # type: ignore[union-attr]
    stored = len(stored_archive(repo, ref, json.loads((tmp_path / "out" / "metadata.json").read_text())["archive"]))
    assert fetched <= 1.2 * stored, (fetched, stored)


@pytest.fixture
def sshd_v0(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    with SshServer(tmp_path_factory.mktemp("sshd-v0"), git_protocol_v2=False) as server:
        yield server


def test_get_from_a_protocol_v0_server(resource: Resource, workdir: Path, sshd_v0: SshServer, payload: bytes,
                                       tmp_path: Path) -> None:
    repo = bare_repo(tmp_path / "v0.git", allow_filter=False)
    source = backup_source(sshd_v0.url(repo), private_key=sshd_v0.client_key, known_hosts=sshd_v0.known_hosts,
                           plaintext=True)
    resource.secrets.append(sshd_v0.client_key)
    first = backup(resource, workdir, source)
    backup(resource, workdir, source)
    run = get(resource, source, first, tmp_path / "out").expect_ok()
    assert "fetching the whole branch instead" in run.stderr
    assert (tmp_path / "out" / "backup.tar.gz").read_bytes() == payload


@needs_tool("age", "Debian package age")
def test_get_decrypts_an_archive_the_age_cli_encrypted(resource: Resource, repo: Path, tmp_path: Path) -> None:
    """A backup committed by hand (age CLI, ssh-ed25519 recipient) in the same layout is read like ours."""
    sk = ssh_key(tmp_path, "ops")
    plain = k0s_backup_tar(extra=50_000)
    (tmp_path / "plain.tar.gz").write_bytes(plain)
    work = tmp_path / "hand"
    git(tmp_path, "init", "-q", "-b", BRANCH, str(work))
    (work / "backups").mkdir()
    name = "manual-20260101T000000Z.tar.gz.age"
    subprocess.run(["age", "-R", str(sk.path) + ".pub", "-o", str(work / "backups" / name),
                    str(tmp_path / "plain.tar.gz")], check=True)
    message = (f"backup manual {name}\n\nby hand\n\nK0sctl-Resource-Kind: backup\nArchive: {name}\n"
               f"Sha256: {hashlib.sha256(plain).hexdigest()}\nSize: {len(plain)}\nEncrypted: true\n")
    git(work, "add", ".")
    git(work, "-c", "user.name=x", "-c", "user.email=x@x", "commit", "-q", "-m", message)
    git(work, "push", "-q", str(repo), BRANCH)
    ref = git(work, "rev-parse", "HEAD")
    out = tmp_path / "out"
    get(resource, backup_source(f"file://{repo}", identities=sk.private), ref, out, decrypt=True).expect_ok()
    assert (out / "backup.tar.gz").read_bytes() == plain
