"""Git over HTTPS for tests: real `git http-backend` behind a small TLS server on loopback, with basic
auth, plus servers that redirect, record what they were sent, or accept and never answer.

The certificates come from a CA generated at run time (`tls_ca`); the resource trusts it through
`GIT_SSL_CAINFO`, which git reads from its environment (gitrunner keeps that one `GIT_*` variable).
"""

from __future__ import annotations

import base64
import os
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

USER = "backup-bot"
PASSWORD = "http-password-0123456789"


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@pytest.fixture(scope="session")
def tls_ca(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A CA and a server certificate for 127.0.0.1, 127.0.0.2 and localhost."""
    d = tmp_path_factory.mktemp("tls")
    ca_key, ca, key, csr, cert = (d / n for n in ("ca.key", "ca.pem", "srv.key", "srv.csr", "srv.pem"))
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
             "-subj", "/CN=k0sctl-resource test CA", "-keyout", str(ca_key), "-out", str(ca))
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=127.0.0.1",
             "-keyout", str(key), "-out", str(csr))
    ext = d / "san.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1,IP:127.0.0.2,DNS:localhost\n", encoding="utf-8")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
             "-days", "2", "-extfile", str(ext), "-out", str(cert))
    return TlsFiles(ca=ca, cert=cert, key=key)


@dataclass
class Seen:
    """What a server was sent: every request line and every Authorization header."""

    requests: list[str] = field(default_factory=list)
    authorizations: list[str] = field(default_factory=list)

    def passwords(self) -> list[str]:
        found = []
        for header in self.authorizations:
            if header.startswith("Basic "):
                found.append(base64.b64decode(header[6:]).decode(errors="replace").partition(":")[2])
        return found


class GitHttp(BaseHTTPRequestHandler):
    """`git http-backend` for `root`, behind basic auth (USER/PASSWORD) unless `open` is set;
    `redirect(path, authorized)` may answer a redirect instead (its Location)."""

    root: Path
    seen: Seen
    open: bool = False
    redirect: Callable[[str, bool], str | None] | None = None

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization", "")
        if header:
            self.seen.authorizations.append(header)
        if not header.startswith("Basic "):
            return False
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
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

    def _answer(self, status: int, headers: list[tuple[str, str]], payload: bytes = b"") -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _handle(self) -> None:
        self.seen.requests.append(f"{self.command} {self.path}")
        authorized = self._authorized()
        body = self._body()
        redirect = type(self).redirect
        location = redirect(self.path, authorized) if redirect is not None else None
        if location is not None:
            self._answer(302, [("Location", location)])
            return
        if not authorized and not self.open:
            self._answer(401, [("WWW-Authenticate", 'Basic realm="backups"')])
            return
        self._backend(body)

    def _backend(self, body: bytes) -> None:
        path, _, query = self.path.partition("?")
        env = {**os.environ, "GIT_PROJECT_ROOT": str(self.root), "GIT_HTTP_EXPORT_ALL": "1", "PATH_INFO": path,
               "QUERY_STRING": query, "REQUEST_METHOD": self.command, "REMOTE_USER": USER,
               "REMOTE_ADDR": "127.0.0.1", "CONTENT_TYPE": self.headers.get("Content-Type", ""),
               "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""), "CONTENT_LENGTH": str(len(body))}
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
        self._answer(status, headers, payload)

    do_GET = _handle
    do_POST = _handle


@dataclass
class Served:
    base: str  # scheme://host:port
    seen: Seen
    server: ThreadingHTTPServer


@dataclass
class Servers:
    """Servers started by a test, stopped at its end."""

    tls: TlsFiles
    started: list[ThreadingHTTPServer] = field(default_factory=list)

    def start(self, root: Path, *, host: str = "127.0.0.1", tls: bool = True, open: bool = False,
              redirect: Callable[[str, bool], str | None] | None = None) -> Served:
        seen = Seen()
        attrs: dict[str, Any] = {"root": root, "seen": seen, "open": open,
                                 "redirect": staticmethod(redirect) if redirect else None}
        handler = type("Handler", (GitHttp,), attrs)
        server = ThreadingHTTPServer((host, 0), handler)
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(self.tls.cert), str(self.tls.key))
            server.socket = ctx.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.started.append(server)
        scheme = "https" if tls else "http"
        return Served(f"{scheme}://{host}:{server.server_address[1]}", seen, server)

    def stop(self) -> None:
        for server in self.started:
            server.shutdown()
            server.server_close()


@pytest.fixture
def https_servers(tls_ca: TlsFiles) -> Iterator[Servers]:
    servers = Servers(tls_ca)
    try:
        yield servers
    finally:
        servers.stop()


@dataclass
class SilentListener:
    """A TCP listener that accepts connections and never sends a byte (a hung server)."""

    sock: socket.socket
    accepted: list[socket.socket] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)


@pytest.fixture
def silent_listener() -> Iterator[SilentListener]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    listener = SilentListener(sock)
    threading.Thread(target=listener.serve, daemon=True).start()
    try:
        yield listener
    finally:
        sock.close()
        for conn in listener.accepted:
            conn.close()
