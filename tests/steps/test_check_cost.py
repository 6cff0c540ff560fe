"""What a check runs and imports (docs/performance.md): a warm check whose tip has not moved is one `git ls-remote`
and imports nothing it does not use (the store, the put params, traceback, hashlib, difflib, GitPython);
a check that finds new commits adds only its cache's fetch and local plumbing, never `git version`.

git is recorded by a wrapper first on PATH that logs its arguments and runs the real git; imports are
read from the interpreter's own `-X importtime` report (PYTHONPROFILEIMPORTTIME)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from tests.support.backup_support import BRANCH, backup_source, bare_repo, build_history, git
from tests.support.resource import Resource, StepRun


def git_recorder(tmp_path: Path) -> tuple[Path, Path]:
    """A directory with a `git` that appends its argv (one line) to a log and runs the real git."""
    real = shutil.which("git")
    assert real is not None
    folder = tmp_path / "git-recorder"
    folder.mkdir()
    log = tmp_path / "git-calls.log"
    script = folder / "git"
    script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{log}"\nexec "{real}" "$@"\n', encoding="utf-8")
    script.chmod(0o755)
    return folder, log


def calls(log: Path) -> list[str]:
    lines = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    return lines


def imported(run: StepRun) -> set[str]:
    return set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", run.stderr, re.MULTILINE))


def check(resource: Resource, url: str, ref: str) -> StepRun:
    run = resource.check({"source": backup_source(url), "version": {"ref": ref}},
                         env={"PYTHONPROFILEIMPORTTIME": "1"})
    run.expect_ok()
    return run


def recorded_repo(resource: Resource, tmp_path: Path) -> tuple[Path, list[str], str, Path]:
    """A repository with 3 commits, and the resource's git recorded: (repo, chain, url, git log)."""
    repo = bare_repo(tmp_path / "r.git")
    chain = build_history(repo, 3, 100)
    recorder, log = git_recorder(tmp_path)
    resource.path_prefix.insert(0, recorder)
    return repo, chain, f"file://{repo}", log


def test_warm_check_is_one_ls_remote_and_imports_only_what_it_uses(resource: Resource, tmp_path: Path) -> None:
    _repo, chain, url, log = recorded_repo(resource, tmp_path)
    run = check(resource, url, chain[-1])
    assert [v["ref"] for v in run.answer] == [chain[-1]]
    assert calls(log) == [f"ls-remote --exit-code -- {url} refs/heads/{BRANCH}"]
    modules = imported(run)
    assert "k0sctl_resource.steps.check" in modules  # the report is there and names our modules
    unwanted = {m for m in modules if m == "git" or m.startswith(("git.", "gitdb", "smmap"))}
    unwanted |= modules & {"traceback", "hashlib", "difflib", "click", "k0sctl_resource.gitstore.store",
                           "k0sctl_resource.concourse.params", "k0sctl_resource.shared.context",
                           "k0sctl_resource.commands"}
    assert not unwanted


def test_check_finding_new_commits_runs_no_git_version(resource: Resource, tmp_path: Path) -> None:
    repo, chain, url, log = recorded_repo(resource, tmp_path)
    cold = check(resource, url, chain[0])  # creates the cache: git init + a shallow fetch
    assert [v["ref"] for v in cold.answer] == chain
    first = calls(log)
    assert [c.split()[0] for c in first] == ["ls-remote", "init", "fetch", "rev-list"]
    newer = build_history(repo, 2, 100)
    run = check(resource, url, chain[-1])
    assert [v["ref"] for v in run.answer] == newer[-3:]
    second = calls(log)
    assert [c.split()[0] for c in second] == ["ls-remote", "fetch", "rev-list"]  # the new commits and their parents
    for line in first + second:
        assert not line.startswith("version"), line
        if url in line:
            assert f" -- {url} " in line, line  # nothing that follows could be read as an option
    assert not {m for m in imported(run) if m == "git" or m.startswith("git.")}


# -- the cache's one-command walk over new commits gives the same answers ------------------------------

def test_new_commits_after_a_merge_are_first_parents_only(resource: Resource, tmp_path: Path) -> None:
    repo, chain, url, _log = recorded_repo(resource, tmp_path)
    assert [v["ref"] for v in check(resource, url, chain[0]).answer] == chain  # fills the cache
    git(repo, "update-ref", "refs/heads/side", chain[0])
    side = build_history(repo, 2, 100, branch="side", cluster="other")[1:]
    tree = git(repo, "rev-parse", f"{chain[-1]}^{{tree}}")
    merge = git(repo, "-c", "user.name=x", "-c", "user.email=x@x", "commit-tree", tree, "-p", chain[-1], "-p", side[-1],
                "-m", "merge")
    git(repo, "update-ref", f"refs/heads/{BRANCH}", merge)
    after = build_history(repo, 1, 100)[-1]
    got = [v["ref"] for v in check(resource, url, chain[1]).answer]
    assert got == [*chain[1:], merge, after]
    assert not set(side) & set(got)


def test_branch_moved_back_to_an_older_commit(resource: Resource, tmp_path: Path) -> None:
    repo, chain, url, _log = recorded_repo(resource, tmp_path)
    assert [v["ref"] for v in check(resource, url, chain[0]).answer] == chain  # the cache's tip: chain[2]
    git(repo, "update-ref", f"refs/heads/{BRANCH}", chain[1])
    assert [v["ref"] for v in check(resource, url, chain[0]).answer] == chain[:2]
    assert [v["ref"] for v in check(resource, url, chain[2]).answer] == [chain[1]]  # gone: the newest
