"""Helpers for the backup repository tests and the benchmark: keys, sources, repositories, histories.

Every key is generated at run time with the real tools (`age-keygen`, `ssh-keygen`); repositories are
real bare git repositories (`bare_repo` is tests/support/sshd.py's, re-exported here). `build_history` writes
many backup commits at once with `git fast-import` (for histories of 1,000 commits without 1,000 puts).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.support import PINNED
from tests.support.sshd import bare_repo as bare_repo  # noqa: PLC0414 - re-exported (mypy's explicit form)
from tests.support.tools import require_tool

BRANCH = "k0sctl-backup"
FOLDER = "backups"
# An `ssh` for the benchmarks, first on PATH: runs the real one ({ssh}) and appends the bytes that came
# from the server to the file $BENCH_SSH_COUNT.
SSH_COUNTER = """#!{python}
import os, subprocess, sys
proc = subprocess.Popen([{ssh!r}, *sys.argv[1:]], stdout=subprocess.PIPE)
total = 0
while True:
    chunk = proc.stdout.read1(1 << 16)
    if not chunk:
        break
    total += len(chunk)
    os.write(1, chunk)
code = proc.wait()
with open(os.environ["BENCH_SSH_COUNT"], "a") as fh:
    fh.write(f"{{total}}\\n")
sys.exit(code)
"""


def ssh_counter_dir(work: Path) -> Path:
    """`work/counter-bin`, holding an `ssh` that runs the real one and appends the bytes it received to
    $BENCH_SSH_COUNT: put it first on PATH to count what git's SSH transport moves."""
    counter = work / "counter-bin"
    counter.mkdir()
    real_ssh = shutil.which("ssh")
    assert real_ssh is not None
    (counter / "ssh").write_text(SSH_COUNTER.format(python=sys.executable, ssh=real_ssh))
    (counter / "ssh").chmod(0o755)
    return counter


def git(repo: Path, *args: str, input: bytes | None = None) -> str:
    proc = subprocess.run(["git", "-C", str(repo), *args], input=input, capture_output=True, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr.decode(errors='replace')}")
    return proc.stdout.decode(errors="replace").strip()


def branch_tip(repo: Path, branch: str = BRANCH) -> str | None:
    """The branch's tip, or None when the branch does not exist; any other git failure fails the test."""
    proc = subprocess.run(["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}"],
                          capture_output=True, check=False)
    if proc.returncode == 1 and not proc.stdout and not proc.stderr:  # --quiet: a missing ref says nothing
        return None
    if proc.returncode != 0:
        raise AssertionError(f"git rev-parse refs/heads/{branch} failed: {proc.stderr.decode(errors='replace')}")
    return proc.stdout.decode().strip()


def first_parents(repo: Path, branch: str = BRANCH) -> list[str]:
    out = git(repo, "rev-list", "--first-parent", "--reverse", branch)
    return out.split()


def tree_files(repo: Path, rev: str) -> list[str]:
    return git(repo, "ls-tree", "-r", "--name-only", rev).splitlines()


def commit_trailers(repo: Path, rev: str) -> dict[str, str]:
    body = git(repo, "log", "-1", "--format=%B", rev)
    last = body.strip().split("\n\n")[-1]
    return dict(line.split(": ", 1) for line in last.splitlines() if ": " in line)


# -- keys ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AgeKey:
    identity: str  # the identity file's text (comments + AGE-SECRET-KEY-1… line)
    recipient: str
    path: Path


def age_key(directory: Path, name: str = "age") -> AgeKey:
    require_tool("age-keygen", "Debian package age")
    path = directory / f"{name}.txt"
    subprocess.run(["age-keygen", "-o", str(path)], check=True, capture_output=True)
    recipient = subprocess.run(["age-keygen", "-y", str(path)], check=True, capture_output=True,
                               text=True).stdout.strip()
    return AgeKey(identity=path.read_text(encoding="utf-8"), recipient=recipient, path=path)


@dataclass(frozen=True)
class SshKey:
    private: str
    public: str
    path: Path


def ssh_key(directory: Path, name: str = "id", kind: str = "ed25519") -> SshKey:
    path = directory / f"{name}_{kind}"
    args = ["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", f"{name}@test", "-f", str(path)]
    if kind == "rsa":
        args[4:4] = ["-b", "3072"]
    subprocess.run(args, check=True)
    return SshKey(private=path.read_text(encoding="utf-8"),
                  public=path.with_name(path.name + ".pub").read_text(encoding="utf-8").strip(), path=path)


# -- requests --------------------------------------------------------------------------------------

def backup_source(uri: str, *, recipients: list[str] | None = None, identities: str | None = None,
                  passphrase: str | None = None, plaintext: bool | None = None, keep: int | None = None,
                  private_key: str | None = None, known_hosts: str | None = None,
                  branch: str | None = None, **backup: Any) -> dict[str, Any]:
    b: dict[str, Any] = {"uri": uri, **backup}
    if keep is not None:
        b["keep"] = keep
    if private_key is not None:
        b["private_key"] = private_key
    if branch is not None:
        b["branch"] = branch
    enc: dict[str, Any] = {}
    if recipients:
        enc["recipients"] = recipients
    if identities is not None:
        enc["identities"] = identities
    if passphrase is not None:
        enc["passphrase"] = passphrase
    if plaintext is not None:
        enc["plaintext"] = plaintext
    source: dict[str, Any] = {"backup": b}
    if enc:
        source["encryption"] = enc
    if known_hosts is not None:
        source["ssh_known_hosts"] = known_hosts
    return source


def put_request(source: dict[str, Any], command: str, **params: Any) -> dict[str, Any]:
    return {"source": source, "params": {"command": command, **params}}


# -- archives --------------------------------------------------------------------------------------

def k0s_backup_tar(extra: int = 2048, seed: bytes | None = None) -> bytes:
    """A gzip tar shaped like a k0s backup (k0s.yaml, etcd snapshot, pki)."""
    data = seed if seed is not None else os.urandom(extra)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, content in (("k0s.yaml", b"apiVersion: k0s.k0sproject.io/v1beta1\nkind: ClusterConfig\n"),
                              ("etcd-snapshot.db", data), ("pki/ca.crt", b"-----CERT-----\n")):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def stub_k0sctl(bin_dir: Path, *, backup_bytes: bytes | None, version: str = PINNED,
                fail_with: str | None = None) -> Path:
    """A one-purpose k0sctl stand-in (for archives the shared double does not produce): `version`
    answers `version`, `backup --output FILE` writes `backup_bytes` (or fails with `fail_with`)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    payload = bin_dir / "backup-payload.bin"
    payload.write_bytes(backup_bytes or b"")
    script = bin_dir / "k0sctl"
    script.write_text(
        "#!/usr/bin/env python3\n"
        "import shutil, sys\n"
        "argv = sys.argv[1:]\n"
        f"if argv[:1] == ['version']:\n    print('version: {version}')\n    sys.exit(0)\n"
        "if argv[:1] == ['backup']:\n"
        f"    fail = {fail_with!r}\n"
        "    if fail:\n        print(f'level=fatal msg=\"{fail}\"')\n        sys.exit(1)\n"
        "    out = argv[argv.index('--output') + 1]\n"
        f"    shutil.copyfile({str(payload)!r}, out)\n"
        "    print('level=info msg=\"backup written\"')\n    sys.exit(0)\n"
        "sys.exit(2)\n", encoding="utf-8")
    script.chmod(0o755)
    return bin_dir


# -- histories -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class HistoryCommit:
    sha: str
    archive: str
    size: int


def build_history(repo: Path, count: int, archive_size: int, *, cluster: str = "bench",
                  branch: str = BRANCH, folder: str = FOLDER,
                  start: datetime | None = None, every: timedelta = timedelta(minutes=1)) -> list[str]:
    """Append `count` backup commits (random, incompressible archives of `archive_size` bytes, every
    one kept in the tree) to `branch` of the bare `repo`, with `git fast-import`. Returns the shas of
    the branch's first-parent chain, oldest first."""
    moment = start or datetime(2025, 1, 1, tzinfo=UTC)
    parent = branch_tip(repo, branch)
    proc = subprocess.Popen(["git", "-C", str(repo), "fast-import", "--quiet", "--done"],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    assert proc.stdin is not None
    write = proc.stdin.write
    for i in range(count):
        data = os.urandom(archive_size)
        stamp = (moment + every * i).strftime("%Y%m%dT%H%M%SZ")
        created = (moment + every * i).strftime("%Y-%m-%dT%H:%M:%SZ")
        name = f"{cluster}-{stamp}.tar.gz.age"
        message = (f"backup {cluster} {name}\n\nsynthetic history for tests\n\n"
                   f"K0sctl-Resource-Kind: backup\nArchive: {name}\nArchive-Path: {folder}/{name}\n"
                   f"Created-At: {created}\nCluster: {cluster}\nSha256: {hashlib.sha256(data).hexdigest()}\n"
                   f"Size: {len(data)}\nEncrypted: true\n").encode()
        write(f"blob\nmark :{i + 1}\ndata {len(data)}\n".encode())
        write(data)
        write(b"\n")
        when = int((moment + every * i).timestamp())
        write(f"commit refs/heads/{branch}\ncommitter k0sctl-resource <k0sctl-resource@localhost> {when} +0000\n"
              f"data {len(message)}\n".encode())
        write(message)
        if i == 0 and parent:
            write(f"from {parent}\n".encode())
        write(f"M 100644 :{i + 1} {folder}/{name}\n\n".encode())
    write(b"done\n")
    proc.stdin.close()
    assert proc.wait() == 0, "git fast-import failed"
    return first_parents(repo, branch)


def load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def tree_of(path: Path) -> Iterator[Path]:
    return (p for p in path.rglob("*") if p.is_file())


def in_threads(count: int, one: Callable[[int], None]) -> None:
    """Run `one(0)` … `one(count - 1)` at the same time, each in a thread, and wait for all of them.
    An exception raised in a thread is raised here after every thread ended (the first raised; the
    others are named in a note)."""
    errors: list[tuple[int, BaseException]] = []  # list.append is atomic: no lock needed

    def guarded(i: int) -> None:
        try:
            one(i)
        except BaseException as exc:  # re-raised in the caller's thread below
            errors.append((i, exc))

    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        first = errors[0][1]
        first.add_note(f"raised in thread {errors[0][0]} of {count}" + "".join(
            f"; thread {i} raised too: {type(exc).__name__}: {exc}" for i, exc in errors[1:]))
        raise first


def parallel_resources(tmp_path: Path, double: Any, n: int, secrets: list[str] | None = None) -> list[Any]:
    """`n` resources with their own HOME and TMPDIR (workers of their own) sharing one k0sctl double."""
    from tests.support import DOUBLE_DIR
    from tests.support.resource import Resource

    made = []
    for i in range(n):
        home, tmpdir = tmp_path / f"home{i}", tmp_path / f"tmp{i}"
        home.mkdir()
        tmpdir.mkdir()
        made.append(Resource(home=home, tmpdir=tmpdir, path_prefix=[DOUBLE_DIR],
                             env={"K0SCTL_DOUBLE_STATE": str(double.state_file),
                                  "K0SCTL_DOUBLE_RECORD": str(double.record_file)},
                             secrets=list(secrets or [])))
    return made


def use_stub(resource: Any, bin_dir: Path) -> None:
    """Put a stub k0sctl (see `stub_k0sctl`) first on the resource's PATH."""
    if bin_dir not in resource.path_prefix:
        resource.path_prefix.insert(0, bin_dir)
