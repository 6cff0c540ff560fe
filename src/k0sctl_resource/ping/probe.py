"""The entry point, :func:`probe_cluster`: plan what to probe for every host of the config,
resolve the targets, run the probes (once per distinct target) and report per host."""

from __future__ import annotations

import time
from dataclasses import dataclass

from k0sctl_resource.config.cluster import ClusterConfig, Endpoint, Host
from k0sctl_resource.ping.icmp import IcmpTarget
from k0sctl_resource.ping.loop import Loop
from k0sctl_resource.ping.mode import ICMP_NONE, detect_icmp_mode
from k0sctl_resource.ping.model import (
    STATUS_REACHABLE,
    STATUS_SKIPPED,
    STATUS_UNREACHABLE,
    EchoResult,
    PingOptions,
    ProbeTarget,
    Route,
    hostport,
)
from k0sctl_resource.ping.resolve import Lookup, resolve_all
from k0sctl_resource.ping.result import HostResult, PingReport, ProbeStats
from k0sctl_resource.ping.summary import echo_result, route_result
from k0sctl_resource.ping.tcp import TcpProbe


@dataclass
class _Plan:
    """What to probe for one host, before its address is resolved."""

    host: Host
    lookup: Lookup
    endpoint: Endpoint
    via: str | None
    extra_ports: list[int]
    notes: list[str]


_Resolved = tuple[_Plan, ProbeTarget, int, list[int]]  # the plan, its target, the port to probe, extra ports


def probe_cluster(config: ClusterConfig, options: PingOptions) -> PingReport:
    """Probe every host of ``config`` concurrently and return the report (see the package docs)."""
    options.validate()
    started = time.monotonic()
    mode = detect_icmp_mode()
    notices: list[str] = []
    if mode.mode == ICMP_NONE:
        notices.append(f"icmp: unavailable ({mode.reason}); reporting the TCP probe alone")
    lookups, plans = _plan(config, options)
    loop = Loop(mode.mode, options)
    loop.warm_up()
    resolve_all(lookups, options.ssh_config, options.timeout)
    resolved = [None if plan is None else _resolve(plan) for plan in plans]
    icmp_targets, tcp_probes = _wire(resolved, icmp=mode.mode != ICMP_NONE)
    loop.run(list(icmp_targets.values()), list(tcp_probes.values()))
    echoes = {ip: echo_result(t) for ip, t in icmp_targets.items()}
    routes = ({ip: route_result(t, options.max_hops) for ip, t in icmp_targets.items()}
              if options.traceroute else {})
    hosts = [_host_result(host, item, tcp_probes, echoes, routes)
             for host, item in zip(config.hosts, resolved, strict=True)]
    stats = ProbeStats(targets=len({ip for ip, _p in tcp_probes}), icmp_requests=loop.icmp_sent,
                       tcp_connects=loop.tcp_started)
    return PingReport(hosts=hosts, icmp_mode=mode.mode, notices=notices, options=options,
                      duration_s=time.monotonic() - started, stats=stats)


def _plan(config: ClusterConfig, options: PingOptions) -> tuple[list[Lookup], list[_Plan | None]]:
    """What to probe for every host (None: a localhost connection), and the distinct names to resolve."""
    lookups: dict[tuple[str, bool], Lookup] = {}
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
            lookup = lookups[key] = Lookup(address=endpoint.address, use_ssh_config=use_ssh_config)
        notes: list[str] = []
        extra: list[int] = []
        if host.is_controller and options.extra_ports:
            if via is None:
                extra = sorted(set(options.extra_ports))
            else:
                notes.append(f"extra ports not probed: the host is reached through bastion "
                             f"{hostport(endpoint.address, endpoint.port)}")
        plans.append(_Plan(host=host, lookup=lookup, endpoint=endpoint, via=via, extra_ports=extra,
                           notes=notes))
    return list(lookups.values()), plans


def _resolve(plan: _Plan) -> _Resolved:
    """The target of a plan once its name is resolved (a ProxyJump hop or the ssh_config port)."""
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
                              f"{hostport(address, port)}")
            extra = []
    elif lookup.ssh_port is not None and port == 22:
        port = lookup.ssh_port
    target = ProbeTarget(address=address, port=port, protocol=plan.endpoint.protocol, via=via,
                         hostname=hostname, ip=lookup.ip)
    return plan, target, port, extra


def _wire(resolved: list[_Resolved | None], *, icmp: bool
          ) -> tuple[dict[str, IcmpTarget], dict[tuple[str, int], TcpProbe]]:
    """What goes on the wire: ICMP per distinct IP, TCP per distinct (IP, port)."""
    icmp_targets: dict[str, IcmpTarget] = {}
    tcp_probes: dict[tuple[str, int], TcpProbe] = {}
    for item in resolved:
        if item is None:
            continue
        plan, _target, port, extra = item
        lookup = plan.lookup
        if lookup.ip is None or lookup.sockaddr is None:
            continue
        if icmp and lookup.ip not in icmp_targets:
            icmp_targets[lookup.ip] = IcmpTarget(ip=lookup.ip, family=lookup.family)
        for p in [port, *extra]:
            if (lookup.ip, p) not in tcp_probes:
                sockaddr = (lookup.sockaddr[0], p, *lookup.sockaddr[2:])
                tcp_probes[(lookup.ip, p)] = TcpProbe(sockaddr=sockaddr, family=lookup.family, port=p)
    return icmp_targets, tcp_probes


def _host_result(host: Host, item: _Resolved | None, tcp_probes: dict[tuple[str, int], TcpProbe],
                 echoes: dict[str, EchoResult], routes: dict[str, Route]) -> HostResult:
    """One host's result from the probes of its target."""
    if item is None:
        return HostResult(index=host.index, role=host.role, connection=host.connection, address=None, port=None,
                          status=STATUS_SKIPPED, notes=["k0sctl localhost connection: nothing to probe"])
    plan, target, port, extra = item
    assert host.endpoint is not None
    notes = [*plan.lookup.notes, *plan.notes]
    result = HostResult(index=host.index, role=host.role, connection=host.connection,
                        address=host.endpoint.address, port=host.endpoint.port,
                        status=STATUS_UNREACHABLE, target=target, notes=notes)
    ip = plan.lookup.ip
    if ip is None:
        result.error = plan.lookup.error or "the address did not resolve"
        return result
    result.tcp = tcp_probes[(ip, port)].result
    result.extra_ports = [r for r in (tcp_probes[(ip, p)].result for p in extra) if r is not None]
    if ip in echoes:
        result.icmp = echoes[ip]
    if ip in routes:
        result.route = routes[ip]
    if result.tcp is not None and result.tcp.open:
        result.status = STATUS_REACHABLE
    else:
        why = result.tcp.error if result.tcp is not None else "not probed"
        result.error = f"tcp/{port} {why}"
    return result
