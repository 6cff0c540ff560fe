"""The drill's own proof that the SCRATCH control plane answers, asked at each scratch controller's address.

k0sctl's readiness wait asks whatever server the host's admin kubeconfig names; a restored one names the
backed-up cluster (see `restore_hooks`). So after the restore the drill asks for itself, with the admin
kubeconfig `k0sctl kubeconfig` printed (the restored CA, its credentials; never written anywhere but the
step's private directory, and only while the TLS context loads them):

1. the kubeconfig's server is a scratch controller (by address or privateAddress), never a host of the
   backed-up cluster;
2. `GET /readyz` answers `ok` at every scratch controller's own address, over TLS verified against the
   restored CA (the connection goes to the scratch address itself, so the answer is the scratch host's;
   the host name is not checked, the address is the one dialled);
3. the `kubernetes` Endpoints name scratch hosts only. A restore brings back the old cluster's Endpoints,
   which the scratch API servers replace within tens of seconds; the drill waits for that, bounded.

Each wait is bounded by `WAIT_S` in all; a request by `REQUEST_TIMEOUT_S`. `restore_s` ends when every
scratch controller has answered /readyz.
"""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from k0sctl_resource.config.cluster import ClusterConfig, normal_address
from k0sctl_resource.runtime import log
from k0sctl_resource.runtime.errors import ResourceError
from k0sctl_resource.runtime.workspace import write_private
from k0sctl_resource.shared.restore_hooks import private_addresses

WAIT_S = 300.0
REQUEST_TIMEOUT_S = 5.0
POLL_S = 0.5
ENDPOINTS = "/api/v1/namespaces/default/endpoints/kubernetes"


@dataclass(frozen=True)
class Target:
    host: str  # as dialled
    port: int


class ScratchApi:
    """HTTPS to the scratch API servers with the admin kubeconfig's CA and credentials."""

    def __init__(self, kubeconfig: str, private: Path) -> None:
        import yaml

        try:
            doc = yaml.safe_load(kubeconfig)
            cluster, user = doc["clusters"][0]["cluster"], doc["users"][0]["user"]
            ca = base64.b64decode(cluster["certificate-authority-data"], validate=True).decode("ascii")
            self.server = urlsplit(str(cluster["server"]))
            port = self.server.port or 443
        except (yaml.YAMLError, KeyError, IndexError, TypeError, ValueError, UnicodeDecodeError):
            raise ResourceError("the scratch cluster's admin kubeconfig has no usable server and CA "
                                "(certificate-authority-data)") from None
        self.port = port
        self.token = user.get("token") if isinstance(user.get("token"), str) else None
        try:
            self.context = ssl.create_default_context(cadata=ca)
        except (ssl.SSLError, ValueError):
            raise ResourceError("the scratch cluster's admin kubeconfig holds no readable CA certificate") from None
        self.context.check_hostname = False  # see the module doc: the dialled address is the proof
        if "client-certificate-data" in user and "client-key-data" in user:
            self._load_client_certificate(user, private)
        elif self.token is None:
            raise ResourceError("the scratch cluster's admin kubeconfig has neither a client certificate nor a token")

    def _load_client_certificate(self, user: dict[str, Any], private: Path) -> None:
        path = private / "scratch-admin.pem"
        try:
            pem = (base64.b64decode(user["client-certificate-data"]) + b"\n"
                   + base64.b64decode(user["client-key-data"])).decode("ascii")
            write_private(path, pem)
            self.context.load_cert_chain(path)
        except (ValueError, UnicodeDecodeError, ssl.SSLError):
            raise ResourceError("the scratch cluster's admin kubeconfig holds no usable client certificate") from None
        finally:
            path.unlink(missing_ok=True)

    def get(self, target: Target, path: str) -> tuple[int, bytes]:
        conn = http.client.HTTPSConnection(target.host, target.port, timeout=REQUEST_TIMEOUT_S, context=self.context)
        try:
            headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            return response.status, response.read(1 << 20)
        finally:
            conn.close()


def _why(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "its certificate is not signed by the restored CA"
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else exc.__class__.__name__


def _wait(what: str, deadline: float, attempt: Any) -> Any:
    """Call `attempt()` until it returns a result (not None) or `deadline`; it returns None or raises to retry."""
    last = "no answer"
    while True:
        try:
            found = attempt()
            if found is not None:
                return found
            last = "not yet"
        except (OSError, http.client.HTTPException, ValueError, AttributeError) as exc:
            last = _why(exc)
        except _NotYet as exc:
            last = str(exc)
        if time.monotonic() >= deadline:
            raise ResourceError(f"drill failed: {what} within {WAIT_S:.0f} s (last: {last})")
        time.sleep(POLL_S)


class _NotYet(Exception):
    pass


def prove(kubeconfig: str, server: str, scratch: ClusterConfig, production: list[str], private: Path,
          started: float) -> dict[str, Any]:
    """The checks of the module doc; facts `restore_s` (from `started`, a monotonic time) and
    `scratch_endpoints`."""
    privates = private_addresses(scratch)
    controllers = [h for h in scratch.hosts if h.is_controller and h.endpoint is not None]
    scratch_names = {h.address for h in controllers} | {normal_address(privates[h.index]) for h in controllers
                                                        if h.index in privates}
    banned = {normal_address(a) for a in production}
    api = ScratchApi(kubeconfig, private)
    named = normal_address(api.server.hostname or "")
    if named in banned or named not in scratch_names:
        raise ResourceError(f"drill failed: the scratch cluster's admin kubeconfig names {server}, "
                            f"{'a host of the backed-up cluster' if named in banned else 'not a scratch controller'}"
                            "; the scratch control plane was not proven")
    deadline = time.monotonic() + WAIT_S

    for host in controllers:
        assert host.endpoint is not None
        target = Target(host.endpoint.address, api.port)

        def ready(target: Target = target) -> bool | None:
            status, body = api.get(target, "/readyz")
            if status != 200 or body.strip() != b"ok":
                raise _NotYet(f"HTTP {status}")
            return True

        _wait(f"the scratch API server at {target.host}:{target.port} did not answer /readyz", deadline, ready)
    restore_s = round(time.monotonic() - started, 1)
    log.ok(f"drill: /readyz answered ok at every scratch controller ({', '.join(h.address for h in controllers)}) "
           f"with the restored CA, {restore_s} s after the restore started")

    leader = Target(api.server.hostname or "", api.port)

    def endpoints() -> list[str] | None:
        status, body = api.get(leader, ENDPOINTS)
        if status != 200:
            raise _NotYet(f"HTTP {status}")
        ips = [a.get("ip", "") for s in json.loads(body).get("subsets") or [] for a in s.get("addresses") or []]
        if not ips or any(normal_address(ip) in banned or normal_address(ip) not in scratch_names for ip in ips):
            raise _NotYet(f"the kubernetes Endpoints name {', '.join(ips) or 'nothing'}")
        return ips

    ips = _wait("the kubernetes Endpoints did not come to name scratch controllers only", deadline, endpoints)
    log.ok(f"drill: the kubernetes Endpoints name the scratch controllers only ({', '.join(ips)})")
    return {"restore_s": restore_s, "scratch_endpoints": ",".join(ips)}
