"""ICMP echo and route probing on a selector shared with the TCP probes.

Per target, :meth:`IcmpProber.echo` sends one echo request and :meth:`IcmpProber.trace_round`
sends echo requests with TTL 1..max_hops at once (up to the smallest TTL the destination has
answered, once known), so a route trace costs one timeout, not one per hop. Answers are matched
to requests by identifier and sequence number; a request not answered within the timeout is
given up on.

Raw ("privileged") sockets see every ICMP packet of the machine, so each gets a random
identifier; kernel ping ("unprivileged") sockets get theirs from the kernel and hand Time
Exceeded answers over through their error queue.
"""

from __future__ import annotations

import collections
import contextlib
import random
import selectors
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from icmplib import ICMPRequest, ICMPv4Socket, ICMPv6Socket
from icmplib.exceptions import ICMPSocketError, SocketBroadcastError

from k0sctl_resource.ping.mode import ICMP_NONE, ICMP_PRIVILEGED
from k0sctl_resource.ping.model import PingOptions
from k0sctl_resource.ping.packets import (
    IP_RECVERR,
    IPV6_RECVERR,
    SO_TIMESTAMPNS,
    kernel_time,
    parse_answer,
    parse_error_queue,
)

_PAYLOAD = b"k0sctl-resource ping".ljust(56, b".")
_MAX_SEQ = 0xFFFF
_POLL_EVERY = 4
_TIMESTAMP_WARM_UP = 0.02


@dataclass(eq=False)
class IcmpTarget:
    """One address to probe, and the requests sent to it (echo and route trace)."""

    ip: str
    family: int
    echo: list[IcmpProbe] = field(default_factory=list)
    trace: list[IcmpProbe] = field(default_factory=list)
    channel_error: str | None = None
    dest_ttl: int | None = None  # smallest TTL the destination answered


@dataclass(eq=False)
class IcmpProbe:
    """One echo request: when it went out, and what answered it (if anything did in time)."""

    target: IcmpTarget
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


class Channel:
    """One ICMP socket and the sequence numbers of the requests in flight on it."""

    def __init__(self, family: int, privileged: bool, taken: set[int]) -> None:
        self.family = family
        self.privileged = privileged
        cls = ICMPv4Socket if family == socket.AF_INET else ICMPv6Socket
        self.icmp = cls(privileged=privileged)
        self.sock: socket.socket = self.icmp.sock
        self.sock.setblocking(False)
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        if not privileged:
            # Ping sockets hand ICMP errors (Time Exceeded) over through the error queue only;
            # without it the route report would show only the destination.
            with contextlib.suppress(OSError):
                if family == socket.AF_INET:
                    self.sock.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
                else:
                    self.sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVERR, 1)
        # Raw sockets see every ICMP packet of the host: a random identifier picks out ours.
        self.ident = -1
        while privileged and (self.ident < 0 or self.ident in taken):
            self.ident = random.randint(1, 0xFFFF)  # noqa: S311 - not a secret
        self.next_seq = random.randint(0, 0x7FFF)  # noqa: S311
        self.used = 0
        self.pending: dict[int, IcmpProbe] = {}

    @property
    def full(self) -> bool:
        return self.used > _MAX_SEQ

    def send(self, probe: IcmpProbe) -> None:
        seq = self.next_seq & _MAX_SEQ
        self.next_seq += 1
        self.used += 1
        request = ICMPRequest(destination=probe.target.ip, id=max(self.ident, 0), sequence=seq,
                              payload=_PAYLOAD, ttl=probe.ttl)
        if not self.privileged:
            # An ICMP error that reached a ping socket also sets its pending error, which the next
            # send would return instead of sending. Reading SO_ERROR clears it (the error itself
            # stays in the error queue, where IcmpProber.drain reads it).
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




class IcmpProber:
    """Sends echo requests and route-trace rounds, and matches the answers to them.

    Its sockets are registered on ``selector`` with their :class:`Channel` as data; the owner of
    the selector calls :meth:`drain` when one is readable, and ``poll(0)`` is called back every
    few requests, so that during a long burst answers (and TCP handshakes on the same selector)
    are taken as they come, not after the burst. ``in_flight`` holds the requests sent and not
    yet given up on, oldest first.
    """

    def __init__(self, mode: str, options: PingOptions, selector: selectors.BaseSelector,
                 poll: Callable[[float], None]) -> None:
        self.mode = mode
        self.options = options
        self.selector = selector
        self.poll = poll
        self.channels: dict[int, list[Channel]] = {}
        self.channel_errors: dict[int, str] = {}
        self.in_flight: collections.deque[IcmpProbe] = collections.deque()
        self.sent = 0
        self.warm_since: float | None = None

    def warm_up(self) -> None:
        """Open the first ICMP socket now: turning kernel receive timestamps on takes effect a
        little later (a deferred static key), and answers stamped before that would be stamped
        when read instead, making early round-trip times look longer than they are."""
        if self.mode != ICMP_NONE:
            self._channel(socket.AF_INET)
            self.warm_since = time.monotonic()

    def settle(self) -> None:
        """Wait out what is left of the warm-up (see :meth:`warm_up`)."""
        if self.warm_since is not None:
            time.sleep(max(0.0, self.warm_since + _TIMESTAMP_WARM_UP - time.monotonic()))

    def echo(self, target: IcmpTarget, now: float) -> None:
        """Send one echo request to ``target``."""
        if target.channel_error is not None:
            return
        probe = self._send(target, 64, now, trace=False)
        if probe is not None:
            target.echo.append(probe)

    def trace_round(self, target: IcmpTarget, now: float) -> None:
        """Send one round of the route trace to ``target``: TTL 1 up to max_hops, or up to the
        smallest TTL the destination has answered."""
        if target.channel_error is not None:
            return
        last = target.dest_ttl or self.options.max_hops
        for ttl in range(1, last + 1):
            probe = self._send(target, ttl, now, trace=True)
            if probe is None:
                return
            target.trace.append(probe)

    def expire(self, now: float) -> None:
        """Give up on the requests whose answer is overdue (and forget the answered ones)."""
        while self.in_flight and (self.in_flight[0].done or self.in_flight[0].deadline <= now):
            probe = self.in_flight.popleft()
            probe.done = True

    def drain(self, channel: Channel) -> None:
        """Read every answer waiting on ``channel``."""
        sock = channel.sock
        if not channel.privileged:
            while True:  # ICMP errors about our requests (unprivileged ping sockets)
                try:
                    data, anc, _flags, _addr = sock.recvmsg(2048, 1024, socket.MSG_ERRQUEUE)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    break
                when = kernel_time(anc) or time.time()
                for answer, source in parse_error_queue(data, anc, channel.family):
                    self._answer(channel, *answer, source=source, when=when)
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
            when = kernel_time(anc) or time.time()
            parsed = parse_answer(data, channel.family,
                                  has_ip_header=channel.privileged and channel.family == socket.AF_INET)
            if parsed is not None:
                self._answer(channel, *parsed, source=str(addr[0]) if addr else None, when=when)

    def close(self) -> None:
        for channels in self.channels.values():
            for channel in channels:
                channel.close()

    def _channel(self, family: int) -> Channel | None:
        if family in self.channel_errors:
            return None
        channels = self.channels.setdefault(family, [])
        if channels and not channels[-1].full:
            return channels[-1]
        try:
            taken = {c.ident for group in self.channels.values() for c in group}
            channel = Channel(family, self.mode == ICMP_PRIVILEGED, taken)
        except (ICMPSocketError, OSError) as exc:
            name = "ICMPv4" if family == socket.AF_INET else "ICMPv6"
            self.channel_errors[family] = f"{name} socket unavailable: {exc}"
            return None
        channels.append(channel)
        self.selector.register(channel.sock, selectors.EVENT_READ, channel)
        return channel

    def _send(self, target: IcmpTarget, ttl: int, now: float, *, trace: bool) -> IcmpProbe | None:
        channel = self._channel(target.family)
        if channel is None:
            target.channel_error = self.channel_errors[target.family]
            return None
        probe = IcmpProbe(target=target, ttl=ttl, is_trace=trace)
        channel.send(probe)
        self.sent += 1
        if self.sent % _POLL_EVERY == 0:
            # Long bursts (many hosts x many TTLs): look at answers in between, so TCP connect
            # times are taken when the handshake completes, not after the burst.
            self.poll(0)
        if not probe.done:
            probe.deadline = now + self.options.timeout
            self.in_flight.append(probe)
        return probe

    def _answer(self, channel: Channel, kind: str, code: int, ident: int, seq: int,
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
