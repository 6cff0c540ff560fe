"""What a ping run is asked for (:class:`PingOptions`) and the records of one probed target (echo, route,
ports, the target itself) with their JSON round trip; the per-host results and the report that holds
them are in :mod:`.result`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from k0sctl_resource.runtime.errors import ResourceError

JSON_FORMAT = 1
"""Version of the :meth:`PingReport.to_json` shape; raised only on incompatible changes."""

STATUS_REACHABLE = "reachable"
STATUS_UNREACHABLE = "unreachable"
STATUS_SKIPPED = "skipped"


@dataclass
class PingOptions:
    """What to probe and how long to wait.

    ``count``: echo requests per host and rounds of the route trace. ``timeout``: seconds one
    ICMP answer, one TCP connect and name resolution may take. ``traceroute``: add the route
    report. ``extra_ports``: TCP ports also tried on controllers (reported only).
    ``max_hops``: highest TTL of the trace. ``interval``: seconds between echo requests (and
    trace rounds) to one host. ``ssh_config``: ssh_config file for ``openSSH`` hosts
    (``ssh -G -F``); the user's usual ssh configuration when None.
    """

    count: int = 3
    timeout: float = 2.0
    traceroute: bool = True
    extra_ports: list[int] = field(default_factory=list)
    max_hops: int = 30
    interval: float = 0.2
    ssh_config: Path | None = None

    def validate(self) -> None:
        if isinstance(self.count, bool) or not isinstance(self.count, int) or not 1 <= self.count <= 100:
            raise ResourceError(f"ping: count must be an integer from 1 to 100, got {self.count!r}")
        if (isinstance(self.timeout, bool) or not isinstance(self.timeout, int | float)
                or not 0 < self.timeout <= 300):
            raise ResourceError(f"ping: timeout must be a number of seconds (0 to 300], got {self.timeout!r}")
        for port in self.extra_ports:
            if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
                raise ResourceError(f"ping: extra_ports must hold port numbers, got {port!r}")
        if isinstance(self.max_hops, bool) or not isinstance(self.max_hops, int) or not 1 <= self.max_hops <= 64:
            raise ResourceError(f"ping: max_hops must be an integer from 1 to 64, got {self.max_hops!r}")
        if (isinstance(self.interval, bool) or not isinstance(self.interval, int | float)
                or not 0 <= self.interval <= 10):
            raise ResourceError(f"ping: interval must be a number of seconds [0 to 10], got {self.interval!r}")


def _loss(sent: int, received: int) -> float:
    return round(100.0 * (sent - received) / sent, 1) if sent else 100.0


def round_ms(value: float | None) -> float | None:
    """Milliseconds as reported: rounded to the microsecond."""
    return None if value is None else round(value, 3)


def hostport(address: str, port: int) -> str:
    """``address:port``, with an IPv6 address in brackets."""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


@dataclass(frozen=True)
class EchoResult:
    """ICMP echo statistics for one target. ``error`` says why no echo could be sent at all;
    ``note`` carries ICMP errors routers answered with (e.g. host unreachable)."""

    sent: int
    received: int
    min_ms: float | None = None
    avg_ms: float | None = None
    max_ms: float | None = None
    error: str | None = None
    note: str | None = None

    @property
    def loss_pct(self) -> float:
        return _loss(self.sent, self.received)

    def to_json(self) -> dict[str, Any]:
        return {"sent": self.sent, "received": self.received, "loss_pct": self.loss_pct,
                "min_ms": round_ms(self.min_ms), "avg_ms": round_ms(self.avg_ms), "max_ms": round_ms(self.max_ms),
                "error": self.error, "note": self.note}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EchoResult:
        return cls(sent=data["sent"], received=data["received"], min_ms=data["min_ms"],
                   avg_ms=data["avg_ms"], max_ms=data["max_ms"], error=data["error"],
                   note=data["note"])


@dataclass(frozen=True)
class Hop:
    """One line of the route report. ``address`` is None (shown ``???``) when nothing answered."""

    ttl: int
    address: str | None
    sent: int
    received: int
    best_ms: float | None = None
    avg_ms: float | None = None
    worst_ms: float | None = None
    note: str | None = None

    @property
    def loss_pct(self) -> float:
        return _loss(self.sent, self.received)

    def to_json(self) -> dict[str, Any]:
        return {"ttl": self.ttl, "address": self.address, "sent": self.sent,
                "received": self.received, "loss_pct": self.loss_pct, "best_ms": round_ms(self.best_ms),
                "avg_ms": round_ms(self.avg_ms), "worst_ms": round_ms(self.worst_ms), "note": self.note}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Hop:
        return cls(ttl=data["ttl"], address=data["address"], sent=data["sent"],
                   received=data["received"], best_ms=data["best_ms"], avg_ms=data["avg_ms"],
                   worst_ms=data["worst_ms"], note=data["note"])


@dataclass(frozen=True)
class Route:
    """The mtr-style route: ``reached`` is true when the destination itself answered."""

    hops: tuple[Hop, ...]
    reached: bool
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"reached": self.reached, "error": self.error, "hops": [h.to_json() for h in self.hops]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Route:
        return cls(hops=tuple(Hop.from_json(h) for h in data["hops"]), reached=data["reached"],
                   error=data["error"])


@dataclass(frozen=True)
class PortResult:
    """One TCP connect: ``open`` when the handshake completed; ``error`` says what happened
    otherwise ("connection refused", "no answer within 2s", "no route to host", ...)."""

    port: int
    open: bool
    latency_ms: float | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"port": self.port, "open": self.open, "latency_ms": round_ms(self.latency_ms),
                "error": self.error}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PortResult:
        return cls(port=data["port"], open=data["open"], latency_ms=data["latency_ms"],
                   error=data["error"])


@dataclass(frozen=True)
class ProbeTarget:
    """What was actually probed for a host: its own endpoint, its bastion, or an ssh_config hop.

    ``address`` is as written in the config (or ssh_config), ``hostname`` after ssh_config
    aliases, ``ip`` the resolved address (None when the name did not resolve)."""

    address: str
    port: int
    protocol: str
    via: str | None  # None (the host itself), "bastion" or "proxyjump"
    hostname: str
    ip: str | None

    @property
    def name(self) -> str:
        return hostport(self.address, self.port)

    def to_json(self) -> dict[str, Any]:
        return {"address": self.address, "port": self.port, "protocol": self.protocol, "via": self.via,
                "hostname": self.hostname, "ip": self.ip}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProbeTarget:
        return cls(address=data["address"], port=data["port"], protocol=data["protocol"],
                   via=data["via"], hostname=data["hostname"], ip=data["ip"])
