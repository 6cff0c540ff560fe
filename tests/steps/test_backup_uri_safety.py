"""docs/security.md, "A URI is data, never a program": hostile `backup.uri`, `backup.branch` and `backup.path`
values are refused with one line before git runs, and git is started so that it could not run a
program anyway (tested below the parser, with URLs that bypass it, and with a hostile git config and
environment around a real backup)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from k0sctl_resource.config.models import parse_source
from k0sctl_resource.gitstore.runner import GitFailure
from k0sctl_resource.gitstore.url import RemoteUrl
from k0sctl_resource.runtime.errors import ResourceError
from k0sctl_resource.runtime.workspace import Workspace
from tests.support.backup_support import backup_source, bare_repo, first_parents, put_request
from tests.support.fixtures import Double
from tests.support.resource import Resource
from tests.support.stores import store_of


def plant(bin_dir: Path, name: str, marker: Path) -> None:
    """An executable `name` on PATH that leaves `marker` when anything runs it."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / name
    script.write_text(f"#!/bin/sh\ntouch '{marker}'\nexit 1\n", encoding="utf-8")
    script.chmod(0o755)


@pytest.fixture
def trap(resource: Resource, tmp_path: Path) -> Path:
    """The marker every hostile URL below tries to create; remote helpers for it are planted on PATH."""
    marker = tmp_path / "pwned"
    bin_dir = tmp_path / "trap-bin"
    for helper in ("name", "foo", "fd", "ext", "x"):
        plant(bin_dir, f"git-remote-{helper}", marker)
    resource.path_prefix.insert(0, bin_dir)
    return marker


HOSTILE_URIS = [
    "--upload-pack=cd;touch pwned;false:x",
    "--upload-pack=touch /tmp/k0sctl-resource-test-pwned:x",
    "name::x",
    "fd::0",
    "fd::3,4",
    "ext::sh -c touch% pwned",
    "EXT::sh -c touch% pwned",
    "foo://example.test/x",
    "git://127.0.0.1/backups.git",
    "ssh://-oProxyCommand=touch%20pwned/x",
    "ssh://-oProxyCommand=touch pwned@host/x",
    "git+ssh://h/-x",
    "-oProxyCommand=touch pwned@host:x",
    "git@-oProxyCommand=touch pwned:x",
    "git@host:-u touch",
    "host:--upload-pack=touch pwned",
    "https://-host.example/x",
    "https://host;touch pwned/x",
    "https://u:p@host\n.example/x",
    "file://-x/repo",
    "file://host.example/srv/repo",
    "x::https://127.0.0.1/repo",
    "http://user:pw@127.0.0.1/repo.git",
]


@pytest.mark.parametrize("uri", HOSTILE_URIS)
def test_hostile_uri_is_refused_before_git_runs(resource: Resource, trap: Path, uri: str) -> None:
    started = time.monotonic()
    run = resource.check({"source": backup_source(uri)}, timeout=30)
    assert time.monotonic() - started < 15  # fd::0 would wait on stdin for ever
    assert run.returncode != 0
    assert len(run.error_lines) == 1 and run.error_lines[0].startswith("error: source.backup.uri:"), run.stderr
    assert "Traceback" not in run.stderr and "internal error" not in run.stderr
    assert not trap.exists() and not (resource.home / "pwned").exists()
    assert not Path("/tmp/k0sctl-resource-test-pwned").exists()


@pytest.mark.parametrize(("key", "value"), [("branch", "-x"), ("branch", "--upload-pack=touch pwned"),
                                            ("branch", "a\nb"), ("branch", "@{-1}"), ("path", "-x"),
                                            ("path", "backups/--force"), ("path", "a\nb")])
def test_branch_and_path_that_read_as_options_are_refused(resource: Resource, trap: Path, tmp_path: Path,
                                                         key: str, value: str) -> None:
    repo = bare_repo(tmp_path / "b.git")
    source = backup_source(f"file://{repo}")
    source["backup"][key] = value
    run = resource.check({"source": source})
    assert run.returncode != 0 and len(run.error_lines) == 1
    assert run.error_lines[0].startswith(f"error: source.backup.{key}:"), run.stderr
    assert not trap.exists()


@pytest.mark.parametrize("uri", ["ssh://git@git.example.test:2222/ops/b.git", "git@git.example.test:ops/b.git",
                                 "ssh://[::1]/srv/b.git", "git@[fe80::1%eth0]:b.git", "https://git.example.test/b",
                                 "https://u:p@git.example.test:8443/b.git", "http://127.0.0.1:8080/b.git",
                                 "file:///srv/b.git", "/srv/b.git", "file://localhost/srv/b.git"])
def test_ordinary_uris_still_parse(uri: str) -> None:
    remote = RemoteUrl.parse(uri)
    assert remote.url and remote.transport in ("ssh", "https", "http", "file")
    assert "p@" not in remote.url


# -- below the parser: git itself is started so that it cannot run a program ------------------------

@pytest.mark.parametrize(("url", "transport"), [
    ("name::x", "ssh"), ("ext::sh -c touch% {marker}", "file"), ("fd::0", "ssh"),
    ("--upload-pack=touch {marker};false:x", "ssh"), ("--upload-pack=touch {marker};false:x", "file"),
    ("foo://example.test/x", "https"), ("ssh://127.0.0.1:1/x", "https"),
])
def test_git_refuses_what_the_parser_would_have_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       url: str, transport: str) -> None:
    marker = tmp_path / "pwned"
    bin_dir = tmp_path / "bin"
    for helper in ("name", "fd", "ext", "foo"):
        plant(bin_dir, f"git-remote-{helper}", marker)
    monkeypatch.setenv("PATH", f"{bin_dir}:{Path('/usr/bin')}:{Path('/bin')}")
    monkeypatch.chdir(tmp_path)
    hostile = RemoteUrl(url=url.format(marker=marker), transport=transport, host="x")  # type: ignore[arg-type]
    with Workspace() as ws:
        store = store_of(parse_source({"backup": {"uri": "https://git.example.test/b.git", "timeout": "5s"}}), ws)
        store.auth.remote = hostile
        started = time.monotonic()
        with pytest.raises(GitFailure) as failure:
            store.remote_tip()
        assert time.monotonic() - started < 10
    assert not marker.exists() and not (tmp_path / "pwned").exists()
    assert "\n" not in str(failure.value)


def test_hostile_git_config_and_environment_run_nothing(resource: Resource, workdir: Path, double: Double,
                                                        tmp_path: Path) -> None:
    """A ~/.gitconfig and inherited GIT_* variables that would run programs or rewrite the URL do not."""
    marker = tmp_path / "pwned"
    repo = bare_repo(tmp_path / "b.git")
    cmd = f"sh -c 'touch {marker}; exit 1'"
    gitconfig = (f"[core]\n\tsshCommand = {cmd}\n\thooksPath = {tmp_path}/hooks\n\tfsmonitor = {marker}.fsm\n"
                 f"[url \"ext::sh -c touch% {marker}% \"]\n\tinsteadOf = file://\n"
                 "[protocol]\n\tallow = always\n[credential]\n\thelper = !touch " + str(marker) + "\n"
                 f"[remote \"file://{repo}\"]\n\tuploadpack = {cmd}\n\treceivepack = {cmd}\n")
    (resource.home / ".gitconfig").write_text(gitconfig, encoding="utf-8")
    (tmp_path / "hooks").mkdir()
    plant(tmp_path / "hooks", "pre-push", marker)
    env = {"GIT_SSH_COMMAND": cmd, "GIT_SSH": str(tmp_path / "hooks" / "pre-push"), "GIT_PROXY_COMMAND": cmd,
           "GIT_CONFIG_PARAMETERS": f"'core.sshcommand'='{cmd}'", "GIT_ALLOW_PROTOCOL": "ext:file:ssh",
           "GIT_EXEC_PATH": str(tmp_path / "hooks"), "GIT_ASKPASS": str(tmp_path / "hooks" / "pre-push")}
    double.set(running=True)
    source = backup_source(f"file://{repo}", plaintext=True)
    put = resource.put(put_request(source, "backup"), workdir, env=env).expect_ok()
    assert first_parents(repo) == [put.answer["version"]["ref"]]
    resource.check({"source": source, "version": put.answer["version"]}, env=env).expect_ok()
    assert not marker.exists() and not Path(f"{marker}.fsm").exists()


def test_parser_errors_are_resource_errors() -> None:
    for uri in HOSTILE_URIS:
        if uri.startswith("http://user"):
            continue  # refused by GitAuth (credentials over http), not by the parser
        with pytest.raises(ResourceError) as refused:
            RemoteUrl.parse(uri)
        assert str(refused.value).startswith("source.backup.uri:") and "\n" not in str(refused.value)
