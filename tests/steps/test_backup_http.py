"""The backup repository over HTTP with basic auth: real `git http-backend` behind a small loopback
server, credentials through the askpass helper only."""

from __future__ import annotations

import base64
import os
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.support.backup_support import backup_source, bare_repo, first_parents, put_request
from tests.support.fixtures import Double
from tests.support.resource import Resource, assert_no_secret_in_files, git_history_text

USER = "backup-bot"
PASSWORD = "http-password-0123456789"


class GitHttp(BaseHTTPRequestHandler):
    root: Path
    seen_users: list[str]

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        self.seen_users.append(user)
        return user == USER and password == PASSWORD

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _handle(self) -> None:
        if not self._authorized():
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="backups"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path, _, query = self.path.partition("?")
        env = {**os.environ, "GIT_PROJECT_ROOT": str(self.root), "GIT_HTTP_EXPORT_ALL": "1", "PATH_INFO": path,
               "QUERY_STRING": query, "REQUEST_METHOD": self.command, "REMOTE_USER": USER,
               "REMOTE_ADDR": "127.0.0.1", "CONTENT_TYPE": self.headers.get("Content-Type", ""),
               "GIT_PROTOCOL": self.headers.get("Git-Protocol", "")}
        body = self._body()
        env["CONTENT_LENGTH"] = str(len(body))
        if self.headers.get("Content-Encoding") == "gzip":
            env["HTTP_CONTENT_ENCODING"] = "gzip"
        proc = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True, check=False)
        head, _, payload = proc.stdout.partition(b"\r\n\r\n")
        status = 200
        headers = []
        for line in head.decode(errors="replace").split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.strip().split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = _handle
    do_POST = _handle


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[str, Path, list[str]]]:
    root = tmp_path / "srv"
    root.mkdir()
    repo = bare_repo(root / "backups.git")
    seen: list[str] = []
    handler = type("Handler", (GitHttp,), {"root": root, "seen_users": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/backups.git", repo, seen
    finally:
        server.shutdown()
        server.server_close()


def test_http_basic_auth_round_trip(resource: Resource, workdir: Path, double: Double,
                                    http_root: tuple[str, Path, list[str]], tmp_path: Path) -> None:
    url, repo, seen = http_root
    double.set(running=True)
    resource.secrets.append(PASSWORD)
    source = backup_source(url, username=USER, password=PASSWORD, plaintext=True)
    put = resource.put(put_request(source, "backup"), workdir).expect_ok()
    ref = put.answer["version"]["ref"]
    assert first_parents(repo) == [ref]
    assert USER in seen
    checked = resource.check({"source": source, "version": {"ref": ref}}).expect_ok()
    assert checked.answer == [{"ref": ref}]
    got = resource.get({"source": source, "version": {"ref": ref}}, tmp_path / "get").expect_ok()
    assert (tmp_path / "get" / "backup.tar.gz").exists()
    assert PASSWORD not in git_history_text(repo)
    for run in (put, checked, got):
        assert PASSWORD not in run.stderr and PASSWORD not in run.stdout
    assert_no_secret_in_files(resource.tmpdir, [PASSWORD])


def test_credentials_in_the_uri_are_taken_out_of_it(resource: Resource, workdir: Path, double: Double,
                                                    http_root: tuple[str, Path, list[str]]) -> None:
    url, repo, _ = http_root
    double.set(running=True)
    resource.secrets.append(PASSWORD)
    with_creds = url.replace("http://", f"http://{USER}:{PASSWORD}@")
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
                                                      http_root: tuple[str, Path, list[str]]) -> None:
    url, _, _ = http_root
    wrong = "not-the-password-987654"
    resource.secrets.append(wrong)
    run = resource.check({"source": backup_source(url, username=USER, password=wrong)})
    assert run.returncode != 0
    assert "authentication failed" in run.error_lines[0]
    assert url in run.error_lines[0]
