"""The version of apply, reset and ping (README, "Versions"), through the real `out` step.

With a backup repository it is always a commit of the branch: a missing branch is created with init's
empty commit (also when another put creates it at the same moment), a branch that cannot be read fails
the put before k0sctl changes anything, and after the cluster action the newest commit is read again.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.backup_support import (
    BRANCH,
    backup_source,
    commit_trailers,
    first_parents,
    git,
    tree_files,
)
from tests.support.fixtures import CLUSTER_NAME, Double
from tests.support.k0sctl_hook import k0sctl_with_hook
from tests.support.resource import Resource

LOCAL_HOST = [{"role": "controller", "localhost": {"enabled": True}}]  # ping has nothing to probe: no traffic


@pytest.fixture
def source(repo: Path) -> dict[str, Any]:
    return backup_source(f"file://{repo}", plaintext=True)


def put(source: dict[str, Any], **params: Any) -> dict[str, Any]:
    return {"source": source, "params": params}


def local_config(workdir: Path) -> Path:
    doc = json.loads((workdir / "config" / "k0sctl.yaml").read_text(encoding="utf-8"))
    doc["spec"]["hosts"] = LOCAL_HOST
    (workdir / "config" / "k0sctl.yaml").write_text(json.dumps(doc), encoding="utf-8")
    return workdir


COMMANDS: dict[str, dict[str, Any]] = {
    "apply": {"command": "apply"},
    "apply dry_run": {"command": "apply", "dry_run": True},
    "reset": {"command": "reset", "confirm": CLUSTER_NAME, "backup_first": False},
    "ping": {"command": "ping"},
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_missing_branch_is_created_like_init(resource: Resource, workdir: Path, double: Double, repo: Path,
                                               source: dict[str, Any], command: str) -> None:
    double.set(running=True)
    run = resource.put(put(source, **COMMANDS[command]), local_config(workdir)).expect_ok()
    (sha,) = first_parents(repo)
    assert run.answer["version"] == {"ref": sha}
    assert tree_files(repo, sha) == []
    assert commit_trailers(repo, sha)["K0sctl-Resource-Kind"] == "init"
    assert git(repo, "log", "-1", "--format=%s", sha) == f"init {BRANCH}"
    assert "did not exist: created it with the empty commit init makes" in run.stderr
    # init afterwards finds that branch without archives: nothing changes, it prints the same commit
    again = resource.put(put(source, command="init"), workdir).expect_ok()
    assert again.answer["version"] == {"ref": sha} and again.metadata["created"] == "false"


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_an_unreadable_branch_fails_the_put_before_k0sctl_runs(resource: Resource, workdir: Path, double: Double,
                                                              repo: Path, source: dict[str, Any],
                                                              command: str) -> None:
    double.set(running=True)
    resource.put(put(source, command="init"), workdir).expect_ok()
    repo.rename(repo.with_name("moved-away.git"))  # the repository cannot be read for this put
    run = resource.put(put(source, **COMMANDS[command]), local_config(workdir))
    assert run.returncode != 0 and run.answer is None and run.stdout == ""
    (line,) = run.error_lines
    assert f"cannot read file://{repo}" in line
    assert "this put's version must be a commit of the backup branch" in line
    assert double.commands() == [], "k0sctl must not run when the put's version cannot be read"
    assert double.state()["running"] is True


def test_without_a_backup_repository_the_placeholder(resource: Resource, workdir: Path, double: Double) -> None:
    for params in COMMANDS.values():
        run = resource.put(put({}, **params), local_config(workdir)).expect_ok()
        assert run.answer["version"] == {"ref": "none"}


def test_the_newest_commit_after_the_apply_is_printed(resource: Resource, workdir: Path, double: Double,
                                                     repo: Path, source: dict[str, Any], tmp_path: Path) -> None:
    """A backup another pipeline pushes while k0sctl runs is not printed behind an older commit."""
    init = resource.put(put(source, command="init"), workdir).expect_ok().answer["version"]["ref"]
    clone = tmp_path / "other-pipeline"
    push = (f"git clone -q --branch {BRANCH} file://{repo} {clone} && "
            f"git -C {clone} -c user.name=other -c user.email=other@test commit -q --allow-empty -m other && "
            f"git -C {clone} push -q origin {BRANCH}")
    resource.path_prefix.insert(0, k0sctl_with_hook(tmp_path / "hook", "apply", push))
    run = resource.put(put(source, command="apply"), workdir).expect_ok()
    assert first_parents(repo)[0] == init
    assert run.answer["version"] == {"ref": first_parents(repo)[-1]} != {"ref": init}


def test_a_repository_lost_during_the_apply_prints_the_commit_read_before(
        resource: Resource, workdir: Path, double: Double, repo: Path, source: dict[str, Any],
        tmp_path: Path) -> None:
    """The cluster changed: the put succeeds with the commit read before k0sctl ran, and says why."""
    init = resource.put(put(source, command="init"), workdir).expect_ok().answer["version"]["ref"]
    away = shlex.quote(str(repo.with_name("away.git")))
    resource.path_prefix.insert(0, k0sctl_with_hook(tmp_path / "hook", "apply", f"mv {repo} {away}"))
    run = resource.put(put(source, command="apply"), workdir).expect_ok()
    assert run.answer["version"] == {"ref": init}
    warnings = [line for line in run.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1 and "could not read branch k0sctl-backup" in warnings[0]
    assert f"printing {init[:12]}, its newest commit before the action" in warnings[0]
    assert double.state()["running"] is True


def test_a_branch_deleted_during_the_apply_is_created_again(
        resource: Resource, workdir: Path, double: Double, repo: Path, source: dict[str, Any],
        tmp_path: Path) -> None:
    """The commit read before is no commit of the branch any more (check would never list it): the put
    creates the branch again, as for a missing one, and prints that commit."""
    resource.put(put(source, command="init"), workdir).expect_ok()
    resource.path_prefix.insert(0, k0sctl_with_hook(tmp_path / "hook", "apply",
                                                    f"git -C {shlex.quote(str(repo))} branch -D {BRANCH}"))
    run = resource.put(put(source, command="apply"), workdir).expect_ok()
    (tip,) = first_parents(repo)  # the branch exists again (with the same sha as `init` when it is made
    assert run.answer["version"] == {"ref": tip}  # in the same second: init's commit is deterministic)
    assert "was deleted while this put ran" in run.stderr
    assert double.state()["running"] is True


def test_a_branch_created_by_a_concurrent_put_is_taken(resource: Resource, workdir: Path, double: Double,
                                                      repo: Path, source: dict[str, Any]) -> None:
    """The branch appears between this put's look and its push (another init or backup won the race):
    the push is rejected, the branch is read again and its commit printed; nothing is overwritten."""
    empty_tree = git(repo, "hash-object", "-t", "tree", "-w", "--stdin", input=b"")
    theirs = _commit(repo, empty_tree)
    hook = repo / "hooks" / "pre-receive"
    # The other push lands (outside this push's quarantine) just before the server updates the ref for
    # this one, which then finds the branch already there: the server refuses this push's creation.
    hook.write_text("#!/bin/sh\n"
                    "env -u GIT_QUARANTINE_PATH -u GIT_OBJECT_DIRECTORY -u GIT_ALTERNATE_OBJECT_DIRECTORIES "
                    f"git update-ref refs/heads/{BRANCH} {theirs} ''\n", encoding="utf-8")
    hook.chmod(0o755)
    run = resource.put(put(source, command="apply"), workdir).expect_ok()
    assert run.answer["version"] == {"ref": theirs}
    assert first_parents(repo) == [theirs]
    assert "was created by another put meanwhile" in run.stderr
    assert [argv[0] for argv in double.commands()] == ["apply"]


def _commit(repo: Path, tree: str) -> str:
    proc = subprocess.run(["git", "-C", str(repo), "-c", "user.name=other", "-c", "user.email=other@test",
                           "commit-tree", tree, "-m", "created by the other put"],
                          capture_output=True, text=True, check=True)
    return proc.stdout.strip()


def test_dry_run_and_ping_print_the_existing_tip(resource: Resource, workdir: Path, double: Double, repo: Path,
                                                source: dict[str, Any]) -> None:
    init = resource.put(put(source, command="init"), workdir).expect_ok().answer["version"]
    for params in (COMMANDS["apply dry_run"], COMMANDS["ping"]):
        run = resource.put(put(source, **params), local_config(workdir)).expect_ok()
        assert run.answer["version"] == init
    assert len(first_parents(repo)) == 1
