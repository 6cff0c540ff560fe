"""What the ICMP answers of one target add up to: its :class:`EchoResult` and its mtr-style
:class:`Route` (per TTL: the address that answered most, loss and best/avg/worst ms)."""

from __future__ import annotations

import collections
import socket
from collections.abc import Iterable

from k0sctl_resource.ping.icmp import IcmpProbe, IcmpTarget
from k0sctl_resource.ping.model import EchoResult, Hop, Route, round_ms

TRAILING_UNKNOWN_HOPS = 3
"""When the destination never answers, the route lists this many silent hops after the last one
that answered (the rest up to max_hops were probed too and stayed silent)."""


_UNREACH_V4 = {0: "network unreachable", 1: "host unreachable", 2: "protocol unreachable",
               3: "port unreachable", 9: "network prohibited", 10: "host prohibited",
               13: "communication prohibited"}
_UNREACH_V6 = {0: "no route to destination", 1: "communication prohibited", 3: "address unreachable",
               4: "port unreachable", 5: "source address failed policy", 6: "reject route"}


def _unreach_text(family: int, code: int) -> str:
    table = _UNREACH_V4 if family == socket.AF_INET else _UNREACH_V6
    return table.get(code, f"destination unreachable (code {code})")


def _rtts(probes: Iterable[IcmpProbe]) -> list[float]:
    return [max(0.0, (p.reply_wall - p.sent_wall) * 1000.0)
            for p in probes if p.reply_wall is not None and p.sent_wall]


def echo_result(target: IcmpTarget) -> EchoResult:
    """Echo statistics of the echo requests sent to ``target``."""
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
                      min_ms=round_ms(min(rtts)) if rtts else None,
                      avg_ms=round_ms(sum(rtts) / len(rtts)) if rtts else None,
                      max_ms=round_ms(max(rtts)) if rtts else None, note=note)


def route_result(target: IcmpTarget, max_hops: int) -> Route:
    """The route report of the trace rounds sent to ``target``: hops up to the destination (or the
    first Destination Unreachable), else TRAILING_UNKNOWN_HOPS past the last answer (at most
    max_hops)."""
    probes = [p for p in target.trace if p.send_error is None]
    if not probes:
        error = target.channel_error or next((p.send_error for p in target.trace if p.send_error), None)
        return Route(hops=(), reached=False, error=error or "no probe could be sent")
    by_ttl: dict[int, list[IcmpProbe]] = collections.defaultdict(list)
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
                        best_ms=round_ms(min(rtts)) if rtts else None,
                        avg_ms=round_ms(sum(rtts) / len(rtts)) if rtts else None,
                        worst_ms=round_ms(max(rtts)) if rtts else None,
                        note="; ".join(notes) or None))
    return Route(hops=tuple(hops), reached=reached)

