"""What a ping run reports: one :class:`HostResult` per entry of spec.hosts and the :class:`PingReport`
that holds them, with its JSON round trip (:meth:`PingReport.to_json` / :meth:`PingReport.from_json`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from k0sctl_resource.ping.model import (
    JSON_FORMAT,
    STATUS_REACHABLE,
    STATUS_SKIPPED,
    STATUS_UNREACHABLE,
    EchoResult,
    PingOptions,
    PortResult,
    ProbeTarget,
    Route,
    hostport,
)
from k0sctl_resource.runtime.errors import ResourceError


@dataclass
class HostResult:
    """The probe result for one entry of spec.hosts (in config order).

    ``status`` is "reachable" (its SSH/WinRM port answered), "unreachable" or "skipped"
    (localhost connection). ``error`` is the one-line reason a host is unreachable.
    """

    index: int
    role: str
    connection: str
    address: str | None
    port: int | None
    status: str
    target: ProbeTarget | None = None
    icmp: EchoResult | None = None
    route: Route | None = None
    tcp: PortResult | None = None
    extra_ports: list[PortResult] = field(default_factory=list)
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        """``address:port`` of the host as configured (``host[N]`` for localhost hosts)."""
        if self.address is None or self.port is None:
            return f"host[{self.index}]"
        return hostport(self.address, self.port)

    @property
    def label(self) -> str:
        """``address:port (role)``, e.g. ``198.51.100.11:22 (worker)``."""
        return f"{self.name} ({self.role})"

    @property
    def reachable(self) -> bool:
        return self.status == STATUS_REACHABLE

    def describe(self) -> str:
        """One line for messages, e.g. ``198.51.100.11:22 (controller): tcp/22 connection refused``."""
        text = self.label
        if self.target is not None and self.target.via is not None:
            text += f" via {self.target.via} {self.target.name}"
        if self.error:
            text += f": {self.error}"
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "role": self.role,
            "connection": self.connection,
            "address": self.address,
            "port": self.port,
            "status": self.status,
            "error": self.error,
            "notes": list(self.notes),
            "target": self.target.to_json() if self.target else None,
            "tcp": self.tcp.to_json() if self.tcp else None,
            "icmp": self.icmp.to_json() if self.icmp else None,
            "route": self.route.to_json() if self.route else None,
            "extra_ports": [p.to_json() for p in self.extra_ports],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HostResult:
        return cls(
            index=data["index"], role=data["role"], connection=data["connection"],
            address=data["address"], port=data["port"], status=data["status"],
            target=ProbeTarget.from_json(data["target"]) if data["target"] else None,
            icmp=EchoResult.from_json(data["icmp"]) if data["icmp"] else None,
            route=Route.from_json(data["route"]) if data["route"] else None,
            tcp=PortResult.from_json(data["tcp"]) if data["tcp"] else None,
            extra_ports=[PortResult.from_json(p) for p in data["extra_ports"]],
            error=data["error"], notes=list(data["notes"]),
        )


@dataclass(frozen=True)
class ProbeStats:
    """What went on the wire: distinct targets, ICMP requests sent, TCP connects tried."""

    targets: int = 0
    icmp_requests: int = 0
    tcp_connects: int = 0

    def to_json(self) -> dict[str, int]:
        return {"targets": self.targets, "icmp_requests": self.icmp_requests,
                "tcp_connects": self.tcp_connects}


@dataclass
class PingReport:
    """The result of :func:`probe_cluster`. See :meth:`to_json` for the machine-readable shape."""

    hosts: list[HostResult]
    icmp_mode: str
    notices: list[str] = field(default_factory=list)
    options: PingOptions = field(default_factory=PingOptions)
    duration_s: float = 0.0
    stats: ProbeStats = field(default_factory=ProbeStats)

    def unreachable(self) -> list[HostResult]:
        """Hosts whose SSH/WinRM port did not answer (skipped localhost hosts are not in it)."""
        return [h for h in self.hosts if h.status == STATUS_UNREACHABLE]

    def reachable(self) -> list[HostResult]:
        return [h for h in self.hosts if h.status == STATUS_REACHABLE]

    def skipped(self) -> list[HostResult]:
        return [h for h in self.hosts if h.status == STATUS_SKIPPED]

    def to_json(self) -> dict[str, Any]:
        """The report as JSON-ready data. Shape (``format`` 1)::

            {"format": 1, "icmp_mode": "privileged"|"unprivileged"|"none",
             "notices": [str], "duration_s": float,
             "options": {"count", "timeout", "traceroute", "extra_ports", "max_hops", "interval"},
             "summary": {"hosts", "probed", "reachable", "unreachable", "skipped"},
             "stats": {"targets", "icmp_requests", "tcp_connects"},
             "hosts": [{"index", "name", "role", "connection", "address", "port",
                        "status": "reachable"|"unreachable"|"skipped", "error", "notes": [str],
                        "target": null | {"address", "port", "protocol", "via", "hostname", "ip"},
                        "tcp": null | {"port", "open", "latency_ms", "error"},
                        "icmp": null | {"sent", "received", "loss_pct", "min_ms", "avg_ms",
                                        "max_ms", "error", "note"},
                        "route": null | {"reached", "error", "hops": [{"ttl", "address",
                                  "sent", "received", "loss_pct", "best_ms", "avg_ms",
                                  "worst_ms", "note"}]},
                        "extra_ports": [{"port", "open", "latency_ms", "error"}]}]}

        Times are milliseconds rounded to microseconds; a missing measurement is null.
        ``icmp``/``route`` are null when not measured (no ICMP, traceroute off, name unresolved).
        """
        probed = [h for h in self.hosts if h.status != STATUS_SKIPPED]
        return {
            "format": JSON_FORMAT,
            "icmp_mode": self.icmp_mode,
            "notices": list(self.notices),
            "duration_s": round(self.duration_s, 3),
            "options": {
                "count": self.options.count,
                "timeout": self.options.timeout,
                "traceroute": self.options.traceroute,
                "extra_ports": list(self.options.extra_ports),
                "max_hops": self.options.max_hops,
                "interval": self.options.interval,
            },
            "summary": {
                "hosts": len(self.hosts),
                "probed": len(probed),
                "reachable": len(self.reachable()),
                "unreachable": len(self.unreachable()),
                "skipped": len(self.skipped()),
            },
            "stats": self.stats.to_json(),
            "hosts": [h.to_json() for h in self.hosts],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PingReport:
        """Rebuild a report from :meth:`to_json` output (e.g. a report produced elsewhere)."""
        if data.get("format") != JSON_FORMAT:
            raise ResourceError(f"ping report: unsupported format {data.get('format')!r}")
        opts = data["options"]
        return cls(
            hosts=[HostResult.from_json(h) for h in data["hosts"]],
            icmp_mode=data["icmp_mode"],
            notices=list(data["notices"]),
            options=PingOptions(count=opts["count"], timeout=opts["timeout"],
                                traceroute=opts["traceroute"], extra_ports=list(opts["extra_ports"]),
                                max_hops=opts["max_hops"], interval=opts["interval"]),
            duration_s=data["duration_s"],
            stats=ProbeStats(**data["stats"]),
        )

