"""docs/security.md, "Credentials go to the configured origin only": an HTTPS backup repository that redirects
to another host, port or scheme never gets the password sent there; an SSH server whose host key does
not match ssh_known_hosts stops the step. Two real TLS servers on loopback
(tests/support/git_https.py); the second records every Authorization header it receives.

Redirects: git follows them on its first request only (`http.followRedirects=initial`, pinned), so a
repository that moved within its own origin keeps working; credentials are given by a helper that
answers only for the configured `scheme://host:port`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.backup_support import (
    backup_source,
    bare_repo,
    branch_tip,
    build_history,
    first_parents,
    put_request,
    ssh_key,
)
from tests.support.fixtures import Double
from tests.support.git_https import PASSWORD, USER, Served, Servers
from tests.support.resource import Resource
from tests.support.sshd import SshServer


def to(base: str, *, after_auth: bool = False) -> Callable[[str, bool], str | None]:
    """A redirect of every request (or of authorized ones only) to the same path on `base`."""
    def redirect(path: str, authorized: bool) -> str | None:
        return f"{base}{path}" if authorized or not after_auth else None
    return redirect


@pytest.fixture
def root(tmp_path: Path) -> Path:
    srv = tmp_path / "srv"
    srv.mkdir()
    repo = bare_repo(srv / "backups.git")
    build_history(repo, 1, 64)
    return srv


def _source(served: Served) -> dict[str, object]:
    return backup_source(f"{served.base}/backups.git", username=USER, password=PASSWORD, plaintext=True)


def _refused(resource: Resource, source: dict[str, object], other: Served) -> None:
    run = resource.check({"source": source}, timeout=60)
    assert run.returncode != 0
    assert len(run.error_lines) == 1, run.stderr
    assert PASSWORD not in other.seen.passwords()
    assert not any(PASSWORD in h for h in other.seen.authorizations)


@pytest.mark.parametrize("after_auth", [False, True])
@pytest.mark.parametrize("other_host", ["127.0.0.2", "127.0.0.1"])
def test_redirect_to_another_host_or_port_never_gets_the_password(
        resource: Resource, https_servers: Servers, root: Path, after_auth: bool, other_host: str) -> None:
    resource.env["GIT_SSL_CAINFO"] = str(https_servers.tls.ca)
    resource.secrets.append(PASSWORD)
    other = https_servers.start(root, host=other_host)  # a real git server too: it would accept the password
    origin = https_servers.start(root, redirect=to(other.base, after_auth=after_auth))
    _refused(resource, _source(origin), other)
    assert other.seen.requests, "the redirect was not followed at all (the test would prove nothing)"


def test_redirect_to_plain_http_is_not_followed(resource: Resource, https_servers: Servers, root: Path) -> None:
    resource.env["GIT_SSL_CAINFO"] = str(https_servers.tls.ca)
    resource.secrets.append(PASSWORD)
    other = https_servers.start(root, host="127.0.0.2", tls=False)
    origin = https_servers.start(root, redirect=to(other.base, after_auth=True))
    _refused(resource, _source(origin), other)
    assert other.seen.requests == []  # curl may only follow to the protocols of GIT_ALLOW_PROTOCOL


def test_redirect_to_a_host_name_of_the_same_address_gets_nothing(resource: Resource, https_servers: Servers,
                                                                   root: Path) -> None:
    """The origin is compared as written: https://localhost:P is not https://127.0.0.1:P."""
    resource.env["GIT_SSL_CAINFO"] = str(https_servers.tls.ca)
    resource.secrets.append(PASSWORD)
    other = https_servers.start(root)
    ok = resource.check({"source": _source(other)}).expect_ok()  # the configured origin does get it
    assert len(ok.answer) == 1 and PASSWORD in other.seen.passwords()
    other.seen.authorizations.clear()
    other.seen.requests.clear()
    port = other.base.rsplit(":", 1)[1]
    origin = https_servers.start(root, redirect=to(f"https://localhost:{port}"))
    _refused(resource, _source(origin), other)
    assert other.seen.requests, "the redirect was not followed at all (the test would prove nothing)"


def test_redirect_within_the_origin_keeps_working(resource: Resource, https_servers: Servers, root: Path,
                                                  workdir: Path, double: Double) -> None:
    """A repository that moved on the same server (`/old.git` → `/backups.git`) is followed on git's first
    request, with the credentials, for check and for a backup."""
    resource.env["GIT_SSL_CAINFO"] = str(https_servers.tls.ca)
    resource.secrets.append(PASSWORD)

    def moved(path: str, authorized: bool) -> str | None:
        return f"{base[0]}{path.replace('/old.git', '/backups.git')}" if path.startswith("/old.git") else None

    base: list[str] = []
    origin = https_servers.start(root, redirect=moved)
    base.append(origin.base)
    source = backup_source(f"{origin.base}/old.git", username=USER, password=PASSWORD, plaintext=True)
    resource.check({"source": source}).expect_ok()
    double.set(running=True)
    put = resource.put(put_request(source, "backup"), workdir).expect_ok()
    assert first_parents(root / "backups.git")[-1] == put.answer["version"]["ref"]


def test_put_redirected_after_auth_pushes_nothing_elsewhere(resource: Resource, https_servers: Servers,
                                                           root: Path, tmp_path: Path, workdir: Path,
                                                           double: Double) -> None:
    resource.env["GIT_SSL_CAINFO"] = str(https_servers.tls.ca)
    resource.secrets.append(PASSWORD)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    bare_repo(elsewhere / "backups.git")
    other = https_servers.start(elsewhere, host="127.0.0.2")  # a git server that would take the password
    origin = https_servers.start(root, redirect=to(other.base, after_auth=True))
    double.set(running=True)
    run = resource.put(put_request(_source(origin), "backup"), workdir)
    assert run.returncode != 0 and len(run.error_lines) == 1, run.stderr
    assert PASSWORD not in other.seen.passwords()
    assert double.commands() == []  # the repository is read before k0sctl runs: nothing was backed up


def test_a_host_key_that_does_not_match_stops_a_backup_before_k0sctl(resource: Resource, sshd_server: SshServer,
                                                                     tmp_path: Path, workdir: Path,
                                                                     running: Double) -> None:
    """The SSH half: a server whose key is not the one in ssh_known_hosts gets no push (and no login)."""
    repo = bare_repo(tmp_path / "ssh.git")
    impostor = ssh_key(tmp_path, "impostor")
    known = f"[{sshd_server.host}]:{sshd_server.port} {' '.join(impostor.public.split()[:2])}"
    source = backup_source(sshd_server.url(repo), private_key=sshd_server.client_key, known_hosts=known,
                           plaintext=True)
    run = resource.put(put_request(source, "backup"), workdir)
    assert run.returncode != 0 and len(run.error_lines) == 1
    assert "host key" in run.error_lines[0], run.error_lines
    assert running.commands() == [] and branch_tip(repo) is None

