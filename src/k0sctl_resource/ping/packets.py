"""Reading answers to our ICMP echo requests off a socket: echo replies, ICMP errors that quote
a request (Time Exceeded, Destination Unreachable), the extended errors unprivileged ping
sockets queue instead, and the kernel's receive timestamps. Pure functions over bytes.
"""

from __future__ import annotations

import socket
import struct

SO_TIMESTAMPNS = int(getattr(socket, "SO_TIMESTAMPNS", 35))
IP_RECVERR = int(getattr(socket, "IP_RECVERR", 11))
IPV6_RECVERR = int(getattr(socket, "IPV6_RECVERR", 25))
_SO_EE_ORIGIN_ICMP = 2
_SO_EE_ORIGIN_ICMP6 = 3

Answer = tuple[str, int, int, int]
"""(kind, code, identifier, sequence); kind is "echo", "exceeded" or "unreachable"."""


def kernel_time(ancdata: list[tuple[int, int, bytes]]) -> float | None:
    """The receive time the kernel stamped (SO_TIMESTAMPNS), if the ancillary data holds it."""
    for level, ctype, data in ancdata:
        if level == socket.SOL_SOCKET and ctype == SO_TIMESTAMPNS and len(data) >= struct.calcsize("@ll"):
            sec, nsec = struct.unpack_from("@ll", data)
            return float(sec) + float(nsec) / 1e9
    return None


_V4 = {"reply": 0, "request": 8, "exceeded": 11, "unreachable": 3}
_V6 = {"reply": 129, "request": 128, "exceeded": 3, "unreachable": 1}


def parse_answer(packet: bytes, family: int, has_ip_header: bool) -> Answer | None:
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



def parse_error_queue(data: bytes, ancdata: list[tuple[int, int, bytes]],
                      family: int) -> list[tuple[Answer, str | None]]:
    """The ICMP errors (with the router that sent each) a ping socket's error queue reports
    about the echo request ``data``; empty when ``data`` is not an echo request."""
    types = _V4 if family == socket.AF_INET else _V6
    if len(data) < 8 or data[0] != types["request"]:
        return []
    ident, seq = struct.unpack_from("!HH", data, 4)
    answers: list[tuple[Answer, str | None]] = []
    for level, ctype, cdata in ancdata:
        if (level, ctype) not in ((socket.IPPROTO_IP, IP_RECVERR), (socket.IPPROTO_IPV6, IPV6_RECVERR)):
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
        answers.append(((kind, ee_code, ident, seq), _sockaddr_ip(cdata[16:])))
    return answers


def _sockaddr_ip(raw: bytes) -> str | None:
    if len(raw) < 2:
        return None
    (family,) = struct.unpack_from("=H", raw)
    if family == socket.AF_INET and len(raw) >= 8:
        return socket.inet_ntop(socket.AF_INET, raw[4:8])
    if family == socket.AF_INET6 and len(raw) >= 24:
        return socket.inet_ntop(socket.AF_INET6, raw[8:24])
    return None

