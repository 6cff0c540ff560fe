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

Modules (each readable on its own):

* :mod:`.model`: :class:`PingOptions` and the records of one probed target;
* :mod:`.result`: the per-host results and the report, with its JSON round trip;
* :mod:`.mode`: which ICMP sockets this process may open;
* :mod:`.resolve`: ``ssh -G`` and name resolution of the probed targets;
* :mod:`.packets`: parsing ICMP answers and the kernel's ancillary data;
* :mod:`.icmp`: ICMP sockets, echo requests and route-trace rounds, matching the answers;
* :mod:`.tcp`: TCP connect probes;
* :mod:`.loop`: the event loop that drives the ICMP and TCP probes;
* :mod:`.summary`: ICMP answers to :class:`EchoResult` and :class:`Route`;
* :mod:`.probe`: :func:`probe_cluster`, from config to :class:`PingReport`.
"""

from __future__ import annotations

from k0sctl_resource.ping.mode import ICMP_NONE, ICMP_PRIVILEGED, ICMP_UNPRIVILEGED, IcmpMode, detect_icmp_mode
from k0sctl_resource.ping.model import (
    JSON_FORMAT,
    STATUS_REACHABLE,
    STATUS_SKIPPED,
    STATUS_UNREACHABLE,
    EchoResult,
    Hop,
    PingOptions,
    PortResult,
    ProbeTarget,
    Route,
)
from k0sctl_resource.ping.probe import probe_cluster
from k0sctl_resource.ping.result import HostResult, PingReport, ProbeStats
from k0sctl_resource.ping.summary import TRAILING_UNKNOWN_HOPS

__all__ = [
    "ICMP_NONE",
    "ICMP_PRIVILEGED",
    "ICMP_UNPRIVILEGED",
    "JSON_FORMAT",
    "STATUS_REACHABLE",
    "STATUS_SKIPPED",
    "STATUS_UNREACHABLE",
    "TRAILING_UNKNOWN_HOPS",
    "EchoResult",
    "Hop",
    "HostResult",
    "IcmpMode",
    "PingOptions",
    "PingReport",
    "PortResult",
    "ProbeStats",
    "ProbeTarget",
    "Route",
    "detect_icmp_mode",
    "probe_cluster",
]
