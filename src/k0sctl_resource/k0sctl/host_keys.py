"""SSH host keys as an identity that no spelling of an address hides.

- `recorded_keys`: after a k0sctl run, the keys of the hosts it connected to, from the step's private
  known_hosts file (`SSH_KNOWN_HOSTS`). Without `source.ssh_known_hosts` that file starts empty and
  rig's trust-on-first-use writes exactly the keys of the hosts (bastions included) it connected to;
  with it, the lines whose host names match one of the hosts' names are taken (hashed names too).
- `scan`: the keys that hosts show, with `ssh-keyscan` (a key exchange; no login, no command).

Keys are compared by their SHA256 fingerprint (`SHA256:…`, as `ssh-keygen -l` prints it).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import shutil
import subprocess
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from k0sctl_resource.config.spelling import ip_of

SCAN_TIMEOUT = 5  # seconds per host, ssh-keyscan's -T


def fingerprint(blob_b64: str) -> str | None:
    try:
        blob = base64.b64decode(blob_b64, validate=True)
    except (binascii.Error, ValueError):
        return None
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def _names(host: str, port: int) -> list[str]:
    return [host if port == 22 else f"[{host}]:{port}"]


def _wildcard(pattern: str) -> re.Pattern[str]:
    """A known_hosts host pattern: `*` and `?` are its only wildcards (`[host]:port` is literal)."""
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern.lower()))


def _matches(field: str, names: list[str]) -> bool:
    for pattern in field.split(","):
        if pattern.startswith("|1|"):
            try:
                _, _, salt, digest = pattern.split("|")
                key = base64.b64decode(salt)
                if any(hmac.compare_digest(base64.b64encode(hmac.new(key, n.encode(), hashlib.sha1).digest()).decode(),
                                           digest) for n in names):
                    return True
            except (ValueError, binascii.Error):
                continue
        elif not pattern.startswith("!") and any(_wildcard(pattern).fullmatch(n.lower()) for n in names):
            return True
    return False


def recorded_keys(known_hosts: Path, hosts: Iterable[tuple[str, int]] | None) -> list[str]:
    """Fingerprints in `known_hosts`: all of them (`hosts` None: a trust-on-first-use file of this step),
    else those of lines naming one of `hosts` (name, port)."""
    try:
        text = known_hosts.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    names = None if hosts is None else [n for host, port in hosts for n in _names(host, port)]
    found: list[str] = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 3 or parts[0].startswith(("#", "@")):
            continue
        if names is not None and not _matches(parts[0], names):
            continue
        if (fp := fingerprint(parts[2])) is not None and fp not in found:
            found.append(fp)
    return found


def scan(targets: Iterable[tuple[str, int]], timeout: int = SCAN_TIMEOUT) -> dict[tuple[str, int], set[str]]:
    """The host keys each (host, port) shows, by `ssh-keyscan` (one run per port); a host that does not
    answer shows none. Raises ValueError when ssh-keyscan is missing."""
    binary = shutil.which("ssh-keyscan")
    if binary is None:
        raise ValueError("ssh-keyscan (openssh-client) is not on PATH")
    by_port: dict[int, list[str]] = {}
    for host, port in dict.fromkeys(targets):
        by_port.setdefault(port, []).append(host)
    shown: dict[tuple[str, int], set[str]] = {}

    def one_port(port: int, hosts: list[str]) -> None:
        asked: dict[str, list[str]] = {}  # ssh-keyscan prints an IP in its usual spelling
        for host in hosts:
            asked.setdefault(_plain(host), []).append(host)
        try:
            proc = subprocess.run([binary, "-T", str(timeout), "-p", str(port), "-f", "-"],
                                  input="".join(h + "\n" for h in hosts), capture_output=True, text=True,
                                  timeout=timeout * (len(hosts) + 2), check=False, start_new_session=True)
        except (subprocess.TimeoutExpired, OSError):
            return
        for line in proc.stdout.splitlines():
            parts = line.split()
            if len(parts) < 3 or parts[0].startswith("#"):
                continue
            name = parts[0].removeprefix("[").partition("]")[0] if parts[0].startswith("[") else parts[0]
            fp = fingerprint(parts[2])
            if fp is None:
                continue
            for host in asked.get(_plain(name), []):
                shown.setdefault((host, port), set()).add(fp)  # one thread per port: no key is shared

    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="keyscan") as pool:
        list(pool.map(lambda item: one_port(*item), by_port.items()))
    return shown


def _plain(host: str) -> str:
    ip = ip_of(host)
    return str(ip) if ip is not None else host.lower().rstrip(".")
