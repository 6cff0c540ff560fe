"""Where k0sctl really connects for each host of a config: every machine it reaches, jump hosts included.

k0sctl (rig v2) connects to a host's `address` unless its connection says otherwise:

- `ssh` (rig's own client): `options.HostName` replaces the address (`%h` is the address); the port is
  `port` unless that is 22, then `options.Port`, then 22; a `bastion` (a full `ssh` connection with its
  own options and bastion) is connected first; without one, `options.ProxyJump` (`[user@]host[:port]`,
  `ssh://…`, a comma list: rig takes the first hop, `ssh` all of them) becomes the bastion, and that
  bastion's address goes through the same rules. `ProxyCommand` runs a program: nothing tells where
  it connects. ssh_config files (`~/.ssh/config`, `/etc/ssh/ssh_config`) fill what the config leaves
  open; when one exists, `ssh -G` reads them with the host's options.
- `openSSH`: the system `ssh` with `-o` options, `-p port`, `-F configPath` and `[user@]address`;
  `ssh -G` with exactly these says where it connects (`hostname`, `port`, `proxyjump`,
  `proxycommand`), and every jump host is read the same way.
- `winRM`: the address, through an `ssh` bastion when one is given.

Everything is counted: the address as written, the effective host of every hop, all hops of a
ProxyJump list. What cannot be known is reported as a problem (a `$`: k0sctl substitutes environment
variables in the whole file before it connects; `ProxyCommand`; a `%` token other than `%h`/`%%`; a
chain deeper than `MAX_DEPTH`; `ssh -G` failing). Nothing here opens a connection.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from k0sctl_resource.config.spelling import canonical_host, split_destination

MAX_DEPTH = 8
# `ssh -G <args>`: the effective ssh_config of a destination, key (lower case) -> values; raises
# ValueError with a one-line reason when ssh refuses the arguments.
SshG = Callable[[list[str]], dict[str, list[str]]]


@dataclass(frozen=True)
class Hop:
    """One machine k0sctl connects to for a host: where it was written, as written, as dialled."""

    where: str
    written: str
    host: str
    port: int

    @property
    def canonical(self) -> str:
        return canonical_host(self.host)


@dataclass(frozen=True)
class HostEndpoints:
    index: int
    connection: str
    written: str
    hops: tuple[Hop, ...]
    problems: tuple[str, ...] = ()

    @property
    def canonical(self) -> frozenset[str]:
        return frozenset(h.canonical for h in self.hops)


@dataclass
class _Walk:
    ssh_g: SshG | None
    files_matter: bool
    hops: list[Hop] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def add(self, where: str, written: str, host: str, port: int) -> None:
        hop = Hop(where, written, host, port)
        if hop not in self.hops:
            self.hops.append(hop)


def _options(raw: Any) -> dict[str, str]:
    if not isinstance(raw, Mapping):
        return {}
    return {str(k).lower(): ("yes" if v is True else "no" if v is False else str(v)) for k, v in raw.items()}


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _expand(value: str, address: str, where: str, walk: _Walk) -> str:
    rest = value.replace("%%", "\0")
    rest = rest.replace("%h", address)
    if "%" in rest:
        walk.problems.append(f"{where} {value!r} holds a % token whose value cannot be known here")
    return rest.replace("\0", "%")


def _port(value: Any, default: int) -> int:
    try:
        port = int(value)
    except (TypeError, ValueError):
        return default
    return port if 0 < port < 65536 else default


def _jumps(value: str, where: str, user: str, depth: int, walk: _Walk) -> None:
    for entry in (e.strip() for e in value.split(",")):
        if not entry or entry.lower() == "none":
            continue
        jump_user, host, port = split_destination(entry)
        _rig({"address": host, "port": port or 22, "user": jump_user or user}, where, depth + 1, walk, written=entry)


def _rig(conn: Mapping[str, Any], where: str, depth: int, walk: _Walk, written: str | None = None) -> None:
    """An `ssh` connection (rig's client), its bastion or ProxyJump chain included."""
    if depth > MAX_DEPTH:
        walk.problems.append(f"{where}: more than {MAX_DEPTH} bastions or jump hosts in a chain")
        return
    address = str(conn.get("address") or "").strip()
    port = _port(conn.get("port"), 22)
    user = str(conn.get("user") or "root")
    options = _options(conn.get("options"))
    if port == 22 and "port" in options:  # rig: a native port of 22 counts as unset
        port = _port(options["port"], 22)
    here = where if written is not None else f"{where}.address"
    walk.add(here, written or address, split_destination(address)[1], port)
    if "hostname" in options:
        host = _expand(options["hostname"], address, f"{where}.options.HostName", walk)
        walk.add(f"{where}.options.HostName", options["hostname"], split_destination(host)[1], port)
    if options.get("proxycommand", "none").lower() != "none":
        walk.problems.append(f"{where}.options.ProxyCommand runs a program; where it connects cannot be known")
    bastion = conn.get("bastion")
    if isinstance(bastion, Mapping):
        _rig(bastion, f"{where}.bastion", depth + 1, walk)
    elif "proxyjump" in options:
        _jumps(options["proxyjump"], f"{where}.options.ProxyJump", user, depth, walk)
    if walk.files_matter and walk.ssh_g is not None:
        args = [a for k, v in options.items() if k not in ("proxyjump", "proxycommand") for a in ("-o", f"{k}={v}")]
        native = _port(conn.get("port"), 22)
        args += (["-p", str(native)] if native != 22 else []) + [f"{user}@{address}"]
        _from_ssh_g(args, [], where, depth, walk, walk.ssh_g)


def _from_ssh_g(args: list[str], config: list[str], where: str, depth: int, walk: _Walk, ssh_g: SshG) -> None:
    """What `ssh -G` says about one destination (and, recursively, its jump hosts)."""
    if depth > MAX_DEPTH:
        walk.problems.append(f"{where}: more than {MAX_DEPTH} jump hosts in a chain")
        return
    try:
        seen = ssh_g(config + args)
    except ValueError as exc:
        walk.problems.append(f"{where}: ssh -G cannot read it ({exc})")
        return
    host = (seen.get("hostname") or [""])[0]
    port = _port((seen.get("port") or ["22"])[0], 22)
    if host:
        walk.add(f"{where} (ssh -G hostname)", host, host, port)
    if (seen.get("proxycommand") or ["none"])[0].lower() != "none":
        walk.problems.append(f"{where}: ssh_config gives it a ProxyCommand, which runs a program; where it "
                             "connects cannot be known")
    jumps = (seen.get("proxyjump") or ["none"])[0]
    if "%" in jumps:
        walk.problems.append(f"{where}: ssh_config gives it the ProxyJump {jumps!r}, whose % tokens cannot be known")
        return
    for jump in jumps.split(","):
        if jump.strip() and jump.strip().lower() != "none":
            user, jump_host, jump_port = split_destination(jump.strip())
            target = (["-l", user] if user else []) + (["-p", str(jump_port)] if jump_port else []) + [jump_host]
            walk.add(f"{where} (ssh -G proxyjump)", jump.strip(), jump_host, jump_port or 22)
            _from_ssh_g(target, config, f"{where} (ssh -G proxyjump {jump.strip()!r})", depth + 1, walk, ssh_g)


def _openssh(conn: Mapping[str, Any], where: str, walk: _Walk) -> None:
    """The options read as rig's client would (HostName, Port, every ProxyJump hop), and what `ssh -G` says."""
    address = str(conn.get("address") or "").strip()
    options = _options(conn.get("options"))
    port = conn.get("port")
    files_matter, walk.files_matter = walk.files_matter, False
    _rig({**conn, "port": _port(port, 22), "user": conn.get("user") or ""}, where, 0, walk)
    walk.files_matter = files_matter
    if walk.ssh_g is None:
        return
    args = [a for k, v in options.items() for a in ("-o", f"{k}={v}")]
    args += ["-p", str(port)] if port is not None else []
    user = conn.get("user")
    args.append(f"{user}@{address}" if user else address)
    config = ["-F", str(conn["configPath"])] if conn.get("configPath") else []
    _from_ssh_g(args, config, where, 0, walk, walk.ssh_g)


def host_endpoints(index: int, item: Mapping[str, Any], ssh_g: SshG | None = None,
                   files_matter: bool = False) -> HostEndpoints:
    """The endpoints of `spec.hosts[index]` (its YAML mapping `item`); `files_matter`: ssh_config files
    exist that may redirect rig's own ssh client, so `ssh -G` is asked for `ssh` hosts too."""
    where = f"spec.hosts[{index}]"
    kind = next((k for k in ("ssh", "openSSH", "winRM", "localhost") if item.get(k) is not None), "localhost")
    if kind == "localhost":
        return HostEndpoints(index, kind, "localhost", (Hop(f"{where}.localhost", "localhost", "localhost", 0),))
    conn = item[kind] if isinstance(item[kind], Mapping) else {}
    walk = _Walk(ssh_g, files_matter)
    for text in _strings(conn):
        if "$" in text:
            walk.problems.append(f"{where}.{kind} holds {text[:60]!r}: k0sctl fills in '$' from environment "
                                 "variables before it connects")
            break
    if kind == "ssh":
        _rig(conn, f"{where}.ssh", 0, walk)
    elif kind == "openSSH":
        _openssh(conn, f"{where}.openSSH", walk)
    else:
        address = str(conn.get("address") or "").strip()
        walk.add(f"{where}.winRM.address", address, split_destination(address)[1],
                 _port(conn.get("port"), 5986 if conn.get("useHTTPS") else 5985))
        if isinstance(conn.get("bastion"), Mapping):
            _rig(conn["bastion"], f"{where}.winRM.bastion", 1, walk)
    return HostEndpoints(index, kind, str(conn.get("address") or ""), tuple(walk.hops), tuple(walk.problems))


def cluster_endpoints(items: list[tuple[int, Mapping[str, Any]]], ssh_g: SshG | None = None,
                      files_matter: bool = False) -> list[HostEndpoints]:
    """`host_endpoints` of every (index, YAML entry); the `ssh -G` runs go concurrently."""
    uses_ssh_g = ssh_g is not None and any("openSSH" in item or (files_matter and "ssh" in item) for _, item in items)
    if not uses_ssh_g or len(items) < 2:
        return [host_endpoints(i, item, ssh_g, files_matter) for i, item in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="ssh-G") as pool:
        return list(pool.map(lambda pair: host_endpoints(pair[0], pair[1], ssh_g, files_matter), items))
