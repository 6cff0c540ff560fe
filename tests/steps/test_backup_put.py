"""put `backup` through the real `out` step, with the k0sctl test double, into real repositories."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from tests.support import DOUBLE_DIR, PINNED
from tests.support.backup_support import (
    age_key,
    backup_source,
    bare_repo,
    commit_trailers,
    first_parents,
    git,
    in_threads,
    parallel_resources,
    put_request,
    ssh_key,
    tree_files,
)
from tests.support.fixtures import CLUSTER_NAME, Double
from tests.support.resource import BUILD_ENV, Resource, assert_no_secret_in_files, git_history_text
from tests.support.sshd import SshServer
from tests.support.tools import needs_tool

needs_age = needs_tool("age", "Debian package age")


def backup_calls(double: Double) -> list[list[str]]:
    return [argv for argv in double.commands() if argv[:1] == ["backup"]]


def blob(repo: Path, rev: str, path: str) -> bytes:
    return subprocess.run(["git", "-C", str(repo), "cat-file", "blob", f"{rev}:{path}"], capture_output=True,
                          check=True).stdout


def age_decrypt(identity_file: Path, data: bytes, tmp_path: Path) -> bytes:
    sealed = tmp_path / "sealed.age"
    sealed.write_bytes(data)
    return subprocess.run(["age", "-d", "-i", str(identity_file), str(sealed)], capture_output=True,
                          check=True).stdout


def tar_names(data: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return tar.getnames()


@needs_age
def test_backup_encrypted_to_age_recipient(resource: Resource, workdir: Path, repo: Path, running: Double,
                                           tmp_path: Path) -> None:
    key = age_key(tmp_path)
    resource.secrets.append(key.identity)
    source = backup_source(f"file://{repo}", recipients=[key.recipient], identities=key.identity)
    run = resource.put(put_request(source, "backup"), workdir, env=BUILD_ENV).expect_ok()
    ref = run.answer["version"]["ref"]
    assert first_parents(repo) == [ref]  # the branch was created by the backup
    (path,) = tree_files(repo, ref)
    archive = run.metadata["archive"]
    assert path == f"backups/{archive}"
    assert archive.startswith(f"{CLUSTER_NAME}-") and archive.endswith(".tar.gz.age")
    plain = age_decrypt(key.path, blob(repo, ref, path), tmp_path)
    assert "k0s.yaml" in tar_names(plain) and "etcd-snapshot.db" in tar_names(plain)
    meta = run.metadata
    assert meta["sha256"] == hashlib.sha256(plain).hexdigest() and meta["size"] == str(len(plain))
    assert meta["cluster"] == CLUSTER_NAME and meta["encrypted"] == "true" and meta["ref"] == ref
    assert int(meta["entries"]) == len(tar_names(plain))
    trailers = commit_trailers(repo, ref)
    assert trailers["K0sctl-Resource-Kind"] == "backup" and trailers["Sha256"] == meta["sha256"]
    assert trailers["Build-Url"] == BUILD_ENV["BUILD_URL"] and trailers["Cluster"] == CLUSTER_NAME
    assert trailers["K0sctl-Version"] == PINNED
    # k0sctl wrote the plain archive into a private directory that is gone now; the plain archive is
    # in no commit
    (argv,) = backup_calls(running)
    output = Path(argv[argv.index("--output") + 1])
    assert output.parent.parent.name.startswith("k0sctl-resource-") and output.is_relative_to(resource.tmpdir)
    assert not output.parent.parent.exists()
    plain_blob = subprocess.run(["git", "hash-object", "--stdin"], input=plain, capture_output=True,
                                check=True).stdout.decode().strip()
    assert subprocess.run(["git", "-C", str(repo), "cat-file", "-e", plain_blob], check=False).returncode != 0
    # the implicit get of the printed version
    out = tmp_path / "get"
    resource.get({"source": source, "version": {"ref": ref}, "params": {"decrypt": True}}, out).expect_ok()
    assert (out / "backup.tar.gz").read_bytes() == plain


@needs_age
def test_backup_over_ssh_to_ssh_recipient(resource: Resource, workdir: Path, running: Double,
                                          sshd_server: SshServer, tmp_path: Path) -> None:
    repo = bare_repo(tmp_path / "ssh.git")
    recipient = ssh_key(tmp_path, "ops")
    source = backup_source(sshd_server.url(repo), private_key=sshd_server.client_key,
                           known_hosts=sshd_server.known_hosts, recipients=[recipient.public])
    resource.secrets += [sshd_server.client_key, recipient.private]
    run = resource.put(put_request(source, "backup"), workdir).expect_ok()
    ref = run.answer["version"]["ref"]
    plain = age_decrypt(recipient.path, blob(repo, ref, f"backups/{run.metadata['archive']}"), tmp_path)
    assert hashlib.sha256(plain).hexdigest() == run.metadata["sha256"]
    history = git_history_text(repo)
    for secret in (sshd_server.client_key, recipient.private):
        assert secret.splitlines()[1] not in history
    assert not (resource.home / ".ssh").exists()


def test_backup_scp_style_url(resource: Resource, workdir: Path, running: Double, sshd_port22: SshServer,
                              tmp_path: Path) -> None:
    repo = bare_repo(tmp_path / "scp.git")
    source = backup_source(sshd_port22.scp_url(repo), private_key=sshd_port22.client_key,
                           known_hosts=sshd_port22.known_hosts, plaintext=True)
    resource.secrets.append(sshd_port22.client_key)
    run = resource.put(put_request(source, "backup"), workdir).expect_ok()
    assert first_parents(repo) == [run.answer["version"]["ref"]]


def test_unencrypted_backup_refused_before_k0sctl_runs(resource: Resource, workdir: Path, repo: Path,
                                                       running: Double) -> None:
    run = resource.put(put_request(backup_source(f"file://{repo}"), "backup"), workdir)
    assert run.returncode != 0
    assert len(run.error_lines) == 1 and "refusing to store an unencrypted backup" in run.error_lines[0]
    assert "encryption.plaintext: true" in run.error_lines[0]
    assert backup_calls(running) == []
    assert git(repo, "for-each-ref") == ""


def test_plaintext_backup_when_asked(resource: Resource, workdir: Path, repo: Path, running: Double) -> None:
    run = resource.put(put_request(backup_source(f"file://{repo}", plaintext=True), "backup"), workdir).expect_ok()
    ref = run.answer["version"]["ref"]
    assert run.metadata["archive"].endswith(".tar.gz") and run.metadata["encrypted"] == "false"
    data = blob(repo, ref, f"backups/{run.metadata['archive']}")
    assert hashlib.sha256(data).hexdigest() == run.metadata["sha256"]
    assert "storing the archive unencrypted" in run.stderr


def test_backup_without_repository_is_a_clear_error(resource: Resource, workdir: Path, running: Double) -> None:
    run = resource.put({"source": {}, "params": {"command": "backup"}}, workdir)
    assert run.returncode != 0 and "backup needs source.backup" in run.error_lines[0]
    assert backup_calls(running) == []


def test_stopped_cluster_has_no_running_controller(resource: Resource, workdir: Path, repo: Path,
                                                   double: Double) -> None:
    double.set(running=False)
    run = resource.put(put_request(backup_source(f"file://{repo}", plaintext=True), "backup"), workdir)
    assert run.returncode != 0
    assert "no running controller" in run.error_lines[0]
    assert git(repo, "for-each-ref") == ""


def test_unreadable_archive_is_never_committed(resource: Resource, workdir: Path, repo: Path,
                                               running: Double) -> None:
    source = backup_source(f"file://{repo}", plaintext=True)
    first = resource.put(put_request(source, "backup"), workdir).expect_ok().answer["version"]["ref"]
    running.set(backup_corrupt=True)
    run = resource.put(put_request(source, "backup"), workdir)
    assert run.returncode != 0
    assert "is not a readable tar.gz" in run.error_lines[0]
    assert first_parents(repo) == [first]


def test_old_k0sctl_writes_into_the_working_directory(resource: Resource, workdir: Path, repo: Path,
                                                      running: Double) -> None:
    run = resource.put(put_request(backup_source(f"file://{repo}", plaintext=True), "backup"), workdir,
                       env={"K0SCTL_DOUBLE_VERSION": "v0.22.0"}).expect_ok()
    (argv,) = backup_calls(running)
    assert "--output" not in argv
    assert run.metadata["k0sctl_version"] == "v0.22.0"
    data = blob(repo, run.answer["version"]["ref"], f"backups/{run.metadata['archive']}")
    assert "k0s.yaml" in tar_names(data)


def test_keep_removes_old_archives_from_the_tree_only(resource: Resource, workdir: Path, repo: Path,
                                                      running: Double) -> None:
    source = backup_source(f"file://{repo}", plaintext=True, keep=2)
    names = [resource.put(put_request(source, "backup"), workdir).expect_ok().metadata["archive"] for _ in range(4)]
    assert len(set(names)) == 4  # unique even within one second
    chain = first_parents(repo)
    assert len(chain) == 4
    assert sorted(tree_files(repo, chain[-1])) == sorted(f"backups/{n}" for n in names[-2:])
    for rev, name in zip(chain, names, strict=True):  # history keeps every archive
        assert blob(repo, rev, f"backups/{name}")
    assert commit_trailers(repo, chain[-1])["Removed-Archives"] == "1"


def test_unreachable_repository_fails_before_k0sctl(resource: Resource, workdir: Path, running: Double,
                                                    sshd_server: SshServer, tmp_path: Path) -> None:
    repo = bare_repo(tmp_path / "ssh.git")
    stranger = ssh_key(tmp_path, "stranger")
    resource.secrets.append(stranger.private)
    source = backup_source(sshd_server.url(repo), private_key=stranger.private, known_hosts=sshd_server.known_hosts,
                           plaintext=True)
    run = resource.put(put_request(source, "backup"), workdir)
    assert run.returncode != 0 and "authentication failed" in run.error_lines[0]
    assert backup_calls(running) == []


@needs_age
def test_six_concurrent_backups_all_land(tmp_path: Path, workdir: Path, repo: Path, running: Double) -> None:
    key = age_key(tmp_path)
    source = backup_source(f"file://{repo}", recipients=[key.recipient], identities=key.identity, keep=0)
    runs: list[Any] = [None] * 6
    resources = parallel_resources(tmp_path, running, 6, secrets=[key.identity])

    def one(i: int) -> None:
        runs[i] = resources[i].put(put_request(source, "backup"), workdir, timeout=300)

    in_threads(6, one)
    for run in runs:
        run.expect_ok()
    chain = first_parents(repo)
    refs = [run.answer["version"]["ref"] for run in runs]
    assert len(chain) == 6 and sorted(refs) == sorted(chain)
    names = {run.metadata["archive"] for run in runs}
    assert len(names) == 6
    assert sorted(tree_files(repo, chain[-1])) == sorted(f"backups/{n}" for n in names)
    for run in runs:  # every archive is the one its put reported, and decrypts
        data = blob(repo, run.answer["version"]["ref"], f"backups/{run.metadata['archive']}")
        assert hashlib.sha256(age_decrypt(key.path, data, tmp_path)).hexdigest() == run.metadata["sha256"]
    retries = sum(run.stderr.count("retrying on the new tip") for run in runs)
    print(f"6 concurrent puts: {retries} rejected pushes retried")
    assert key.identity.strip().splitlines()[-1] not in git_history_text(repo)


def test_secrets_never_leave(resource: Resource, workdir: Path, repo: Path, running: Double, tmp_path: Path) -> None:
    key = age_key(tmp_path)
    k0s_key = ssh_key(tmp_path, "hosts")
    secrets = [key.identity, k0s_key.private, "the-passphrase-is-long"]
    resource.secrets += secrets
    source = backup_source(f"file://{repo}", recipients=[key.recipient], identities=key.identity)
    source["ssh_private_key"] = k0s_key.private
    run = resource.put(put_request(source, "backup"), workdir, env=BUILD_ENV).expect_ok()
    out = tmp_path / "get"
    got = resource.get({"source": source, "version": run.answer["version"], "params": {"decrypt": True}},
                       out).expect_ok()
    history = git_history_text(repo)
    for secret in secrets:
        for line in (s.strip() for s in secret.splitlines() if len(s.strip()) >= 16 and "-----" not in s):
            assert line not in history
            assert line not in json.dumps(run.answer) and line not in json.dumps(got.answer)
    assert_no_secret_in_files(out, secrets)
    assert_no_secret_in_files(repo, secrets)


def test_python_interface_for_apply_and_reset(tmp_path: Path, workdir: Path, repo: Path, double: Double,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """take_backup raises NoRunningController for a stopped cluster and pushes for a running one;
    branch_version answers none only without a backup repository, creates a missing branch like init,
    then answers the branch's tip."""
    from k0sctl_resource.config.cluster import load_cluster
    from k0sctl_resource.config.models import NONE_VERSION, parse_source
    from k0sctl_resource.shared.backups import NoRunningController, take_backup
    from k0sctl_resource.shared.context import StepContext
    from k0sctl_resource.shared.latest import branch_version

    monkeypatch.setenv("PATH", f"{DOUBLE_DIR}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("K0SCTL_DOUBLE_STATE", str(double.state_file))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    cluster = load_cluster(workdir / "config" / "k0sctl.yaml")
    with StepContext(parse_source({})) as ctx:
        assert branch_version(ctx) == NONE_VERSION
    source = parse_source(backup_source(f"file://{repo}", plaintext=True))
    with StepContext(source) as ctx:
        created = branch_version(ctx)
        assert [created.ref] == first_parents(repo)
        assert commit_trailers(repo, created.ref)["K0sctl-Resource-Kind"] == "init"
        double.set(running=False)
        with pytest.raises(NoRunningController):
            take_backup(ctx, cluster, reason="before reset")
        double.set(running=True)
        result = take_backup(ctx, cluster, reason="before reset")
        assert branch_version(ctx) == result.version
    assert commit_trailers(repo, result.version.ref)["Reason"] == "before reset"
