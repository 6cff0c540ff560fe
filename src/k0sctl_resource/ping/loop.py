"""The event loop of a ping run: one thread, one selector, non-blocking sockets.

ICMP work is scheduled up front: round r (0 to count - 1) of the echo requests and of the route
trace is due ``r * interval`` after the start, for every target at once. TCP connects start
right away, as many at a time as the open-files limit allows. Between those, the loop waits
for whatever comes first: the next scheduled round, an answer, or a deadline.
"""

from __future__ import annotations

import collections
import selectors
import time

from k0sctl_resource.ping.icmp import Channel, IcmpProber, IcmpTarget
from k0sctl_resource.ping.model import PingOptions
from k0sctl_resource.ping.tcp import TcpConnector, TcpProbe


class Loop:
    """Sends every ICMP request at its time, runs every TCP connect, collects the answers."""

    def __init__(self, mode: str, options: PingOptions) -> None:
        self.options = options
        self.selector = selectors.DefaultSelector()
        self.icmp = IcmpProber(mode, options, self.selector, self._poll)
        self.tcp = TcpConnector(self.selector, options.timeout)

    @property
    def icmp_sent(self) -> int:
        return self.icmp.sent

    @property
    def tcp_started(self) -> int:
        return self.tcp.started

    def warm_up(self) -> None:
        """See :meth:`IcmpProber.warm_up`: call it a little before :meth:`run`."""
        self.icmp.warm_up()

    def run(self, targets: list[IcmpTarget], tcp: list[TcpProbe]) -> None:
        opts = self.options
        if targets:
            self.icmp.settle()
        start = time.monotonic()
        # Scheduled ICMP work: (due, order, target, "echo"|"trace")
        schedule: list[tuple[float, int, IcmpTarget, str]] = []
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
        try:
            while True:
                now = time.monotonic()
                while tcp_queue and self.tcp.has_room:
                    self.tcp.start(tcp_queue.popleft(), now)
                    self._poll(0)
                while pending_events and pending_events[0][0] <= now:
                    _due, _order, target, what = pending_events.popleft()
                    if what == "echo":
                        self.icmp.echo(target, now)
                    else:
                        self.icmp.trace_round(target, now)
                # What has arrived is read before anything is given up on: a process that did not run for
                # a while (a loaded machine) must not count an answer that came in time as lost.
                self._poll(0)
                now = time.monotonic()
                self.icmp.expire(now)
                self.tcp.expire(now)
                if not pending_events and not self.icmp.in_flight and not self.tcp.active and not tcp_queue:
                    return
                wake = [p.deadline for p in self.tcp.active]
                if pending_events:
                    wake.append(pending_events[0][0])
                if self.icmp.in_flight:
                    wake.append(self.icmp.in_flight[0].deadline)
                self._poll(max(0.0, min(wake) - time.monotonic()) if wake else 0.0)
        finally:
            self.tcp.close()
            self.icmp.close()
            self.selector.close()

    def _poll(self, wait: float) -> None:
        """Handle whatever is ready (waiting up to ``wait`` seconds for something to be)."""
        for key, _mask in self.selector.select(wait):
            when = time.monotonic()
            if isinstance(key.data, Channel):
                self.icmp.drain(key.data)
            elif isinstance(key.data, TcpProbe):
                self.tcp.writable(key.data, when)
