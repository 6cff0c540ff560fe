"""Presenting a :class:`~k0sctl_resource.ping.PingReport`: a table for people, metadata for Concourse.

The JSON form is :meth:`PingReport.to_json`; :func:`metadata_facts` is what a put `ping` adds to its
metadata. The table has a summary line, the notices, then one
block per host (in config order) with its route under it, laid out like ``mtr --report``::

    ping: 2 hosts: 1 reachable, 1 unreachable | icmp privileged | count 3, timeout 2s | 2.42s

    host[0]  198.51.100.10:22  controller  ssh  REACHABLE
      ssh    tcp/22 open, 0.44 ms
      ports  tcp/6443 open, 0.73 ms; tcp/9443 connection refused after 0.81 ms
      icmp   3 sent, 3 received, 0.0% loss, rtt min/avg/max 0.02/0.06/0.09 ms
      route         Host             Loss%   Snt    Best     Avg    Wrst
              1.|-- 192.0.2.1         0.0%     3    0.01    0.04    0.08
              2.|-- 198.51.100.10     0.0%     3    0.01    0.01    0.01

    host[1]  198.51.100.99:22  worker  ssh  UNREACHABLE
      ssh    tcp/22 no answer within 2s
      icmp   3 sent, 0 received, 100.0% loss
      route         Host             Loss%   Snt    Best     Avg    Wrst
              1.|-- 192.0.2.1         0.0%     3    0.01    0.01    0.01
              2.|-- ???             100.0%     3       -       -       -
              3.|-- ???             100.0%     3       -       -       -
              4.|-- ???             100.0%     3       -       -       -
             (destination not reached)

Times are milliseconds. Without ICMP permission the notice line follows the summary and the
``icmp``/``route`` lines are absent.
"""

from __future__ import annotations

from k0sctl_resource.ping import (
    ICMP_NONE,
    STATUS_REACHABLE,
    STATUS_SKIPPED,
    EchoResult,
    HostResult,
    PingReport,
    PortResult,
    Route,
)

__all__ = ["metadata_facts", "render_table"]

_LABEL = 7  # width of the "ssh", "icmp", "route" labels


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _port_text(result: PortResult) -> str:
    if result.open:
        return f"tcp/{result.port} open, {_num(result.latency_ms)} ms"
    text = f"tcp/{result.port} {result.error or 'closed'}"
    if result.latency_ms is not None and result.error == "connection refused":
        text += f" after {_num(result.latency_ms)} ms"
    return text


def _echo_text(echo: EchoResult) -> str:
    if echo.sent == 0:
        return f"not measured: {echo.error or 'nothing sent'}"
    text = f"{echo.sent} sent, {echo.received} received, {echo.loss_pct:.1f}% loss"
    if echo.received:
        text += f", rtt min/avg/max {_num(echo.min_ms)}/{_num(echo.avg_ms)}/{_num(echo.max_ms)} ms"
    if echo.note:
        text += f" ({echo.note})"
    return text


def _route_lines(route: Route, width: int, indent: str) -> list[str]:
    if route.error is not None and not route.hops:
        return [f"{indent}{'route':<{_LABEL}}not traced: {route.error}"]
    head = f"{'Host':<{width}} {'Loss%':>6} {'Snt':>5} {'Best':>7} {'Avg':>7} {'Wrst':>7}"
    lines = [f"{indent}{'route':<{_LABEL}}{'':7}{head}"]  # 7: the width of "NN.|-- "
    for hop in route.hops:
        address = hop.address or "???"
        line = (f"{indent}{'':<{_LABEL}}{hop.ttl:>2}.|-- {address:<{width}} {hop.loss_pct:>5.1f}% "
                f"{hop.sent:>5} {_num(hop.best_ms):>7} {_num(hop.avg_ms):>7} {_num(hop.worst_ms):>7}")
        if hop.note:
            line += f"  {hop.note}"
        lines.append(line.rstrip())
    if not route.reached:
        lines.append(f"{indent}{'':<{_LABEL}}(destination not reached)")
    return lines


def _host_header(host: HostResult) -> str:
    parts = [f"host[{host.index}]"]
    if host.address is not None:
        parts.append(host.name)
    parts += [host.role, host.connection, host.status.upper()]
    return "  ".join(parts)


def _host_block(host: HostResult, width: int) -> list[str]:
    indent = "  "
    lines = [_host_header(host)]
    target = host.target
    if target is not None:
        if target.via is not None:
            lines.append(f"{indent}{'via':<{_LABEL}}{target.via} {target.name}")
        if target.ip is not None and target.ip != target.address:
            lines.append(f"{indent}{'address':<{_LABEL}}{target.ip}")
    for note in host.notes:
        lines.append(f"{indent}{'note':<{_LABEL}}{note}")
    if host.status == STATUS_SKIPPED:
        return lines
    if host.tcp is not None:
        label = target.protocol.lower() if target is not None else "tcp"
        lines.append(f"{indent}{label:<{_LABEL}}{_port_text(host.tcp)}")
    elif host.error:
        lines.append(f"{indent}{'error':<{_LABEL}}{host.error}")
    if host.extra_ports:
        lines.append(f"{indent}{'ports':<{_LABEL}}" + "; ".join(_port_text(p) for p in host.extra_ports))
    if host.icmp is not None:
        lines.append(f"{indent}{'icmp':<{_LABEL}}{_echo_text(host.icmp)}")
    if host.route is not None:
        lines.extend(_route_lines(host.route, width, indent))
    return lines


def render_table(report: PingReport) -> str:
    """The report for people: summary, notices, then one block per host with its route."""
    reachable = len(report.reachable())
    unreachable = len(report.unreachable())
    skipped = len(report.skipped())
    counts = f"{reachable} reachable, {unreachable} unreachable"
    if skipped:
        counts += f", {skipped} skipped"
    opts = report.options
    summary = (f"ping: {len(report.hosts)} host{'s' if len(report.hosts) != 1 else ''}: {counts} | "
               f"icmp {report.icmp_mode} | count {opts.count}, timeout {opts.timeout:g}s | "
               f"{report.duration_s:.2f}s")
    lines = [summary]
    lines.extend(report.notices)
    width = max([15] + [len(h.address or "???") for host in report.hosts if host.route
                        for h in host.route.hops])
    for host in report.hosts:
        lines.append("")
        lines.extend(_host_block(host, width))
    return "\n".join(lines) + "\n"


def metadata_facts(report: PingReport) -> dict[str, str]:
    """The facts of the report for Concourse metadata (identifier-style names, string values), in order:

    ``hosts``, ``probed``, ``reachable``, ``unreachable``, ``skipped`` (counts),
    ``unreachable_hosts`` (comma-separated ``address:port``, empty when none),
    ``worst_rtt_ms`` / ``worst_rtt_host`` (highest ICMP echo rtt; empty without ICMP answers),
    ``max_loss_pct`` (highest ICMP echo loss over probed hosts; empty without ICMP),
    ``icmp_mode`` (privileged, unprivileged or none).
    """
    probed = [h for h in report.hosts if h.status != STATUS_SKIPPED]
    worst_rtt = ""
    worst_host = ""
    best_value = -1.0
    losses: list[float] = []
    for host in probed:
        if host.icmp is None or host.icmp.sent == 0:
            continue
        losses.append(host.icmp.loss_pct)
        if host.icmp.max_ms is not None and host.icmp.max_ms > best_value:
            best_value = host.icmp.max_ms
            worst_rtt = f"{host.icmp.max_ms:.3f}"
            worst_host = host.name
    return {
        "hosts": str(len(report.hosts)),
        "probed": str(len(probed)),
        "reachable": str(sum(1 for h in probed if h.status == STATUS_REACHABLE)),
        "unreachable": str(len(report.unreachable())),
        "skipped": str(len(report.skipped())),
        "unreachable_hosts": ",".join(h.name for h in report.unreachable()),
        "worst_rtt_ms": worst_rtt,
        "worst_rtt_host": worst_host,
        "max_loss_pct": f"{max(losses):.1f}" if losses and report.icmp_mode != ICMP_NONE else "",
        "icmp_mode": report.icmp_mode,
    }
