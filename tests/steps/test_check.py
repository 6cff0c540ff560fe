"""check against real repositories: file:// and SSH to a real sshd, with the cache in the check
container's temporary directory."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.support.backup_support import (
    BRANCH,
    backup_source,
    bare_repo,
    build_history,
    first_parents,
    git,
    ssh_key,
)
from tests.support.resource import Resource, assert_no_secret_in_files
from tests.support.sshd import SshServer


def versions(run: Any) -> list[str]:
    run.expect_ok()
    return [v["ref"] for v in run.answer]


def check(resource: Resource, source: dict[str, Any], ref: str | None = None) -> Any:
    request: dict[str, Any] = {"source": source}
    if ref is not None:
        request["version"] = {"ref": ref}
    return resource.check(request)


def test_no_backup_repository_no_versions(resource: Resource) -> None:
    assert versions(resource.check({"source": {}})) == []


def test_missing_branch_gives_no_versions_and_a_hint(resource: Resource, tmp_path: Path) -> None:
    repo = bare_repo(tmp_path / "r.git")
    run = check(resource, backup_source(f"file://{repo}"))
    assert versions(run) == []
    assert "run a put with params.command: init" in run.stderr


def test_versions_per_spec(resource: Resource, tmp_path: Path) -> None:
    repo = bare_repo(tmp_path / "r.git")
    chain = build_history(repo, 5, 1000)
    source = backup_source(f"file://{repo}")
    assert versions(check(resource, source)) == [chain[-1]]
    assert versions(check(resource, source, chain[-1])) == [chain[-1]]
    assert versions(check(resource, source, chain[1])) == chain[1:]
    assert versions(check(resource, source, chain[0])) == chain
    assert versions(check(resource, source, chain[2][:12])) == chain[2:]  # a pinned abbreviation
    newer = build_history(repo, 2, 1000, start=None)
    # the cache learns the two new commits
    assert versions(check(resource, source, chain[3])) == newer[3:]
    assert versions(check(resource, source, "0" * 40)) == [newer[-1]]  # never on the branch


def test_first_parents_only(resource: Resource, tmp_path: Path) -> None:
    repo = bare_repo(tmp_path / "r.git")
    chain = build_history(repo, 2, 100)
    git(repo, "update-ref", "refs/heads/side", chain[0])
    side = build_history(repo, 2, 100, branch="side", cluster="other")[1:]
    clone = tmp_path / "c"
    git(tmp_path, "clone", "-q", "-b", BRANCH, str(repo), str(clone))
    git(clone, "fetch", "-q", "origin", "side")
    git(clone, "-c", "user.name=x", "-c", "user.email=x@x", "merge", "-q", "--no-ff", "-m", "merge", "FETCH_HEAD")
    git(clone, "push", "-q", "origin", BRANCH)
    merge = git(clone, "rev-parse", "HEAD")
    got = versions(check(resource, backup_source(f"file://{repo}"), chain[0]))
    assert got == [*chain, merge]
    assert len(side) == 2 and not set(side) & set(got)


def test_check_after_force_push(resource: Resource, tmp_path: Path) -> None:
    repo = bare_repo(tmp_path / "r.git")
    old = build_history(repo, 4, 100)
    source = backup_source(f"file://{repo}")
    assert versions(check(resource, source, old[1])) == old[1:]  # fills the cache
    git(repo, "update-ref", "-d", f"refs/heads/{BRANCH}")
    new = build_history(repo, 3, 100)
    assert not set(new) & set(old)
    assert versions(check(resource, source, old[-1])) == [new[-1]]
    assert versions(check(resource, source, new[0])) == new
    shutil.rmtree(resource.tmpdir / "k0sctl-check-cache")  # and the same answers from a cold cache
    assert versions(check(resource, source, old[2])) == [new[-1]]
    assert versions(check(resource, source, new[1])) == new[1:]


def test_version_older_than_first_fetch_depth(resource: Resource, tmp_path: Path) -> None:
    """A cold check whose version is deep in the history deepens until it finds it."""
    repo = bare_repo(tmp_path / "r.git")
    chain = build_history(repo, 120, 10)
    got = versions(check(resource, backup_source(f"file://{repo}"), chain[3]))
    assert got == chain[3:]


def test_missing_repository_fails_clearly(resource: Resource, tmp_path: Path) -> None:
    run = check(resource, backup_source(f"file://{tmp_path}/nope.git"))
    assert run.returncode != 0
    assert len(run.error_lines) == 1
    assert "does not exist" in run.error_lines[0] and "nope.git" in run.error_lines[0]
    assert "Traceback" not in run.stderr


def _ssh_connections(server: SshServer) -> int:
    return len(re.findall(r"Accepted publickey", server.log_file.read_text(errors="replace")))


def test_check_over_ssh_warm_is_one_connection(resource: Resource, sshd_server: SshServer,
                                               tmp_path: Path) -> None:
    repo = bare_repo(tmp_path / "ssh.git")
    chain = build_history(repo, 6, 1000)
    source = backup_source(sshd_server.url(repo), private_key=sshd_server.client_key,
                           known_hosts=sshd_server.known_hosts)
    resource.secrets.append(sshd_server.client_key)
    assert versions(check(resource, source, chain[2])) == chain[2:]  # cold: ls-remote + fetch
    before = _ssh_connections(sshd_server)
    assert versions(check(resource, source, chain[2])) == chain[2:]
    assert versions(check(resource, source)) == [chain[-1]]
    assert _ssh_connections(sshd_server) - before == 2  # one ls-remote per warm check, no fetch
    added = build_history(repo, 1, 1000)
    before = _ssh_connections(sshd_server)
    assert versions(check(resource, source, chain[-1])) == added[-2:]
    assert _ssh_connections(sshd_server) - before == 2  # ls-remote + one incremental fetch
    cache = resource.tmpdir / "k0sctl-check-cache"
    assert cache.is_dir() and cache.stat().st_mode & 0o777 == 0o700
    assert_no_secret_in_files(cache, [sshd_server.client_key])
    assert "ssh://" in (next(cache.glob("*/repo.git/config"))).read_text()


def test_ssh_errors_are_clear_and_secret_free(resource: Resource, sshd_server: SshServer,
                                             tmp_path: Path) -> None:
    repo = bare_repo(tmp_path / "ssh.git")
    build_history(repo, 1, 10)
    stranger = ssh_key(tmp_path, "stranger")
    resource.secrets.append(stranger.private)
    wrong_key = check(resource, backup_source(sshd_server.url(repo), private_key=stranger.private,
                                              known_hosts=sshd_server.known_hosts))
    assert wrong_key.returncode != 0 and "authentication failed" in wrong_key.error_lines[0]
    other_host = ssh_key(tmp_path, "otherhost")
    fake_known = f"[{sshd_server.host}]:{sshd_server.port} {' '.join(other_host.public.split()[:2])}"
    bad_host = check(resource, backup_source(sshd_server.url(repo), private_key=sshd_server.client_key,
                                             known_hosts=fake_known))
    assert bad_host.returncode != 0 and "host key" in bad_host.error_lines[0]
    no_repo = check(resource, backup_source(sshd_server.url(tmp_path / "absent.git"),
                                            private_key=sshd_server.client_key, known_hosts=sshd_server.known_hosts))
    assert no_repo.returncode != 0 and "does not exist" in no_repo.error_lines[0]
    # without ssh_known_hosts the host key is accepted for this step only, never written to ~/.ssh
    tofu = check(resource, backup_source(sshd_server.url(repo), private_key=sshd_server.client_key))
    assert len(versions(tofu)) == 1
    assert not (resource.home / ".ssh").exists()


@pytest.mark.parametrize("allow_filter", [False])
def test_server_without_filters_still_works(resource: Resource, tmp_path: Path, allow_filter: bool) -> None:
    repo = bare_repo(tmp_path / "r.git", allow_filter=allow_filter)
    chain = build_history(repo, 3, 100)
    assert versions(check(resource, backup_source(f"file://{repo}"), chain[0])) == chain
    assert first_parents(repo) == chain


def test_inherited_git_variables_are_ignored(resource: Resource, tmp_path: Path) -> None:
    """Run from a git hook or a task with GIT_DIR set, the steps still use only their own repositories."""
    repo = bare_repo(tmp_path / "r.git")
    chain = build_history(repo, 3, 100)
    decoy = bare_repo(tmp_path / "decoy.git")
    env = {"GIT_DIR": str(decoy), "GIT_INDEX_FILE": str(tmp_path / "decoy-index"), "GIT_WORK_TREE": str(tmp_path)}
    run = resource.check({"source": backup_source(f"file://{repo}"), "version": {"ref": chain[0]}}, env=env)
    assert versions(run) == chain
    assert git(decoy, "for-each-ref") == ""
