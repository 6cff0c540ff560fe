"""Reachability probe of a k0sctl cluster's hosts (`put` with `command: ping`, `k0sctl-resource ping`).

For every host of the config that k0sctl reaches over the network, concurrently:

* ICMP echo (``count`` requests, ``interval`` apart, each waiting up to ``timeout``): packets
  sent/received, loss and min/avg/max round-trip time;
* an mtr-style route report (``traceroute``): ``count`` rounds, each sending echo requests with
  TTL 1..``max_hops`` at once, so the trace costs one timeout, not one per hop. Per hop: the
  address that answered (Time Exceeded), loss and best/avg/worst ms; silent hops are ``???``;
* a TCP connect to the SSH (or WinRM) port, with its latency. This decides reachability;
* on controllers reached directly, TCP connects to ``extra_ports`` (reported, never a failure).

The probed target is the bastion when the host has one (k0sctl connects through it), or, for an
``openSSH`` host, what ``ssh -G`` resolves its address to (HostName, Port, first ProxyJump hop).
Identical targets are probed once and reported for every host behind them. Names are resolved
with the system resolver (IPv4 and IPv6, the first address getaddrinfo prefers is probed).

ICMP mode is decided once per run by opening a socket: raw sockets ("privileged", root or
CAP_NET_RAW), else kernel ping sockets ("unprivileged", where net.ipv4.ping_group_range covers
the process's group; Time Exceeded answers then come from the socket's error queue), else
"none": the report carries one notice and holds the TCP probe alone.

Everything runs in one event loop (one thread, non-blocking sockets); only name resolution uses
helper threads. The wall time is about: name resolution + (count - 1) * interval + timeout,
whatever the number of hosts. Intermediate routers often rate-limit Time Exceeded messages, so a
router hop may show loss while the hosts behind it do not (mtr shows the same).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import errno
import ipaddress
import os
import random
import selectors
import shutil
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from icmplib import ICMPRequest, ICMPv4Socket, ICMPv6Socket
from icmplib.exceptions import ICMPSocketError, SocketBroadcastError, SocketPermissionError

from k0sctl_resource.errors import ResourceError
from k0sctl_resource.k0sctl_config import ClusterConfig, Endpoint, Host

__all__ = [
    "JSON_FORMAT",
    "EchoResult",
    "Hop",
    "HostResult",
    "PingOptions",
    "PingReport",
    "PortResult",
    "ProbeStats",
    "ProbeTarget",
    "Route",
    "detect_icmp_mode",
    "probe_cluster",
]

JSON_FORMAT = 1
"""Version of the :meth:`PingReport.to_json` shape; raised only on incompatible changes."""

ICMP_PRIVILEGED = "privileged"
ICMP_UNPRIVILEGED = "unprivileged"
ICMP_NONE = "none"

STATUS_REACHABLE = "reachable"
STATUS_UNREACHABLE = "unreachable"
STATUS_SKIPPED = "skipped"

TRAILING_UNKNOWN_HOPS = 3
"""When the destination never answers, the route lists this many silent hops after the last one
that answered (the rest up to max_hops were probed too and stayed silent)."""

_PAYLOAD = b"k0sctl-resource ping".ljust(56, b".")
_SO_TIMESTAMPNS = int(getattr(socket, "SO_TIMESTAMPNS", 35))
_IP_RECVERR = int(getattr(socket, "IP_RECVERR", 11))
_IPV6_RECVERR = int(getattr(socket, "IPV6_RECVERR", 25))
_SO_EE_ORIGIN_ICMP = 2
_SO_EE_ORIGIN_ICMP6 = 3
_MAX_SEQ = 0xFFFF
_SSH_G_TIMEOUT = 5.0
_POLL_EVERY = 4
_TIMESTAMP_WARM_UP = 0.02


# ------------------------------------------------------------------------------------------------
# options and results


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


def _ms(value: float | None) -> float | None:
    """Milliseconds as reported: rounded to the microsecond."""
    return None if value is None else round(value, 3)


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
                "min_ms": _ms(self.min_ms), "avg_ms": _ms(self.avg_ms), "max_ms": _ms(self.max_ms),
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
                "received": self.received, "loss_pct": self.loss_pct, "best_ms": _ms(self.best_ms),
                "avg_ms": _ms(self.avg_ms), "worst_ms": _ms(self.worst_ms), "note": self.note}

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
        return {"port": self.port, "open": self.open, "latency_ms": _ms(self.latency_ms),
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
        return _hostport(self.address, self.port)

    def to_json(self) -> dict[str, Any]:
        return {"address": self.address, "port": self.port, "protocol": self.protocol, "via": self.via,
                "hostname": self.hostname, "ip": self.ip}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProbeTarget:
        return cls(address=data["address"], port=data["port"], protocol=data["protocol"],
                   via=data["via"], hostname=data["hostname"], ip=data["ip"])


def _hostport(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


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
        return _hostport(self.address, self.port)

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


# ------------------------------------------------------------------------------------------------
# ICMP mode


@dataclass(frozen=True)
class IcmpMode:
    mode: str  # ICMP_PRIVILEGED, ICMP_UNPRIVILEGED or ICMP_NONE
    reason: str | None = None  # why ICMP is unavailable (mode none)


def _ping_group_range() -> str:
    try:
        return " ".join(Path("/proc/sys/net/ipv4/ping_group_range").read_text().split())
    except OSError:
        return "unknown"


def detect_icmp_mode() -> IcmpMode:
    """Find out, by opening sockets, which kind of ICMP socket this process may use.

    IPv4 decides; IPv6 is tried only where no IPv4 ICMP socket can be created for another reason
    than permissions (an IPv6-only kernel).
    """
    errors: list[str] = []
    denied = False
    for cls, family in ((ICMPv4Socket, "IPv4"), (ICMPv6Socket, "IPv6")):
        for privileged in (True, False):
            try:
                sock = cls(privileged=privileged)
            except SocketPermissionError:
                denied = True
                continue
            except ICMPSocketError as exc:
                errors.append(f"{family}: {exc}")
                break
            sock.close()
            return IcmpMode(ICMP_PRIVILEGED if privileged else ICMP_UNPRIVILEGED)
        if denied:
            break
    if denied:
        reason = (f"no permission: raw ICMP sockets need root or CAP_NET_RAW, and unprivileged ICMP "
                  f"sockets are off for gid {os.getgid()} (net.ipv4.ping_group_range is "
                  f"'{_ping_group_range()}')")
    else:
        reason = "cannot open an ICMP socket: " + "; ".join(errors)
    return IcmpMode(ICMP_NONE, reason)


# ------------------------------------------------------------------------------------------------
# resolving targets


@dataclass
class _Lookup:
    """Resolution of one configured address (plus its ssh_config view for openSSH hosts)."""

    address: str
    use_ssh_config: bool
    hostname: str = ""
    ssh_port: int | None = None
    jump: tuple[str, int, str] | None = None  # (address as written, port, hostname)
    ip: str | None = None
    family: int = 0
    sockaddr: tuple[Any, ...] | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    done: bool = False


def _ssh_g(alias: str, ssh_config: Path | None) -> dict[str, str]:
    argv = ["ssh", "-G"]
    if ssh_config is not None:
        argv += ["-F", str(ssh_config)]
    argv += ["--", alias]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=_SSH_G_TIMEOUT, check=False,
                          stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        raise RuntimeError(last)
    values: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        key, _, value = line.partition(" ")
        values.setdefault(key.lower(), value.strip())
    return values


def _parse_jump(spec: str) -> tuple[str, int | None]:
    """First hop of a ProxyJump value: ``[user@]host[:port]`` or ``ssh://[user@]host[:port]``."""
    first = spec.split(",", maxsplit=1)[0].strip()
    first = first.removeprefix("ssh://")
    first = first.rsplit("@", 1)[-1]
    if first.startswith("["):
        host, _, rest = first[1:].partition("]")
        port = rest.removeprefix(":")
        return host, int(port) if port.isdigit() else None
    if first.count(":") == 1:
        host, port = first.split(":")
        return host, int(port) if port.isdigit() else None
    return first, None


def _strip_brackets(address: str) -> str:
    return address[1:-1] if address.startswith("[") and address.endswith("]") else address


def _ip_literal(address: str) -> bool:
    try:
        ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    return True


_commit_lock = threading.Lock()


def _resolve(lookup: _Lookup, ssh_config: Path | None) -> None:
    """Resolve on a private copy, then publish it unless the caller stopped waiting."""
    work = dataclasses.replace(lookup, notes=[])
    try:
        _resolve_into(work, ssh_config)
    except Exception as exc:  # a thread must always report back
        work.error = f"{lookup.address}: name resolution failed: {exc}"
    with _commit_lock:
        if lookup.done:  # given up on (timeout): keep the timeout error, drop a late answer
            return
        for f in dataclasses.fields(_Lookup):
            setattr(lookup, f.name, getattr(work, f.name))
        lookup.done = True


def _resolve_into(lookup: _Lookup, ssh_config: Path | None) -> None:
    try:
        name = _strip_brackets(lookup.address)
        lookup.hostname = name
        if lookup.use_ssh_config and shutil.which("ssh") is not None:
            try:
                cfg = _ssh_g(name, ssh_config)
            except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                lookup.notes.append(f"ssh -G {name} failed ({exc}); probing the address as written")
            else:
                lookup.hostname = cfg.get("hostname", name) or name
                if lookup.hostname != name:
                    lookup.notes.append(f"ssh_config: {name} is HostName {lookup.hostname}")
                if cfg.get("port", "22").isdigit():
                    lookup.ssh_port = int(cfg.get("port", "22"))
                jump = cfg.get("proxyjump", "none")
                if jump and jump.lower() != "none":
                    jhost, jport = _parse_jump(jump)
                    jname = jhost
                    with contextlib.suppress(RuntimeError, OSError, subprocess.SubprocessError):
                        jcfg = _ssh_g(jhost, ssh_config)
                        jname = jcfg.get("hostname", jhost) or jhost
                        if jport is None and jcfg.get("port", "22").isdigit():
                            jport = int(jcfg.get("port", "22"))
                    lookup.jump = (jhost, jport or 22, jname)
                    lookup.notes.append(f"ssh_config: reached through ProxyJump {jhost}; probing that hop")
                elif cfg.get("proxycommand", "none").lower() != "none":
                    lookup.notes.append("ssh_config: the host is reached through a ProxyCommand; "
                                        "probing its HostName directly")
        target = lookup.jump[2] if lookup.jump else lookup.hostname
        target = _strip_brackets(target)
        try:
            infos = socket.getaddrinfo(target, None, 0, socket.SOCK_STREAM)
        except socket.gaierror as exc:
            lookup.error = f"{target} does not resolve: {exc.strerror}"
            return
        except (OSError, UnicodeError) as exc:
            lookup.error = f"{target} does not resolve: {exc}"
            return
        family, _type, _proto, _canon, sockaddr = infos[0]
        lookup.family = int(family)
        lookup.sockaddr = tuple(sockaddr)
        ip = str(sockaddr[0])
        lookup.ip = ip
        if not _ip_literal(target):
            others = sorted({str(i[4][0]) for i in infos} - {ip})
            lookup.notes.append(f"{target} resolves to {ip}"
                                + (f" (also {', '.join(others)})" if others else ""))
    finally:
        lookup.done = True


def _resolve_all(lookups: Iterable[_Lookup], ssh_config: Path | None, timeout: float) -> None:
    """Resolve every lookup concurrently; those not done within ``timeout`` fail with a reason."""
    threads: list[tuple[_Lookup, threading.Thread]] = []
    for lookup in lookups:
        if not lookup.use_ssh_config and _ip_literal(_strip_brackets(lookup.address)):
            _resolve(lookup, ssh_config)  # no I/O: getaddrinfo of a literal
            continue
        thread = threading.Thread(target=_resolve, args=(lookup, ssh_config), daemon=True,
                                  name=f"ping-resolve-{lookup.address}")
        thread.start()
        threads.append((lookup, thread))
    deadline = time.monotonic() + timeout
    for lookup, thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
        with _commit_lock:
            if not lookup.done:
                lookup.error = f"{lookup.address}: name resolution did not finish within {timeout:g}s"
                lookup.done = True


# ------------------------------------------------------------------------------------------------
# the probe loop


@dataclass(eq=False)
class _IcmpTarget:
    ip: str
    family: int
    echo: list[_IcmpProbe] = field(default_factory=list)
    trace: list[_IcmpProbe] = field(default_factory=list)
    channel_error: str | None = None
    dest_ttl: int | None = None  # smallest TTL the destination answered


@dataclass(eq=False)
class _IcmpProbe:
    target: _IcmpTarget
    ttl: int
    is_trace: bool = False
    sent_wall: float = 0.0
    deadline: float = 0.0
    done: bool = False
    send_error: str | None = None
    reply_wall: float | None = None
    responder: str | None = None
    reply: str | None = None  # "echo", "exceeded" or "unreachable"
    code: int = 0


@dataclass(eq=False)
class _TcpProbe:
    sockaddr: tuple[Any, ...]
    family: int
    port: int
    sock: socket.socket | None = None
    start: float = 0.0
    deadline: float = 0.0
    result: PortResult | None = None


class _Channel:
    """One ICMP socket and the sequence numbers of the requests in flight on it."""

    def __init__(self, family: int, privileged: bool, taken: set[int]) -> None:
        self.family = family
        self.privileged = privileged
        cls = ICMPv4Socket if family == socket.AF_INET else ICMPv6Socket
        self.icmp = cls(privileged=privileged)
        self.sock: socket.socket = self.icmp.sock
        self.sock.setblocking(False)
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        if not privileged:
            # Ping sockets hand ICMP errors (Time Exceeded) over through the error queue only;
            # without it the route report would show only the destination.
            with contextlib.suppress(OSError):
                if family == socket.AF_INET:
                    self.sock.setsockopt(socket.IPPROTO_IP, _IP_RECVERR, 1)
                else:
                    self.sock.setsockopt(socket.IPPROTO_IPV6, _IPV6_RECVERR, 1)
        # Raw sockets see every ICMP packet of the host: a random identifier picks out ours.
        self.ident = -1
        while privileged and (self.ident < 0 or self.ident in taken):
            self.ident = random.randint(1, 0xFFFF)  # noqa: S311 - not a secret
        self.next_seq = random.randint(0, 0x7FFF)  # noqa: S311
        self.used = 0
        self.pending: dict[int, _IcmpProbe] = {}

    @property
    def full(self) -> bool:
        return self.used > _MAX_SEQ

    def send(self, probe: _IcmpProbe) -> None:
        seq = self.next_seq & _MAX_SEQ
        self.next_seq += 1
        self.used += 1
        request = ICMPRequest(destination=probe.target.ip, id=max(self.ident, 0), sequence=seq,
                              payload=_PAYLOAD, ttl=probe.ttl)
        if not self.privileged:
            # An ICMP error that reached a ping socket also sets its pending error, which the next
            # send would return instead of sending. Reading SO_ERROR clears it (the error itself
            # stays in the error queue, where _drain reads it).
            with contextlib.suppress(OSError):
                self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        try:
            self.icmp.send(request)
        except SocketBroadcastError:
            probe.send_error = "sending was refused (permission denied)"
        except ICMPSocketError as exc:
            probe.send_error = f"send failed: {exc}"
        if probe.send_error is not None:
            probe.done = True
            return
        if not self.privileged:
            self.ident = int(request.id)
        probe.sent_wall = float(request.time)
        self.pending[seq] = probe

    def close(self) -> None:
        self.icmp.close()


def _kernel_time(ancdata: list[tuple[int, int, bytes]]) -> float | None:
    for level, ctype, data in ancdata:
        if level == socket.SOL_SOCKET and ctype == _SO_TIMESTAMPNS and len(data) >= struct.calcsize("@ll"):
            sec, nsec = struct.unpack_from("@ll", data)
            return float(sec) + float(nsec) / 1e9
    return None


_V4 = {"reply": 0, "request": 8, "exceeded": 11, "unreachable": 3}
_V6 = {"reply": 129, "request": 128, "exceeded": 3, "unreachable": 1}


def _parse_icmp(packet: bytes, family: int, has_ip_header: bool) -> tuple[str, int, int, int] | None:
    """(kind, code, identifier, sequence) of an answer to an echo request, or None."""
    types = _V4 if family == socket.AF_INET else _V6
    if has_ip_header:
        if len(packet) < 20:
            return None
        packet = packet[(packet[0] & 0x0F) * 4:]
    if len(packet) < 8:
        return None
    icmp_type, code = packet[0], packet[1]
    if icmp_type == types["reply"]:
        ident, seq = struct.unpack_from("!HH", packet, 4)
        return "echo", code, ident, seq
    if icmp_type not in (types["exceeded"], types["unreachable"]):
        return None
    inner = packet[8:]
    if family == socket.AF_INET:
        if len(inner) < 20 or inner[9] != socket.IPPROTO_ICMP:
            return None
        inner = inner[(inner[0] & 0x0F) * 4:]
    else:
        if len(inner) < 40 or inner[6] != socket.IPPROTO_ICMPV6:
            return None
        inner = inner[40:]
    if len(inner) < 8 or inner[0] != types["request"]:
        return None
    ident, seq = struct.unpack_from("!HH", inner, 4)
    kind = "exceeded" if icmp_type == types["exceeded"] else "unreachable"
    return kind, code, ident, seq


def _sockaddr_ip(raw: bytes) -> str | None:
    if len(raw) < 2:
        return None
    (family,) = struct.unpack_from("=H", raw)
    if family == socket.AF_INET and len(raw) >= 8:
        return socket.inet_ntop(socket.AF_INET, raw[4:8])
    if family == socket.AF_INET6 and len(raw) >= 24:
        return socket.inet_ntop(socket.AF_INET6, raw[8:24])
    return None


class _Loop:
    """Sends every ICMP request at its time, runs every TCP connect, collects the answers."""

    def __init__(self, mode: str, options: PingOptions) -> None:
        self.mode = mode
        self.options = options
        self.selector = selectors.DefaultSelector()
        self.channels: dict[int, list[_Channel]] = {}
        self.channel_errors: dict[int, str] = {}
        self.in_flight: collections.deque[_IcmpProbe] = collections.deque()
        self.icmp_sent = 0
        self.tcp_started = 0
        self.warm_since: float | None = None

    # -- ICMP ------------------------------------------------------------------------------------

    def warm_up(self) -> None:
        """Open the first ICMP socket now: turning kernel receive timestamps on takes effect a
        little later (a deferred static key), and answers stamped before that would be stamped
        when read instead, making early round-trip times look longer than they are."""
        if self.mode != ICMP_NONE:
            self._channel(socket.AF_INET)
            self.warm_since = time.monotonic()

    def _channel(self, family: int) -> _Channel | None:
        if family in self.channel_errors:
            return None
        channels = self.channels.setdefault(family, [])
        if channels and not channels[-1].full:
            return channels[-1]
        try:
            taken = {c.ident for group in self.channels.values() for c in group}
            channel = _Channel(family, self.mode == ICMP_PRIVILEGED, taken)
        except (ICMPSocketError, OSError) as exc:
            name = "ICMPv4" if family == socket.AF_INET else "ICMPv6"
            self.channel_errors[family] = f"{name} socket unavailable: {exc}"
            return None
        channels.append(channel)
        self.selector.register(channel.sock, selectors.EVENT_READ, channel)
        return channel

    def _send(self, target: _IcmpTarget, ttl: int, now: float, *, trace: bool) -> _IcmpProbe | None:
        channel = self._channel(target.family)
        if channel is None:
            target.channel_error = self.channel_errors[target.family]
            return None
        probe = _IcmpProbe(target=target, ttl=ttl, is_trace=trace)
        channel.send(probe)
        self.icmp_sent += 1
        if self.icmp_sent % _POLL_EVERY == 0:
            # Long bursts (many hosts x many TTLs): look at answers in between, so TCP connect
            # times are taken when the handshake completes, not after the burst.
            self._poll(0)
        if not probe.done:
            probe.deadline = now + self.options.timeout
            self.in_flight.append(probe)
        return probe

    def _trace_round(self, target: _IcmpTarget, now: float) -> None:
        last = target.dest_ttl or self.options.max_hops
        for ttl in range(1, last + 1):
            probe = self._send(target, ttl, now, trace=True)
            if probe is None:
                return
            target.trace.append(probe)

    def _answer(self, channel: _Channel, kind: str, code: int, ident: int, seq: int,
                source: str | None, when: float) -> None:
        if channel.privileged and ident != channel.ident:
            return
        probe = channel.pending.get(seq)
        if probe is None or probe.done:
            return
        del channel.pending[seq]
        probe.done = True
        probe.reply = kind
        probe.code = code
        probe.responder = source
        probe.reply_wall = when
        if kind == "echo" and probe.is_trace:
            best = probe.target.dest_ttl
            probe.target.dest_ttl = probe.ttl if best is None else min(best, probe.ttl)

    def _drain(self, channel: _Channel) -> None:
        sock = channel.sock
        if not channel.privileged:
            while True:  # ICMP errors about our requests (unprivileged ping sockets)
                try:
                    data, anc, _flags, _addr = sock.recvmsg(2048, 1024, socket.MSG_ERRQUEUE)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    break
                self._errqueue(channel, data, anc)
        while True:
            try:
                data, anc, _flags, addr = sock.recvmsg(4096, 1024)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                # e.g. a pending ICMP error reported on the socket; the error queue has it.
                if channel.privileged:
                    return
                break
            when = _kernel_time(anc) or time.time()
            parsed = _parse_icmp(data, channel.family,
                                 has_ip_header=channel.privileged and channel.family == socket.AF_INET)
            if parsed is not None:
                self._answer(channel, *parsed, source=str(addr[0]) if addr else None, when=when)

    def _errqueue(self, channel: _Channel, data: bytes, anc: list[tuple[int, int, bytes]]) -> None:
        types = _V4 if channel.family == socket.AF_INET else _V6
        if len(data) < 8 or data[0] != types["request"]:
            return
        ident, seq = struct.unpack_from("!HH", data, 4)
        when = _kernel_time(anc) or time.time()
        for level, ctype, cdata in anc:
            if (level, ctype) not in ((socket.IPPROTO_IP, _IP_RECVERR), (socket.IPPROTO_IPV6, _IPV6_RECVERR)):
                continue
            if len(cdata) < 16:
                continue
            _err, origin, ee_type, ee_code, _pad, _info, _data = struct.unpack_from("=IBBBBII", cdata)
            if origin not in (_SO_EE_ORIGIN_ICMP, _SO_EE_ORIGIN_ICMP6):
                continue
            if ee_type == types["exceeded"]:
                kind = "exceeded"
            elif ee_type == types["unreachable"]:
                kind = "unreachable"
            else:
                continue
            self._answer(channel, kind, ee_code, ident, seq, _sockaddr_ip(cdata[16:]), when)

    # -- TCP -------------------------------------------------------------------------------------

    def _start_tcp(self, probe: _TcpProbe, now: float) -> None:
        self.tcp_started += 1
        probe.start = now
        probe.deadline = now + self.options.timeout
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
            return
        self._finish_tcp(probe, sock, err, time.monotonic())

    def _finish_tcp(self, probe: _TcpProbe, sock: socket.socket, err: int, now: float) -> None:
        if probe.sock is not None:
            self.selector.unregister(sock)
            probe.sock = None
        sock.close()
        latency = _ms((now - probe.start) * 1000.0)
        if err == 0:
            probe.result = PortResult(probe.port, True, latency, None)
        else:
            probe.result = PortResult(probe.port, False, latency, _errno_text(err))

    # -- the loop --------------------------------------------------------------------------------

    def run(self, targets: list[_IcmpTarget], tcp: list[_TcpProbe]) -> None:
        opts = self.options
        if self.warm_since is not None and targets:
            time.sleep(max(0.0, self.warm_since + _TIMESTAMP_WARM_UP - time.monotonic()))
        start = time.monotonic()
        # Scheduled ICMP work: (due, order, target, "echo"|"trace")
        schedule: list[tuple[float, int, _IcmpTarget, str]] = []
        order = 0
        for rnd in range(opts.count):
            for target in targets:
                schedule.append((start + rnd * opts.interval, order, target, "echo"))
                order += 1
            if opts.traceroute:
                for target in targets:
                    schedule.append((start + rnd * opts.interval, order, target, "trace"))
                    order += 1
        schedule.sort(key=lambda item: (item[0], item[1]))
        pending_events = collections.deque(schedule)
        tcp_queue = collections.deque(tcp)
        tcp_active: list[_TcpProbe] = []
        tcp_limit = _tcp_concurrency()
        try:
            while True:
                now = time.monotonic()
                while tcp_queue and len(tcp_active) < tcp_limit:
                    probe = tcp_queue.popleft()
                    self._start_tcp(probe, now)
                    if probe.result is None:
                        tcp_active.append(probe)
                    self._poll(0)
                while pending_events and pending_events[0][0] <= now:
                    _due, _order, target, what = pending_events.popleft()
                    if target.channel_error is not None:
                        continue
                    if what == "echo":
                        echo = self._send(target, 64, now, trace=False)
                        if echo is not None:
                            target.echo.append(echo)
                    else:
                        self._trace_round(target, now)
                now = time.monotonic()
                self._expire(now)
                for probe in tcp_active:
                    if probe.result is None and probe.sock is not None and now >= probe.deadline:
                        self.selector.unregister(probe.sock)
                        probe.sock.close()
                        probe.sock = None
                        probe.result = PortResult(probe.port, False, None,
                                                  f"no answer within {opts.timeout:g}s")
                tcp_active = [p for p in tcp_active if p.result is None]
                if not pending_events and not self.in_flight and not tcp_active and not tcp_queue:
                    return
                wake = [p.deadline for p in tcp_active]
                if pending_events:
                    wake.append(pending_events[0][0])
                if self.in_flight:
                    wake.append(self.in_flight[0].deadline)
                self._poll(max(0.0, min(wake) - time.monotonic()) if wake else 0.0)
        finally:
            for probe in tcp_active:
                if probe.sock is not None:
                    probe.sock.close()
            for channels in self.channels.values():
                for channel in channels:
                    channel.close()
            self.selector.close()

    def _poll(self, wait: float) -> None:
        """Handle whatever is ready (waiting up to ``wait`` seconds for something to be)."""
        for key, _mask in self.selector.select(wait):
            when = time.monotonic()
            if isinstance(key.data, _Channel):
                self._drain(key.data)
            elif isinstance(key.data, _TcpProbe) and key.data.sock is not None:
                sock = key.data.sock
                err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                self._finish_tcp(key.data, sock, err, when)

    def _expire(self, now: float) -> None:
        while self.in_flight and (self.in_flight[0].done or self.in_flight[0].deadline <= now):
            probe = self.in_flight.popleft()
            probe.done = True


def _tcp_concurrency() -> int:
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


# ------------------------------------------------------------------------------------------------
# turning answers into results


_UNREACH_V4 = {0: "network unreachable", 1: "host unreachable", 2: "protocol unreachable",
               3: "port unreachable", 9: "network prohibited", 10: "host prohibited",
               13: "communication prohibited"}
_UNREACH_V6 = {0: "no route to destination", 1: "communication prohibited", 3: "address unreachable",
               4: "port unreachable", 5: "source address failed policy", 6: "reject route"}


def _unreach_text(family: int, code: int) -> str:
    table = _UNREACH_V4 if family == socket.AF_INET else _UNREACH_V6
    return table.get(code, f"destination unreachable (code {code})")


def _rtts(probes: Iterable[_IcmpProbe]) -> list[float]:
    return [max(0.0, (p.reply_wall - p.sent_wall) * 1000.0)
            for p in probes if p.reply_wall is not None and p.sent_wall]


def _echo_result(target: _IcmpTarget) -> EchoResult:
    sent = [p for p in target.echo if p.send_error is None]
    if not sent:
        error = target.channel_error or next((p.send_error for p in target.echo if p.send_error), None)
        return EchoResult(sent=0, received=0, error=error or "no echo request could be sent")
    replies = [p for p in sent if p.reply == "echo"]
    rtts = _rtts(replies)
    errors = [p for p in sent if p.reply == "unreachable"]
    note = None
    if errors:
        first = errors[0]
        note = f"{_unreach_text(target.family, first.code)} (from {first.responder or '?'})"
    return EchoResult(sent=len(sent), received=len(replies),
                      min_ms=_ms(min(rtts)) if rtts else None,
                      avg_ms=_ms(sum(rtts) / len(rtts)) if rtts else None,
                      max_ms=_ms(max(rtts)) if rtts else None, note=note)


def _route_result(target: _IcmpTarget, max_hops: int) -> Route:
    probes = [p for p in target.trace if p.send_error is None]
    if not probes:
        error = target.channel_error or next((p.send_error for p in target.trace if p.send_error), None)
        return Route(hops=(), reached=False, error=error or "no probe could be sent")
    by_ttl: dict[int, list[_IcmpProbe]] = collections.defaultdict(list)
    for probe in probes:
        by_ttl[probe.ttl].append(probe)
    reached = target.dest_ttl is not None
    ends = [p.ttl for p in probes if p.reply == "unreachable"]
    if target.dest_ttl is not None:
        ends.append(target.dest_ttl)
    if ends:
        last = min(ends)
    else:
        answered = [p.ttl for p in probes if p.reply is not None]
        last = min(max_hops, max(answered, default=0) + TRAILING_UNKNOWN_HOPS)
    hops: list[Hop] = []
    for ttl in range(1, last + 1):
        group = by_ttl.get(ttl, [])
        answers = [p for p in group if p.reply is not None]
        counts = collections.Counter(p.responder for p in answers if p.responder)
        address = counts.most_common(1)[0][0] if counts else None
        notes: list[str] = []
        others = [a for a in counts if a != address]
        if others:
            notes.append("also " + ", ".join(sorted(others)))
        unreach = [p for p in answers if p.reply == "unreachable"]
        if unreach:
            notes.append(_unreach_text(target.family, unreach[0].code))
        rtts = _rtts(answers)
        hops.append(Hop(ttl=ttl, address=address, sent=len(group), received=len(answers),
                        best_ms=_ms(min(rtts)) if rtts else None,
                        avg_ms=_ms(sum(rtts) / len(rtts)) if rtts else None,
                        worst_ms=_ms(max(rtts)) if rtts else None,
                        note="; ".join(notes) or None))
    return Route(hops=tuple(hops), reached=reached)


# ------------------------------------------------------------------------------------------------
# the public entry point


@dataclass
class _Plan:
    host: Host
    lookup: _Lookup
    endpoint: Endpoint
    via: str | None
    extra_ports: list[int]
    notes: list[str]


def probe_cluster(config: ClusterConfig, options: PingOptions) -> PingReport:
    """Probe every host of ``config`` concurrently and return the report (see module docs)."""
    options.validate()
    started = time.monotonic()
    mode = detect_icmp_mode()
    notices: list[str] = []
    if mode.mode == ICMP_NONE:
        notices.append(f"icmp: unavailable ({mode.reason}); reporting the TCP probe alone")

    lookups: dict[tuple[str, bool], _Lookup] = {}
    plans: list[_Plan | None] = []
    for host in config.hosts:
        endpoint = host.probe_target
        if endpoint is None:
            plans.append(None)
            continue
        via = "bastion" if host.bastion is not None else None
        use_ssh_config = host.connection == "openSSH" and host.bastion is None
        key = (endpoint.address, use_ssh_config)
        lookup = lookups.get(key)
        if lookup is None:
            lookup = lookups[key] = _Lookup(address=endpoint.address, use_ssh_config=use_ssh_config)
        notes: list[str] = []
        extra: list[int] = []
        if host.is_controller and options.extra_ports:
            if via is None:
                extra = sorted(set(options.extra_ports))
            else:
                notes.append(f"extra ports not probed: the host is reached through bastion "
                             f"{_hostport(endpoint.address, endpoint.port)}")
        plans.append(_Plan(host=host, lookup=lookup, endpoint=endpoint, via=via, extra_ports=extra,
                           notes=notes))

    loop = _Loop(mode.mode, options)
    loop.warm_up()
    _resolve_all(lookups.values(), options.ssh_config, options.timeout)

    # What goes on the wire: ICMP per distinct IP, TCP per distinct (IP, port).
    icmp_targets: dict[str, _IcmpTarget] = {}
    tcp_probes: dict[tuple[str, int], _TcpProbe] = {}
    resolved: list[tuple[_Plan, ProbeTarget, int, list[int]] | None] = []
    for plan in plans:
        if plan is None:
            resolved.append(None)
            continue
        lookup = plan.lookup
        port = plan.endpoint.port
        via = plan.via
        address = plan.endpoint.address
        hostname = lookup.hostname or address
        extra = list(plan.extra_ports)
        if lookup.jump is not None:
            via = "proxyjump"
            address, port, hostname = lookup.jump
            if extra:
                plan.notes.append(f"extra ports not probed: the host is reached through ProxyJump "
                                  f"{_hostport(address, port)}")
                extra = []
        elif lookup.ssh_port is not None and port == 22:
            port = lookup.ssh_port
        target = ProbeTarget(address=address, port=port, protocol=plan.endpoint.protocol, via=via,
                             hostname=hostname, ip=lookup.ip)
        resolved.append((plan, target, port, extra))
        if lookup.ip is None or lookup.sockaddr is None:
            continue
        if mode.mode != ICMP_NONE and lookup.ip not in icmp_targets:
            icmp_targets[lookup.ip] = _IcmpTarget(ip=lookup.ip, family=lookup.family)
        for p in [port, *extra]:
            if (lookup.ip, p) not in tcp_probes:
                sockaddr = (lookup.sockaddr[0], p, *lookup.sockaddr[2:])
                tcp_probes[(lookup.ip, p)] = _TcpProbe(sockaddr=sockaddr, family=lookup.family, port=p)

    loop.run(list(icmp_targets.values()), list(tcp_probes.values()))

    echo_results = {ip: _echo_result(t) for ip, t in icmp_targets.items()}
    route_results = ({ip: _route_result(t, options.max_hops) for ip, t in icmp_targets.items()}
                     if options.traceroute else {})

    hosts: list[HostResult] = []
    for host, item in zip(config.hosts, resolved, strict=True):
        if item is None:
            hosts.append(HostResult(index=host.index, role=host.role, connection=host.connection,
                                    address=None, port=None, status=STATUS_SKIPPED,
                                    notes=["k0sctl localhost connection: nothing to probe"]))
            continue
        plan, target, port, extra = item
        assert host.endpoint is not None
        notes = [*plan.lookup.notes, *plan.notes]
        result = HostResult(index=host.index, role=host.role, connection=host.connection,
                            address=host.endpoint.address, port=host.endpoint.port,
                            status=STATUS_UNREACHABLE, target=target, notes=notes)
        ip = plan.lookup.ip
        if ip is None:
            result.error = plan.lookup.error or "the address did not resolve"
            hosts.append(result)
            continue
        result.tcp = tcp_probes[(ip, port)].result
        result.extra_ports = [r for r in (tcp_probes[(ip, p)].result for p in extra) if r is not None]
        if ip in echo_results:
            result.icmp = echo_results[ip]
        if ip in route_results:
            result.route = route_results[ip]
        if result.tcp is not None and result.tcp.open:
            result.status = STATUS_REACHABLE
        else:
            why = result.tcp.error if result.tcp is not None else "not probed"
            result.error = f"tcp/{port} {why}"
        hosts.append(result)

    stats = ProbeStats(targets=len({ip for ip, _p in tcp_probes}), icmp_requests=loop.icmp_sent,
                       tcp_connects=loop.tcp_started)
    return PingReport(hosts=hosts, icmp_mode=mode.mode, notices=notices, options=options,
                      duration_s=time.monotonic() - started, stats=stats)
