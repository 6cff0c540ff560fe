"""docs/security.md, "Exit 0 means the archive is on the branch": a backup exits 0 only when the commit it pushed
holds its archive and is on the branch as the remote shows it afterwards, whatever retention, clocks (an
archive stamped in the future by another worker) or concurrent writers (other puts, a server that
rewrites the branch after accepting the push) did."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.backup_support import (
    backup_source,
    first_parents,
    git,
    in_threads,
    parallel_resources,
    put_request,
    tree_files,
)
from tests.support.fixtures import CLUSTER_NAME, Double
from tests.support.resource import Resource, StepRun


def stamp(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).strftime("%Y%m%dT%H%M%SZ")


def seed(repo: Path, tmp_path: Path, names: list[str]) -> str:
    """A commit on the branch holding archives named `names` (another worker's, with its clock)."""
    work = tmp_path / "seed"
    subprocess.run(["git", "init", "-q", str(work)], check=True)
    for name in names:
        (work / "backups").mkdir(exist_ok=True)
        (work / "backups" / name).write_bytes(b"not really an archive " + name.encode())
    git(work, "add", "-A")
    git(work, "-c", "user.name=w", "-c", "user.email=w@x", "commit", "-q", "--allow-empty", "-m",
        "another worker's backups")
    git(work, "push", "-q", str(repo), "HEAD:refs/heads/k0sctl-backup")
    return git(repo, "rev-parse", "refs/heads/k0sctl-backup")


def holds(repo: Path, run: StepRun) -> bool:
    ref = run.answer["version"]["ref"]
    return f"backups/{run.metadata['archive']}" in tree_files(repo, ref) and ref in first_parents(repo)


@pytest.mark.parametrize(("keep", "hours_ahead"), [(1, [1]), (1, [1, 25]), (2, [1, 2]), (3, [1]), (2, [])])
def test_keep_never_removes_the_archive_just_added(resource: Resource, workdir: Path, repo: Path, running: Double,
                                                   tmp_path: Path, keep: int, hours_ahead: list[int]) -> None:
    """Archives stamped in the future (another worker's clock) are kept and take no place of `keep`."""
    old = [f"{CLUSTER_NAME}-{stamp(timedelta(days=-d))}.tar.gz" for d in (4, 3)]
    ahead = [f"{CLUSTER_NAME}-{stamp(timedelta(hours=h))}.tar.gz" for h in hours_ahead]
    seed(repo, tmp_path, [*old, *ahead])
    source = backup_source(f"file://{repo}", plaintext=True, keep=keep)
    put = resource.put(put_request(source, "backup"), workdir).expect_ok()
    assert holds(repo, put)
    files = [f.removeprefix("backups/") for f in tree_files(repo, put.answer["version"]["ref"])]
    assert sorted(files) == sorted([put.metadata["archive"], *ahead, *old[len(old) - keep + 1:]])
    if ahead:
        assert f"future {len(ahead)}" in put.metadata["kept_by_rule"]
        assert "dated after now" in put.stderr, put.stderr
    got = resource.get({"source": source, "version": put.answer["version"]}, tmp_path / "get").expect_ok()
    assert got.answer["version"] == put.answer["version"] and (tmp_path / "get" / "backup.tar.gz").is_file()


def test_concurrent_writers_with_keep_and_a_clock_ahead(tmp_path: Path, workdir: Path, repo: Path,
                                                        running: Double) -> None:
    """Five puts at once with keep: 1 onto a branch holding an archive stamped an hour ahead: each put
    that exits 0 (all of them) printed a commit that holds its own archive and is on the branch; a put
    redone on a moved tip keeps the archives the others added meanwhile (their policy keeps them), and the
    next backup applies keep to them."""
    ahead = f"{CLUSTER_NAME}-{stamp(timedelta(hours=1))}.tar.gz"
    seed(repo, tmp_path, [ahead])
    source = backup_source(f"file://{repo}", plaintext=True, keep=1)
    resources = parallel_resources(tmp_path, running, 5)
    runs: list[Any] = [None] * len(resources)

    def one(i: int) -> None:
        runs[i] = resources[i].put(put_request(source, "backup"), workdir, timeout=300)

    in_threads(len(resources), one)
    for run in runs:
        run.expect_ok()
        assert holds(repo, run)
    last = next(r for r in runs if r.answer["version"]["ref"] == first_parents(repo)[-1])
    files = {f.removeprefix("backups/") for f in tree_files(repo, "refs/heads/k0sctl-backup")}
    assert {ahead, last.metadata["archive"]} <= files
    after = resources[0].put(put_request(source, "backup"), workdir).expect_ok()
    assert sorted(tree_files(repo, "refs/heads/k0sctl-backup")) == sorted(
        [f"backups/{ahead}", f"backups/{after.metadata['archive']}"])


def hook(repo: Path, name: str, body: str) -> Path:
    path = repo / "hooks" / name
    path.write_text("#!/bin/sh\n" + body, encoding="utf-8")
    path.chmod(0o755)
    return path


# post-receive runs after the server accepted the push: it puts the branch back (a rewrite by someone
# else), `times` times at most, counting in the file `count`.
REVERT = """count={count}
n=$(cat "$count" 2>/dev/null || echo 0)
[ "$n" -lt {times} ] || exit 0
echo $((n + 1)) > "$count"
while read old new ref; do
  [ "$old" = 0000000000000000000000000000000000000000 ] && git update-ref -d "$ref" || git update-ref "$ref" "$old"
done
"""


def test_a_push_the_server_undoes_is_redone(resource: Resource, workdir: Path, repo: Path, running: Double,
                                            tmp_path: Path) -> None:
    seed(repo, tmp_path, [])
    hook(repo, "post-receive", REVERT.format(count=tmp_path / "count", times=1))
    source = backup_source(f"file://{repo}", plaintext=True)
    put = resource.put(put_request(source, "backup"), workdir).expect_ok()
    assert holds(repo, put)
    assert "retrying on the new tip" in put.stderr and "after 2 attempts" in put.stderr


def test_a_push_the_server_always_undoes_never_exits_0(resource: Resource, workdir: Path, repo: Path,
                                                       running: Double, tmp_path: Path) -> None:
    tip = seed(repo, tmp_path, [])
    hook(repo, "post-receive", REVERT.format(count=tmp_path / "count", times=1000))
    source = backup_source(f"file://{repo}", plaintext=True, timeout="2s")
    run = resource.put(put_request(source, "backup"), workdir, timeout=120)
    assert run.returncode != 0
    assert len(run.error_lines) == 1 and "could not push the backup" in run.error_lines[0], run.stderr
    assert "not on the branch" in run.error_lines[0]
    assert first_parents(repo) == [tip]


def test_a_writer_right_after_the_push_is_fine(resource: Resource, workdir: Path, repo: Path, running: Double,
                                               tmp_path: Path) -> None:
    """Someone else's commit on top of ours before we read the branch back: ours is on its first-parent
    chain and holds the archive, so the put exits 0 with its own commit."""
    seed(repo, tmp_path, [])
    hook(repo, "post-receive", """while read old new ref; do
  tree=$(git rev-parse "$new^{tree}")
  next=$(echo "someone else" | GIT_AUTHOR_NAME=o GIT_AUTHOR_EMAIL=o@x GIT_COMMITTER_NAME=o GIT_COMMITTER_EMAIL=o@x \\
         git commit-tree "$tree" -p "$new")
  git update-ref "$ref" "$next"
done
""")
    source = backup_source(f"file://{repo}", plaintext=True)
    put = resource.put(put_request(source, "backup"), workdir).expect_ok()
    chain = first_parents(repo)
    assert chain[-2] == put.answer["version"]["ref"] and holds(repo, put)


def test_a_push_that_cannot_be_read_back_is_not_reported_as_stored(resource: Resource, workdir: Path, repo: Path,
                                                                   running: Double, tmp_path: Path) -> None:
    """The server accepts the push and then cannot be read (here: the repository moves away at once)."""
    seed(repo, tmp_path, [])
    hook(repo, "post-receive", f"mv '{repo}' '{tmp_path / 'moved.git'}'\n")
    run = resource.put(put_request(backup_source(f"file://{repo}", plaintext=True), "backup"), workdir)
    assert run.returncode != 0 and len(run.error_lines) == 1, run.stderr
    assert "could not read the branch back" in run.error_lines[0]
    assert "the backup is not reported as stored" in run.error_lines[0]
