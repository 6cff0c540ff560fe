"""A real TLS "API server" on a loopback address, for the drill's own proof (steps/scratch_api.py) where the
k0sctl double stands in for k0sctl: a CA made with the openssl CLI, a server certificate signed by it, bearer
token auth, `/readyz` and the `kubernetes` Endpoints; every request is recorded (peer, path).

`admin_kubeconfig()` is the kubeconfig the k0sctl double prints when its state holds `kubeconfig_text`.
"""

from __future__ import annotations

import base64
import http.server
import json
import random
import secrets
import socketserver
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


def make_ca(directory: Path, address: str) -> tuple[Path, Path, Path]:
    """CA certificate, server certificate and key for `address`, by the openssl CLI."""
    directory.mkdir(parents=True, exist_ok=True)
    ca, ca_key = directory / "ca.crt", directory / "ca.key"
    crt, key, csr, ext = (directory / n for n in ("server.crt", "server.key", "server.csr", "server.ext"))
    curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    subprocess.run(["openssl", "req", "-x509", *curve, "-days", "2", "-subj", "/CN=scratch test CA",
                    "-keyout", ca_key, "-out", ca], check=True, capture_output=True)
    subprocess.run(["openssl", "req", "-new", *curve, "-subj", "/CN=kube-apiserver", "-keyout", key, "-out", csr],
                   check=True, capture_output=True)
    ext.write_text(f"subjectAltName=IP:{address}\n", encoding="utf-8")
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
                    "-days", "2", "-extfile", ext, "-out", crt], check=True, capture_output=True)
    return ca, crt, key


class ScratchApiServer:
    """Answers as a scratch API server would; `endpoints` is what the `kubernetes` Endpoints name, `ready`
    whether /readyz says ok."""

    def __init__(self, directory: Path) -> None:
        self.address = f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(2, 254)}"
        self.ca, crt, key = make_ca(directory, self.address)
        self.token = secrets.token_hex(16)
        self.endpoints = [self.address]
        self.endpoint_answers: list[list[str]] = []  # answered first, one per request, before `endpoints`
        self.ready = True
        self.requests: list[tuple[str, str]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append((self.client_address[0], self.path))
                if self.headers.get("Authorization") != f"Bearer {server.token}":
                    return self.answer(401, b"Unauthorized")
                if self.path == "/readyz":
                    return self.answer(200 if server.ready else 500, b"ok" if server.ready else b"etcd not ready")
                if self.path == "/api/v1/namespaces/default/endpoints/kubernetes":
                    ips = server.endpoint_answers.pop(0) if server.endpoint_answers else server.endpoints
                    body = {"subsets": [{"addresses": [{"ip": ip} for ip in ips]}]}
                    return self.answer(200, json.dumps(body).encode())
                return self.answer(404, b"not found")

            def answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

        self.httpd = Server((self.address, 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(crt, key)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def admin_kubeconfig(self, server: str | None = None) -> str:
        ca = base64.b64encode(self.ca.read_bytes()).decode()
        return ("apiVersion: v1\nclusters:\n- cluster:\n"
                f"    certificate-authority-data: {ca}\n    server: {server or f'https://{self.address}:{self.port}'}\n"
                "  name: scratch\ncontexts:\n- context:\n    cluster: scratch\n    user: admin\n  name: scratch\n"
                "current-context: scratch\nkind: Config\nusers:\n- name: admin\n  user:\n"
                f"    token: {self.token}\n")

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def scratch_api(tmp_path: Path) -> Iterator[ScratchApiServer]:
    server = ScratchApiServer(tmp_path / "scratch-api")
    yield server
    server.close()
