"""Which ICMP sockets this process may open, decided once per run by opening one.

"privileged": raw sockets (root or CAP_NET_RAW). "unprivileged": kernel ping sockets, where
net.ipv4.ping_group_range covers the process's group. "none": neither; the report then holds
the TCP probe alone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from icmplib import ICMPv4Socket, ICMPv6Socket
from icmplib.exceptions import ICMPSocketError, SocketPermissionError

ICMP_PRIVILEGED = "privileged"
ICMP_UNPRIVILEGED = "unprivileged"
ICMP_NONE = "none"


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

