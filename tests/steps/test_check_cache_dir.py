"""docs/security.md, "The check cache trusts only a private folder": the check cache lives in
`$TMPDIR/k0sctl-check-cache` only when that is a real directory of this user that nobody else may write;
a folder pre-created by another uid (here `nobody`, through setpriv), one that others may write, or a
symbolic link is neither trusted nor written through: the check answers from the repository itself, in
a fresh private directory, and says so on stderr. Its lock is waited for with a bound."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.backup_support import backup_source, build_history
from tests.support.resource import Resource
from tests.support.tools import require_tool

CACHE = "k0sctl-check-cache"
BRANCH = "k0sctl-backup"


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A TMPDIR like /tmp: world-writable with the sticky bit, reachable by `nobody`."""
    path = Path(tempfile.mkdtemp(prefix="k0sctl-shared-tmp-", dir="/tmp"))
    path.chmod(0o1777)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def as_nobody(script: str) -> None:
    setpriv = require_tool("setpriv", "Debian util-linux")
    nobody = pwd.getpwnam("nobody")
    subprocess.run([setpriv, f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups", "--",
                    "sh", "-ec", script], check=True, env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"})


@pytest.fixture
def history(repo: Path) -> list[str]:
    return build_history(repo, 3, 64)


def key_of(url: str) -> str:
    return hashlib.sha256(f"{url}\n{BRANCH}".encode()).hexdigest()[:32]


def planted_state(tip: str) -> str:
    """A state.json that would make a trusting check answer versions that do not exist."""
    return json.dumps({"tip": tip, "chain": ["1" * 40, "2" * 40, tip], "complete": True})


def check(resource: Resource, repo: Path, since: str, tmp: Path) -> list[str]:
    source = backup_source(f"file://{repo}")
    run = resource.check({"source": source, "version": {"ref": since}}, env={"TMPDIR": str(tmp)}).expect_ok()
    assert "check cache not used" in run.stderr
    return [v["ref"] for v in run.answer]


def test_folder_of_another_user_with_planted_state(resource: Resource, repo: Path, history: list[str],
                                                   shared_tmp: Path) -> None:
    folder = shared_tmp / CACHE / key_of(f"file://{repo}")
    as_nobody(f"mkdir -p '{folder}/repo.git' && chmod -R 0777 '{shared_tmp / CACHE}'\n"
              f"echo 'ref: refs/heads/main' > '{folder}/repo.git/HEAD'\n"
              f"printf '%s' '{planted_state(history[-1])}' > '{folder}/state.json'")
    before = sorted(p.name for p in folder.rglob("*"))
    assert check(resource, repo, "1" * 40, shared_tmp) == [history[-1]]  # "gone": the newest only
    assert check(resource, repo, history[0], shared_tmp) == history
    assert sorted(p.name for p in folder.rglob("*")) == before  # nothing written into it
    assert json.loads((folder / "state.json").read_text()) == json.loads(planted_state(history[-1]))


@pytest.mark.parametrize("mode", [0o755, 0o700])
def test_folder_of_another_user_that_only_it_may_write(resource: Resource, repo: Path, history: list[str],
                                                       shared_tmp: Path, mode: int) -> None:
    as_nobody(f"mkdir -m {mode:o} '{shared_tmp / CACHE}'")
    assert check(resource, repo, history[1], shared_tmp) == history[1:]
    assert list((shared_tmp / CACHE).iterdir()) == []


@pytest.mark.parametrize("where", ["root", "key"])
def test_symlink_in_place_of_the_folder_is_not_followed(resource: Resource, repo: Path, history: list[str],
                                                        shared_tmp: Path, tmp_path: Path, where: str) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "state.json").write_text(planted_state(history[-1]), encoding="utf-8")
    if where == "root":
        as_nobody(f"ln -s '{target}' '{shared_tmp / CACHE}'")
    else:  # our own root, a link for the key inside it (left there while the root was open to others)
        (shared_tmp / CACHE).mkdir(mode=0o700)
        (shared_tmp / CACHE / key_of(f"file://{repo}")).symlink_to(target)
    assert check(resource, repo, history[0], shared_tmp) == history
    assert sorted(p.name for p in target.iterdir()) == ["state.json"]


def test_our_folder_open_to_others_is_not_trusted(resource: Resource, repo: Path, history: list[str],
                                                  shared_tmp: Path) -> None:
    folder = shared_tmp / CACHE / key_of(f"file://{repo}")
    folder.mkdir(parents=True)
    (shared_tmp / CACHE).chmod(0o777)
    (folder / "state.json").write_text(planted_state(history[-1]), encoding="utf-8")
    assert check(resource, repo, history[0], shared_tmp) == history


def test_our_folder_readable_by_others_is_made_private_and_used(resource: Resource, repo: Path,
                                                                history: list[str], shared_tmp: Path) -> None:
    (shared_tmp / CACHE).mkdir(mode=0o755)
    source = backup_source(f"file://{repo}")
    env = {"TMPDIR": str(shared_tmp)}
    for _ in range(2):
        run = resource.check({"source": source, "version": {"ref": history[0]}}, env=env).expect_ok()
        assert [v["ref"] for v in run.answer] == history and "check cache not used" not in run.stderr
    assert (shared_tmp / CACHE).stat().st_mode & 0o777 == 0o700
    folder = shared_tmp / CACHE / key_of(f"file://{repo}")
    assert folder.stat().st_uid == os.geteuid() and folder.stat().st_mode & 0o777 == 0o700
    assert json.loads((folder / "state.json").read_text())["chain"] == history


def test_the_lock_is_waited_for_with_a_bound(resource: Resource, repo: Path, history: list[str],
                                             shared_tmp: Path) -> None:
    source = backup_source(f"file://{repo}", timeout="1s")
    env = {"TMPDIR": str(shared_tmp)}
    resource.check({"source": source, "version": {"ref": history[1]}}, env=env).expect_ok()  # makes the folder
    lock = shared_tmp / CACHE / key_of(f"file://{repo}") / "lock"
    with open(lock, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # a check that hangs while holding it
        started = time.monotonic()
        run = resource.check({"source": source, "version": {"ref": history[0]}}, env=env).expect_ok()
        took = time.monotonic() - started
    assert [v["ref"] for v in run.answer] == history
    # it waited for the lock (2 x backup.timeout) and then went on without it, within a bound
    assert "lock was held by another check" in run.stderr and 2 <= took < 2 + 20, f"took {took:.1f}s"
