"""An archive's name is never used twice in the branch's history, even when retention removed the archive
that had it from the tree: puts against a real bare repository, one after the other, replaying what racing
puts did."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from k0sctl_resource.config.models import Retention, parse_source
from k0sctl_resource.gitstore.commit_format import as_new_as, same_second
from k0sctl_resource.gitstore.names_used import FIRST_DEEPEN, folder_names, names_taken
from k0sctl_resource.gitstore.pruning import Pruning
from k0sctl_resource.gitstore.push import PushedArchive, push_archive
from k0sctl_resource.gitstore.store import EMPTY_TREE
from k0sctl_resource.runtime.workspace import Workspace
from tests.support.backup_support import BRANCH, build_history, git
from tests.support.stores import store_of

STEM = "prod-eu"
SECOND = datetime(2026, 12, 7, 10, 5, 41, tzinfo=UTC)
POLICY = Retention(keep_last=1, keep_daily=3)


def name_at(moment: datetime, n: int = 1) -> str:
    return f"{STEM}-{moment.strftime('%Y%m%dT%H%M%SZ')}{'' if n == 1 else f'-{n}'}.tar.gz"


def put(repo: Path, tmp_path: Path, moment: datetime, *,
        policy: Retention | None = POLICY) -> tuple[PushedArchive, int]:
    """One put of an archive stamped `moment` (its own workspace, as a put step has): what it pushed, and how
    many commits its private repository fetched."""
    archive = tmp_path / "archive.tar.gz"
    archive.write_bytes(moment.isoformat().encode())  # each archive its own content
    with Workspace() as ws:
        store = store_of(parse_source({"backup": {"uri": f"file://{repo}"}}), ws)
        pushed = push_archive(store, archive, name_at(moment), lambda name, _p, _d: f"backup {name}\n",
                              Pruning(policy, STEM, moment + timedelta(seconds=5)))
        objects = git(store.scratch().cwd, "cat-file", "--batch-all-objects", "--batch-check=%(objecttype)")
    return pushed, objects.split().count("commit")


def added(repo: Path) -> list[str]:
    """Every archive name the branch's history ever added, oldest first (with repeats)."""
    out = git(repo, "log", "--reverse", "--first-parent", "--diff-filter=A", "--name-only", "--format=", BRANCH)
    return [line.removeprefix("backups/") for line in out.splitlines() if line.strip()]


def test_a_name_retention_removed_is_not_taken_again(repo: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """The failed race, replayed: :41 added, then removed by :42's retention; a put of :41 after that (it
    took its archive in that second, and pushed last) gets a name the branch never had."""
    build_history(repo, 3, 64, cluster=STEM, start=SECOND - timedelta(days=3), every=timedelta(days=1))
    first, _ = put(repo, tmp_path, SECOND)
    second, _ = put(repo, tmp_path, SECOND + timedelta(seconds=1))
    assert first.archive == name_at(SECOND) and first.archive in second.removed, "the race's setting"
    again, fetched = put(repo, tmp_path, SECOND)
    assert again.archive == name_at(SECOND, 2), f"{again.archive}: the name of the archive retention removed"
    assert f"{name_at(SECOND)}: the branch already had {name_at(SECOND)} (removed" in capsys.readouterr().err
    assert fetched <= 2 + FIRST_DEEPEN, f"{fetched} commits fetched for a history of 6"
    names = added(repo)
    assert len(names) == len(set(names)), f"a name used twice: {names}"


def test_the_history_is_read_back_as_far_as_the_second_reaches(repo: Path, tmp_path: Path) -> None:
    """Twenty later puts, each removing the one before: the name of :41 is found 21 commits down."""
    last = Retention(keep_last=1)
    put(repo, tmp_path, SECOND, policy=last)
    for i in range(1, 21):
        put(repo, tmp_path, SECOND + timedelta(seconds=i), policy=last)
    assert git(repo, "ls-tree", "--name-only", "-r", BRANCH) == f"backups/{name_at(SECOND + timedelta(seconds=20))}"
    again, _ = put(repo, tmp_path, SECOND, policy=last)
    assert again.archive == name_at(SECOND, 2)
    third, _ = put(repo, tmp_path, SECOND, policy=last)
    assert third.archive == name_at(SECOND, 3), "-2 is in the history too now"
    names = added(repo)
    assert len(names) == len(set(names)), f"a name used twice: {names}"


def test_names_without_a_collision_stay_as_they_were_and_read_no_history(repo: Path, tmp_path: Path) -> None:
    build_history(repo, 100, 64, cluster=STEM, start=SECOND - timedelta(days=100), every=timedelta(days=1))
    newest, fetched = put(repo, tmp_path, SECOND)
    assert newest.archive == name_at(SECOND) and fetched == 2, "the tip and its own commit: no history read"
    # A put of an older second than the tree's newest, whose name the branch never had: its name, after
    # reading back only to the commit before the newer archive came.
    older, fetched = put(repo, tmp_path, SECOND - timedelta(seconds=1))
    assert older.archive == name_at(SECOND - timedelta(seconds=1))
    assert fetched <= 2 + FIRST_DEEPEN, f"{fetched} commits of 102 fetched"
    # Two of one second, both in the tree: `-2` as before (no policy: nothing is removed).
    twin, _ = put(repo, tmp_path, SECOND, policy=None)
    assert twin.archive == name_at(SECOND, 2)


def test_only_the_series_and_its_second_count() -> None:
    wanted = name_at(SECOND)
    names = [name_at(SECOND, 3), f"{STEM}-20261207T100541Z.tar.gz.age", "other-20261207T100541Z.tar.gz",
             name_at(SECOND - timedelta(seconds=1)), "notes.txt"]
    assert same_second(names, wanted) == {name_at(SECOND, 3), f"{STEM}-20261207T100541Z.tar.gz.age"}
    assert as_new_as([name_at(SECOND + timedelta(days=1))], wanted)
    assert as_new_as([name_at(SECOND, 2)], wanted)
    assert not as_new_as([name_at(SECOND - timedelta(seconds=1)), "other-20271207T100541Z.tar.gz", "notes.txt"],
                         wanted)
    assert not as_new_as([], "notes.txt")


def test_a_branch_replaced_while_the_history_is_read_ends_the_walk(repo: Path, tmp_path: Path) -> None:
    """The branch no longer leads to the tip read (init with force replaced it): the walk ends with what it
    read (the push on top of that tip is then refused and redone on the new one)."""
    last = Retention(keep_last=1)
    put(repo, tmp_path, SECOND, policy=last)
    put(repo, tmp_path, SECOND + timedelta(seconds=1), policy=last)
    with Workspace() as ws:
        store = store_of(parse_source({"backup": {"uri": f"file://{repo}"}}), ws)
        runner = store.scratch()
        tip = store.fetch_tip(runner)
        assert tip is not None
        present = folder_names(store, runner, tip)
        root = git(repo, "commit-tree", EMPTY_TREE, "-m", "init")
        git(repo, "update-ref", f"refs/heads/{BRANCH}", root)
        taken = names_taken(store, runner, tip, present, name_at(SECOND))
    assert set(present) <= taken <= {*present, name_at(SECOND)}
