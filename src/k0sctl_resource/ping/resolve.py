"""Resolving what is probed for a configured address: ``ssh -G`` (HostName, Port, the first
ProxyJump hop) for ``openSSH`` hosts, then the system resolver (IPv4 and IPv6; the first address
getaddrinfo prefers is probed).

Lookups run concurrently on helper threads; one that is not done within the timeout fails with
a reason, and a late answer is dropped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_SSH_G_TIMEOUT = 5.0


@dataclass
class Lookup:
    """Resolution of one configured address (plus its ssh_config view for openSSH hosts)."""

    address: str
    use_ssh_config: bool
    hostname: str = ""
    ssh_port: int | None = None
    jump: tuple[str, int, str] | None = None  # (address as written, port, hostname)
    ip: str | None = None
    family: int = 0
    sockaddr: tuple[Any, ...] | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    done: bool = False


def _ssh_g(alias: str, ssh_config: Path | None) -> dict[str, str]:
    argv = ["ssh", "-G"]
    if ssh_config is not None:
        argv += ["-F", str(ssh_config)]
    argv += ["--", alias]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=_SSH_G_TIMEOUT, check=False,
                          stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        raise RuntimeError(last)
    values: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        key, _, value = line.partition(" ")
        values.setdefault(key.lower(), value.strip())
    return values


def _parse_jump(spec: str) -> tuple[str, int | None]:
    """First hop of a ProxyJump value: ``[user@]host[:port]`` or ``ssh://[user@]host[:port]``."""
    first = spec.split(",", maxsplit=1)[0].strip()
    first = first.removeprefix("ssh://")
    first = first.rsplit("@", 1)[-1]
    if first.startswith("["):
        host, _, rest = first[1:].partition("]")
        port = rest.removeprefix(":")
        return host, int(port) if port.isdigit() else None
    if first.count(":") == 1:
        host, port = first.split(":")
        return host, int(port) if port.isdigit() else None
    return first, None


def _strip_brackets(address: str) -> str:
    return address[1:-1] if address.startswith("[") and address.endswith("]") else address


def _ip_literal(address: str) -> bool:
    try:
        ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    return True


_commit_lock = threading.Lock()


def _resolve(lookup: Lookup, ssh_config: Path | None) -> None:
    """Resolve on a private copy, then publish it unless the caller stopped waiting."""
    work = dataclasses.replace(lookup, notes=[])
    try:
        _resolve_into(work, ssh_config)
    except Exception as exc:  # a thread must always report back
        work.error = f"{lookup.address}: name resolution failed: {exc}"
    with _commit_lock:
        if lookup.done:  # given up on (timeout): keep the timeout error, drop a late answer
            return
        for f in dataclasses.fields(Lookup):
            setattr(lookup, f.name, getattr(work, f.name))
        lookup.done = True


def _resolve_into(lookup: Lookup, ssh_config: Path | None) -> None:
    try:
        name = _strip_brackets(lookup.address)
        lookup.hostname = name
        if lookup.use_ssh_config and shutil.which("ssh") is not None:
            try:
                cfg = _ssh_g(name, ssh_config)
            except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                lookup.notes.append(f"ssh -G {name} failed ({exc}); probing the address as written")
            else:
                lookup.hostname = cfg.get("hostname", name) or name
                if lookup.hostname != name:
                    lookup.notes.append(f"ssh_config: {name} is HostName {lookup.hostname}")
                if cfg.get("port", "22").isdigit():
                    lookup.ssh_port = int(cfg.get("port", "22"))
                jump = cfg.get("proxyjump", "none")
                if jump and jump.lower() != "none":
                    jhost, jport = _parse_jump(jump)
                    jname = jhost
                    with contextlib.suppress(RuntimeError, OSError, subprocess.SubprocessError):
                        jcfg = _ssh_g(jhost, ssh_config)
                        jname = jcfg.get("hostname", jhost) or jhost
                        if jport is None and jcfg.get("port", "22").isdigit():
                            jport = int(jcfg.get("port", "22"))
                    lookup.jump = (jhost, jport or 22, jname)
                    lookup.notes.append(f"ssh_config: reached through ProxyJump {jhost}; probing that hop")
                elif cfg.get("proxycommand", "none").lower() != "none":
                    lookup.notes.append("ssh_config: the host is reached through a ProxyCommand; "
                                        "probing its HostName directly")
        target = lookup.jump[2] if lookup.jump else lookup.hostname
        target = _strip_brackets(target)
        try:
            infos = socket.getaddrinfo(target, None, 0, socket.SOCK_STREAM)
        except socket.gaierror as exc:
            lookup.error = f"{target} does not resolve: {exc.strerror}"
            return
        except (OSError, UnicodeError) as exc:
            lookup.error = f"{target} does not resolve: {exc}"
            return
        family, _type, _proto, _canon, sockaddr = infos[0]
        lookup.family = int(family)
        lookup.sockaddr = tuple(sockaddr)
        ip = str(sockaddr[0])
        lookup.ip = ip
        if not _ip_literal(target):
            others = sorted({str(i[4][0]) for i in infos} - {ip})
            lookup.notes.append(f"{target} resolves to {ip}"
                                + (f" (also {', '.join(others)})" if others else ""))
    finally:
        lookup.done = True


def resolve_all(lookups: Iterable[Lookup], ssh_config: Path | None, timeout: float) -> None:
    """Resolve every lookup concurrently; those not done within ``timeout`` fail with a reason."""
    threads: list[tuple[Lookup, threading.Thread]] = []
    for lookup in lookups:
        if not lookup.use_ssh_config and _ip_literal(_strip_brackets(lookup.address)):
            _resolve(lookup, ssh_config)  # no I/O: getaddrinfo of a literal
            continue
        thread = threading.Thread(target=_resolve, args=(lookup, ssh_config), daemon=True,
                                  name=f"ping-resolve-{lookup.address}")
        thread.start()
        threads.append((lookup, thread))
    deadline = time.monotonic() + timeout
    for lookup, thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
        with _commit_lock:
            if not lookup.done:
                lookup.error = f"{lookup.address}: name resolution did not finish within {timeout:g}s"
                lookup.done = True

