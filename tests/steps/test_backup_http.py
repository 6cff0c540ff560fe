"""The backup repository over HTTPS with basic auth: real `git http-backend` behind a small loopback TLS
server (tests/support/git_https.py), credentials through the host-bound credential helper only."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.backup_support import backup_source, bare_repo, first_parents, put_request
from tests.support.fixtures import Double
from tests.support.git_https import PASSWORD, USER, Seen, Servers
from tests.support.resource import Resource, assert_no_secret_in_files, git_history_text


@pytest.fixture
def http_root(tmp_path: Path, https_servers: Servers, resource: Resource) -> Iterator[tuple[str, Path, Seen]]:
    root = tmp_path / "srv"
    root.mkdir()
    repo = bare_repo(root / "backups.git")
    served = https_servers.start(root)
    resource.env["GIT_SSL_CAINFO"] = str(https_servers.tls.ca)
    yield f"{served.base}/backups.git", repo, served.seen


def test_http_basic_auth_round_trip(resource: Resource, workdir: Path, double: Double,
                                    http_root: tuple[str, Path, Seen], tmp_path: Path) -> None:
    url, repo, seen = http_root
    double.set(running=True)
    resource.secrets.append(PASSWORD)
    source = backup_source(url, username=USER, password=PASSWORD, plaintext=True)
    put = resource.put(put_request(source, "backup"), workdir).expect_ok()
    ref = put.answer["version"]["ref"]
    assert first_parents(repo) == [ref]
    assert USER in [base64.b64decode(h[6:]).decode().partition(":")[0] for h in seen.authorizations]
    checked = resource.check({"source": source, "version": {"ref": ref}}).expect_ok()
    assert checked.answer == [{"ref": ref}]
    got = resource.get({"source": source, "version": {"ref": ref}}, tmp_path / "get").expect_ok()
    assert (tmp_path / "get" / "backup.tar.gz").exists()
    assert PASSWORD not in git_history_text(repo)
    for run in (put, checked, got):
        assert PASSWORD not in run.stderr and PASSWORD not in run.stdout
    assert_no_secret_in_files(resource.tmpdir, [PASSWORD])


def test_credentials_in_the_uri_are_taken_out_of_it(resource: Resource, workdir: Path, double: Double,
                                                    http_root: tuple[str, Path, Seen]) -> None:
    url, repo, _ = http_root
    double.set(running=True)
    resource.secrets.append(PASSWORD)
    with_creds = url.replace("https://", f"https://{USER}:{PASSWORD}@")
    source = backup_source(with_creds, plaintext=True)
    run = resource.put(put_request(source, "backup"), workdir).expect_ok()
    assert url in run.stderr  # the credential-free URL is what is shown
    # an older version so that the check fills its cache (whose config must hold no credential)
    resource.put(put_request(source, "backup"), workdir).expect_ok()
    first = first_parents(repo)[0]
    resource.check({"source": source, "version": {"ref": first}}).expect_ok()
    configs = list((resource.tmpdir / "k0sctl-check-cache").glob("*/repo.git/config"))
    assert configs and all(PASSWORD not in c.read_text() and USER not in c.read_text() for c in configs)


def test_wrong_password_is_named_without_the_password(resource: Resource, double: Double,
                                                      http_root: tuple[str, Path, Seen]) -> None:
    url, _, _ = http_root
    wrong = "not-the-password-987654"
    resource.secrets.append(wrong)
    run = resource.check({"source": backup_source(url, username=USER, password=wrong)})
    assert run.returncode != 0
    assert "authentication failed" in run.error_lines[0]
    assert url in run.error_lines[0]
