"""TCP connect probes: non-blocking connects on a selector shared with the ICMP probes, each
given up on after the timeout. The connect to a host's SSH (or WinRM) port decides whether it is
reachable; connects to a controller's extra ports are reported only.
"""

from __future__ import annotations

import errno
import os
import selectors
import socket
import time
from dataclasses import dataclass
from typing import Any

from k0sctl_resource.ping.model import PortResult, round_ms


@dataclass(eq=False)
class TcpProbe:
    """One connect to ``sockaddr``; ``result`` is set once it is over (or could not start)."""

    sockaddr: tuple[Any, ...]
    family: int
    port: int
    sock: socket.socket | None = None
    start: float = 0.0
    deadline: float = 0.0
    result: PortResult | None = None


class TcpConnector:
    """Starts connects, finishes them when the selector reports their socket writable, and gives
    up on them after ``timeout`` seconds.

    ``active`` holds the connects in progress (:meth:`expire` drops the finished ones); no more
    than ``limit`` (derived from the open-files limit) should be in progress at once.
    """

    def __init__(self, selector: selectors.BaseSelector, timeout: float) -> None:
        self.selector = selector
        self.timeout = timeout
        self.limit = _concurrency()
        self.active: list[TcpProbe] = []
        self.started = 0

    @property
    def has_room(self) -> bool:
        return len(self.active) < self.limit

    def start(self, probe: TcpProbe, now: float) -> None:
        self.started += 1
        probe.start = now
        probe.deadline = now + self.timeout
        try:
            sock = socket.socket(probe.family, socket.SOCK_STREAM)
        except OSError as exc:
            probe.result = PortResult(probe.port, False, None, f"cannot open a socket: {exc.strerror}")
            return
        sock.setblocking(False)
        err = sock.connect_ex(probe.sockaddr)
        if err in (errno.EINPROGRESS, errno.EAGAIN, errno.EALREADY):
            probe.sock = sock
            self.selector.register(sock, selectors.EVENT_WRITE, probe)
            self.active.append(probe)
            return
        self._finish(probe, sock, err, time.monotonic())

    def writable(self, probe: TcpProbe, when: float) -> None:
        """The selector reported ``probe``'s socket writable at ``when``: the connect is over."""
        sock = probe.sock
        if sock is None:
            return
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        self._finish(probe, sock, err, when)

    def expire(self, now: float) -> None:
        """Give up on the connects whose time is up; forget the finished ones."""
        for probe in self.active:
            if probe.result is None and probe.sock is not None and now >= probe.deadline:
                self.selector.unregister(probe.sock)
                probe.sock.close()
                probe.sock = None
                probe.result = PortResult(probe.port, False, None, f"no answer within {self.timeout:g}s")
        self.active = [p for p in self.active if p.result is None]

    def close(self) -> None:
        for probe in self.active:
            if probe.sock is not None:
                probe.sock.close()

    def _finish(self, probe: TcpProbe, sock: socket.socket, err: int, now: float) -> None:
        if probe.sock is not None:
            self.selector.unregister(sock)
            probe.sock = None
        sock.close()
        latency = round_ms((now - probe.start) * 1000.0)
        if err == 0:
            probe.result = PortResult(probe.port, True, latency, None)
        else:
            probe.result = PortResult(probe.port, False, latency, _errno_text(err))


def _concurrency() -> int:
    try:
        import resource

        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):
        return 256
    if soft == resource.RLIM_INFINITY:
        return 1024
    return max(16, min(1024, soft // 2))


def _errno_text(err: int) -> str:
    if err == errno.ECONNREFUSED:
        return "connection refused"
    if err == errno.ETIMEDOUT:
        return "connection timed out"
    return os.strerror(err).lower()
