"""put `init` against real bare repositories (file:// and SSH), through the real `out` step."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.backup_support import (
    BRANCH,
    age_key,
    backup_source,
    bare_repo,
    commit_trailers,
    first_parents,
    git,
    k0s_backup_tar,
    put_request,
    stub_k0sctl,
    tree_files,
    use_stub,
)
from tests.support.resource import Resource, git_history_text
from tests.support.sshd import SshServer


@pytest.fixture
def stub(tmp_path: Path, resource: Resource) -> Path:
    bin_dir = stub_k0sctl(tmp_path / "stub-bin", backup_bytes=k0s_backup_tar())
    use_stub(resource, bin_dir)
    return bin_dir


def test_init_creates_branch_with_one_empty_commit(resource: Resource, workdir: Path, repo: Path, stub: Path) -> None:
    run = resource.put(put_request(backup_source(f"file://{repo}"), "init"), workdir).expect_ok()
    sha = run.answer["version"]["ref"]
    assert first_parents(repo) == [sha]
    assert tree_files(repo, sha) == []
    assert git(repo, "rev-list", "--parents", "-1", sha) == sha  # a root commit
    assert commit_trailers(repo, sha)["K0sctl-Resource-Kind"] == "init"
    assert git(repo, "log", "-1", "--format=%an <%ae>", sha) == "k0sctl-resource <k0sctl-resource@localhost>"
    assert run.metadata["kind"] == "init" and run.metadata["created"] == "true"
    # the implicit get of the printed version succeeds
    out = workdir.parent / "get"
    got = resource.get({"source": backup_source(f"file://{repo}"), "version": run.answer["version"]}, out)
    got.expect_ok()
    assert (out / "metadata.json").exists() and not (out / "backup.tar.gz").exists()


def test_init_on_existing_branch_without_archives_changes_nothing(
        resource: Resource, workdir: Path, repo: Path, stub: Path) -> None:
    source = backup_source(f"file://{repo}", git_user={"name": "Ops Bot", "email": "ops@example.test"})
    first = resource.put(put_request(source, "init"), workdir).expect_ok()
    assert git(repo, "log", "-1", "--format=%an <%ae>", BRANCH) == "Ops Bot <ops@example.test>"
    again = resource.put(put_request(source, "init"), workdir).expect_ok()
    assert again.answer["version"] == first.answer["version"]
    assert again.metadata["created"] == "false"
    assert "nothing changed" in again.stderr
    assert len(first_parents(repo)) == 1


def test_init_refuses_a_branch_with_archives_then_force_keeps_everything(
        resource: Resource, workdir: Path, repo: Path, stub: Path, tmp_path: Path) -> None:
    key = age_key(tmp_path)
    source = backup_source(f"file://{repo}", recipients=[key.recipient], keep=1)
    resource.put(put_request(source, "init"), workdir).expect_ok()
    for _ in range(2):
        resource.put(put_request(source, "backup"), workdir).expect_ok()
    old_chain = first_parents(repo)
    old_tip = old_chain[-1]
    assert len(old_chain) == 3

    refused = resource.put(put_request(source, "init"), workdir)
    assert refused.returncode != 0
    assert len(refused.error_lines) == 1 and "already holds backups" in refused.error_lines[0]
    assert "force: true" in refused.error_lines[0]
    assert first_parents(repo) == old_chain
    assert git(repo, "tag", "--list") == ""

    forced = resource.put(put_request(source, "init", force=True), workdir).expect_ok()
    new_tip = forced.answer["version"]["ref"]
    assert first_parents(repo) == [new_tip]
    tag = forced.metadata["archived_as"]
    assert tag.startswith("k0sctl-backup-archive/")
    assert git(repo, "rev-parse", f"{tag}^{{commit}}") == old_tip
    assert git(repo, "cat-file", "-t", tag) == "tag"  # annotated: who and why
    assert "before init with force: true" in git(repo, "tag", "-l", "--format=%(contents)", tag)
    # nothing lost: every old commit and both archives stay reachable from the tag
    assert git(repo, "rev-list", "--first-parent", "--reverse", tag).split() == old_chain
    trailers = commit_trailers(repo, new_tip)
    assert trailers["Archived-As"] == tag and trailers["Previous-Tip"] == old_tip
    # a second force keeps the (archive-less) new branch as it is: nothing to replace
    again = resource.put(put_request(source, "init", force=True), workdir).expect_ok()
    assert again.answer["version"]["ref"] == new_tip


def test_init_refuses_when_only_history_holds_archives(
        resource: Resource, workdir: Path, repo: Path, stub: Path, tmp_path: Path) -> None:
    """An archive removed from the tree by hand is still a backup in the history: init refuses."""
    source = backup_source(f"file://{repo}", plaintext=True)
    resource.put(put_request(source, "backup"), workdir).expect_ok()
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "-b", BRANCH, str(repo), str(clone))
    git(clone, "rm", "-q", "-r", "backups")
    git(clone, "-c", "user.name=x", "-c", "user.email=x@x", "commit", "-q", "-m", "tidy")
    git(clone, "push", "-q", "origin", BRANCH)
    refused = resource.put(put_request(source, "init"), workdir)
    assert refused.returncode != 0 and "already holds backups (1 archive(s))" in refused.stderr


def test_init_force_over_ssh(resource: Resource, workdir: Path, sshd_server: SshServer,
                                            tmp_path: Path, stub: Path) -> None:
    repo = bare_repo(tmp_path / "ssh-backups.git")
    source = backup_source(sshd_server.url(repo), private_key=sshd_server.client_key,
                           known_hosts=sshd_server.known_hosts, plaintext=True)
    resource.secrets.append(sshd_server.client_key)
    resource.put(put_request(source, "backup"), workdir).expect_ok()
    forced = resource.put(put_request(source, "init", force=True), workdir).expect_ok()
    assert first_parents(repo) == [forced.answer["version"]["ref"]]
    assert git(repo, "tag", "--list").startswith("k0sctl-backup-archive/")
    assert sshd_server.client_key.splitlines()[1] not in git_history_text(repo)
