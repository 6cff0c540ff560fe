"""docs/security.md, "Every git wait is bounded": servers that accept and never answer (HTTP, HTTPS,
SSH) end a check within `source.backup.timeout` with one clear line; a push that keeps being rejected
stops after PUSH_ATTEMPTS attempts or after the retry window, whichever comes first."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from k0sctl_resource.config.models import parse_source
from k0sctl_resource.gitstore.pruning import Pruning
from k0sctl_resource.gitstore.push import PUSH_ATTEMPTS, push_archive
from k0sctl_resource.runtime.errors import ResourceError
from k0sctl_resource.runtime.workspace import Workspace
from tests.support.backup_support import backup_source, build_history, put_request
from tests.support.fixtures import Double
from tests.support.git_https import SilentListener
from tests.support.resource import Resource
from tests.support.stores import auth_of, store_of


@pytest.mark.parametrize(("scheme", "bound"), [("http", 3), ("https", 3), ("ssh", 3), ("http", 1)])
def test_a_server_that_never_answers_ends_the_check_in_time(resource: Resource, silent_listener: SilentListener,
                                                            scheme: str, bound: int) -> None:
    url = f"{scheme}://127.0.0.1:{silent_listener.port}/backups.git"
    started = time.monotonic()
    run = resource.check({"source": backup_source(url, timeout=f"{bound}s")}, timeout=120)
    took = time.monotonic() - started
    assert run.returncode != 0 and silent_listener.accepted
    assert len(run.error_lines) == 1, run.stderr
    assert "no answer in time" in run.error_lines[0] and url in run.error_lines[0], run.error_lines
    assert took < 2 * bound + 4, f"the check took {took:.1f}s with backup.timeout {bound}s"
    print(f"{scheme} server that never answers, backup.timeout {bound}s: check ended after {took:.1f}s")


def test_a_put_against_a_server_that_never_answers_stops_before_k0sctl(
        resource: Resource, workdir: Path, running: Double, silent_listener: SilentListener) -> None:
    url = f"http://127.0.0.1:{silent_listener.port}/backups.git"
    started = time.monotonic()
    run = resource.put(put_request(backup_source(url, plaintext=True, timeout="2s"), "backup"), workdir)
    assert run.returncode != 0 and len(run.error_lines) == 1
    assert time.monotonic() - started < 10
    assert running.commands() == []


def test_the_default_bound_and_where_it_goes() -> None:
    for given, stall in ((None, 60), ("90s", 90), ("2m30s", 150)):
        backup = {"uri": "https://git.example.test/b.git", **({"timeout": given} if given else {})}
        with Workspace() as ws:
            auth = auth_of(parse_source({"backup": backup}), ws)
            assert auth.bounds.stall == stall
            assert (auth.bounds.call, auth.bounds.bulk, auth.bounds.retry_window) == (2 * stall, 10 * stall,
                                                                                      5 * stall)
            assert auth.env["GIT_HTTP_LOW_SPEED_TIME"] == str(stall) and auth.env["GIT_HTTP_LOW_SPEED_LIMIT"] == "1"
    with Workspace() as ws:
        ssh = auth_of(parse_source({"backup": {"uri": "git@h.example.test:b.git", "timeout": "20s"}}), ws).env
        assert "ConnectTimeout=20" in ssh["GIT_SSH_COMMAND"] and "ServerAliveInterval=5" in ssh["GIT_SSH_COMMAND"]


@pytest.mark.parametrize(("value", "message"), [("0s", "the duration must be positive"), ("500ms", "between 1s"),
                                                ("2h", "between 1s and 1h"), ("soon", "expected a duration")])
def test_backup_timeout_is_checked(value: str, message: str) -> None:
    with pytest.raises(ResourceError) as refused:
        parse_source({"backup": {"uri": "/srv/b.git", "timeout": value}})
    assert str(refused.value).startswith("source.backup.timeout:") and message in str(refused.value)


def test_unknown_key_next_to_timeout_is_still_named() -> None:
    with pytest.raises(ResourceError) as refused:
        parse_source({"backup": {"uri": "/srv/b.git", "timout": "5s"}})
    assert str(refused.value) == "source.backup.timout: unknown key (did you mean timeout?)"


# A pre-receive hook that moves the branch itself (another writer, every time): the push's own ref update
# then fails ("cannot lock ref ... expected ...") and the resource retries on the new tip, for ever.
MOVING = """#!/bin/sh
echo x >> '{count}'
sleep {pause}
unset GIT_QUARANTINE_PATH GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES
export GIT_AUTHOR_NAME=o GIT_AUTHOR_EMAIL=o@x GIT_COMMITTER_NAME=o GIT_COMMITTER_EMAIL=o@x
while read old new ref; do
  next=$(echo moved | git commit-tree "$old^{{tree}}" -p "$old")
  git update-ref "$ref" "$next" "$old"
done
"""


def moving(repo: Path, count: Path, pause: float = 0) -> None:
    hook = repo / "hooks" / "pre-receive"
    hook.write_text(MOVING.format(count=count, pause=pause), encoding="utf-8")
    hook.chmod(0o755)


def test_a_push_declined_by_a_hook_is_one_line_and_not_retried(resource: Resource, workdir: Path, repo: Path,
                                                               running: Double, tmp_path: Path) -> None:
    build_history(repo, 1, 64)
    count = tmp_path / "attempts"
    hook = repo / "hooks" / "pre-receive"
    hook.write_text(f"#!/bin/sh\necho x >> '{count}'\necho 'pushes are closed' >&2\nexit 1\n", encoding="utf-8")
    hook.chmod(0o755)
    run = resource.put(put_request(backup_source(f"file://{repo}", plaintext=True), "backup"), workdir)
    assert run.returncode != 0 and len(run.error_lines) == 1
    assert "the server refused the push" in run.error_lines[0], run.error_lines
    assert len(count.read_text().split()) == 1


def test_a_push_always_rejected_stops_after_push_attempts(repo: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Real git, real rejections; only the backoff sleeps are skipped so that the count bound shows."""
    build_history(repo, 1, 64)
    count = tmp_path / "attempts"
    moving(repo, count)
    monkeypatch.setattr(time, "sleep", lambda _s: None)
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(b"x" * 100)
    with Workspace() as ws:
        store = store_of(parse_source({"backup": {"uri": f"file://{repo}"}}), ws)
        with pytest.raises(ResourceError) as failed:
            push_archive(store, archive, "c-20260101T000000Z.tar.gz", lambda *_a: "backup\n",
                         Pruning(None, "c", datetime.now(UTC)))
    assert len(count.read_text().split()) == PUSH_ATTEMPTS
    assert f"({PUSH_ATTEMPTS} attempt(s), at most" in str(failed.value) and "\n" not in str(failed.value)


def test_a_push_always_rejected_stops_after_the_retry_window(resource: Resource, workdir: Path, repo: Path,
                                                             running: Double, tmp_path: Path) -> None:
    build_history(repo, 1, 64)
    count = tmp_path / "attempts"
    moving(repo, count, pause=0.5)
    started = time.monotonic()
    run = resource.put(put_request(backup_source(f"file://{repo}", plaintext=True, timeout="1s"), "backup"),
                       workdir, timeout=120)
    took = time.monotonic() - started
    assert run.returncode != 0 and len(run.error_lines) == 1, run.stderr
    assert "could not push the backup" in run.error_lines[0]
    attempts = len(count.read_text().split())
    assert 1 < attempts < PUSH_ATTEMPTS
    assert took < 5 + 2 + 10 + 3, f"took {took:.1f}s"  # the window, one fetch and one push at most, start-up
    print(f"push rejected for ever, backup.timeout 1s: {attempts} attempts in {took:.1f}s")
