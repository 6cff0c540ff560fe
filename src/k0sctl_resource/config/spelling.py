"""One spelling for a host, so that two spellings of one machine compare equal.

`canonical_host` turns every form that k0sctl's connections (Go's dialer for `ssh`, the system's `ssh`
and resolver for `openSSH`) accept for one address into one string:

- destination forms: `root@h`, `ssh://root@h:22`, `[h]:22`, `h:22` (the user and port are dropped);
- IPv4 in every form the C library's `inet_aton` accepts (`127.1`, `2130706433`, `0x7f000001`,
  `0177.0.0.1`, `127.000.000.001`, `192.0.522`): the dotted quad;
- IPv6 in any spelling, with or without brackets or a zone (`%eth0`); IPv4-mapped IPv6 as IPv4;
- every loopback address, `0.0.0.0` and `::` (which reach the local host), `localhost` and names
  under `.localhost`: `localhost`;
- names: lower case, without a trailing dot.

`resolve_names` asks the system's resolver for the addresses of names, concurrently and within a
bound; a name that does not resolve in time has no addresses and is compared by its spelling alone.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
import threading
import time
from collections.abc import Iterable

LOCALHOST = "localhost"
_INET_ATON = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+)){0,3}$")
_PORT_SUFFIX = re.compile(r"^(?P<host>[^:\[\]]+):(?P<port>[0-9]*)$")


def split_destination(text: str) -> tuple[str | None, str, int | None]:
    """`[user@]host[:port]` or `ssh://[user@]host[:port]` as (user, host, port); host as written."""
    rest = text.strip()
    if not any(c in rest for c in "@:/["):  # a plain name or IPv4 spelling: the common case
        return None, rest, None
    if rest.lower().startswith("ssh://"):
        rest = rest[6:].rstrip("/")
    user = None
    if "@" in rest:
        user, _, rest = rest.rpartition("@")
    port = None
    if rest.startswith("[") and "]" in rest:
        inner, _, tail = rest[1:].partition("]")
        if tail.startswith(":") and tail[1:].isdigit():
            port = int(tail[1:])
        rest = inner
    elif (match := _PORT_SUFFIX.match(rest)) is not None:
        rest = match.group("host")
        port = int(match.group("port")) if match.group("port") else None
    return user, rest, port


def ip_of(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address `text` spells (any form inet_aton or an IPv6 parser accepts), else None."""
    text = text.strip().lower()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if _INET_ATON.match(text):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(text))
        except OSError:
            return None
    if ":" in text:
        try:
            ip = ipaddress.IPv6Address(text.partition("%")[0])
        except ValueError:
            return None
        return ip.ipv4_mapped or ip
    return None


def canonical_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback or ip.is_unspecified or (isinstance(ip, ipaddress.IPv4Address) and ip.packed[0] == 0):
        return LOCALHOST
    return ip.compressed


@functools.lru_cache(maxsize=65536)
def canonical_host(text: str) -> str:
    """The one spelling of the host in `text` (see the module doc)."""
    _, host, _ = split_destination(text)
    host = host.strip().lower()
    if (ip := ip_of(host)) is not None:
        return canonical_ip(ip)
    if ":" in host and (ip := ip_of(host.rpartition(":")[0])) is not None:  # `v6:port` without brackets
        return canonical_ip(ip)
    host = host.rstrip(".")
    if host in (LOCALHOST, "localhost.localdomain", "ip6-localhost", "ip6-loopback") or host.endswith(".localhost"):
        return LOCALHOST
    return host


def is_name(canonical: str) -> bool:
    """Whether a canonical spelling is a name (which may resolve), not an IP address or `localhost`."""
    return canonical != LOCALHOST and ip_of(canonical) is None


def resolve_names(names: Iterable[str], timeout: float = 5.0, workers: int = 16) -> dict[str, frozenset[str]]:
    """The canonical addresses of each name (empty when it does not resolve within `timeout` seconds in
    all). Lookups run on daemon threads: a resolver that hangs delays the step by `timeout` at most."""
    todo = sorted({n for n in names if is_name(n)})
    found: dict[str, frozenset[str]] = {n: frozenset() for n in todo}
    if not todo:
        return found
    lock = threading.Lock()
    queue = list(reversed(todo))

    def work() -> None:
        while True:
            with lock:
                if not queue:
                    return
                name = queue.pop()
            try:
                infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
            except (OSError, UnicodeError):
                continue
            addresses = frozenset(canonical_ip(ipaddress.ip_address(str(info[4][0]).partition("%")[0]))
                                  for info in infos)
            with lock:
                found[name] = addresses

    threads = [threading.Thread(target=work, daemon=True, name="resolve") for _ in range(min(workers, len(todo)))]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    with lock:
        return dict(found)
