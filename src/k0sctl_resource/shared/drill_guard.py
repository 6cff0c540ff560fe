"""What keeps a restore drill off the cluster it restores: the checks that run before k0sctl does.

A drill resets its scratch hosts before and after the restore, so it must never reach a host of the
cluster the backup came from. Every backup commit records that cluster's host addresses (trailer
`Hosts`, `hosts` in a get's metadata.json); the drill refuses, in one line and before any SSH
connection, when:

- `confirm` is missing or is not the scratch cluster's metadata.name;
- restore_from is not a get of a backup (an archive file or an init commit has no record);
- the scratch cluster has the backup's cluster name;
- the backup records no hosts (written by a release before the record): nothing could prove the
  scratch hosts are not that cluster's; a new backup records them;
- any scratch host's address, or the address of the bastion it is reached through, is one of the
  recorded addresses (compared as `cluster.normal_address` spells them: names are not resolved);
- an address on either side holds a `$`: k0sctl substitutes environment variables (`source.k0sctl.env`
  among them) in k0sctl.yaml before it connects, so an address as written proves nothing;
- a scratch host uses k0sctl's `localhost` connection: it would reset the worker the drill runs on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from k0sctl_resource.config.cluster import ClusterConfig, Host, normal_address
from k0sctl_resource.config.paths import inside, refuse_symlinks
from k0sctl_resource.runtime.errors import ResourceError
from k0sctl_resource.shared.confirm import require_confirm
from k0sctl_resource.shared.get_folder import METADATA_FILE
from k0sctl_resource.shared.restore_source import read_record

REFUSED = "drill refused"


def check_confirm(confirm: str | None, scratch: ClusterConfig) -> None:
    require_confirm(confirm, scratch.name, "drill", whose="the scratch cluster's",
                    why=" that its hosts may be reset")


def backup_record(restore_from: str, directory: Path) -> tuple[Path, dict[str, Any]]:
    """The get's directory named by restore_from and its metadata.json, which must describe a backup."""
    target = inside(directory, restore_from, "restore_from")
    refuse_symlinks(directory.resolve(), restore_from, "restore_from")
    if not target.is_dir():
        what = "does not exist" if not target.exists() else "is not a directory"
        raise ResourceError(f"restore_from: {restore_from!r} {what}; a drill needs a get of this "
                            "resource (its metadata.json records where the backup came from)")
    record = read_record(target / METADATA_FILE)
    if not record:
        raise ResourceError(f"restore_from: {restore_from!r} has no readable {METADATA_FILE}; a drill "
                            "needs a get of this resource")
    if record.get("kind") != "backup":
        raise ResourceError(f"restore_from: version {str(record.get('ref', '?'))[:12]} is not a backup "
                            f"(kind: {record.get('kind')}); there is nothing to drill")
    return target, record


def recorded_hosts(record: dict[str, Any]) -> list[str]:
    """The backup's host addresses, normalised; refused unless they are a list of plain addresses."""
    hosts = record.get("hosts")
    if hosts is None:
        return []
    ref = str(record.get("ref", "?"))[:12]
    if not isinstance(hosts, list) or not all(isinstance(h, str) for h in hosts):
        raise ResourceError(f"{REFUSED}: metadata.json of backup {ref} records its hosts in a form a drill cannot "
                            "check (expected a list of addresses)")
    for address in hosts:
        if "$" in address:
            raise ResourceError(f"{REFUSED}: backup {ref} records the host address {address!r}, which k0sctl fills "
                                "in from environment variables; nothing proves the scratch hosts are not that "
                                "cluster's")
    return [normal_address(h) for h in hosts if h.strip()]


def check_not_production(scratch: ClusterConfig, record: dict[str, Any]) -> None:
    ref = str(record.get("ref", "?"))[:12]
    source = str(record.get("cluster") or "?")
    if scratch.name == source:
        raise ResourceError(f"{REFUSED}: the scratch cluster's metadata.name {scratch.name!r} is the name of the "
                            f"cluster backup {ref} came from; give the scratch cluster a name of its own")
    production = set(recorded_hosts(record))
    if not production:
        raise ResourceError(f"{REFUSED}: backup {ref} records no host addresses (it was taken before backups "
                            f"recorded them), so nothing proves the scratch hosts are not {source}'s; take a new "
                            "backup (put command: backup) and drill that one")
    for host in scratch.hosts:
        for where, address in _addresses(host):
            if host.endpoint is None:
                raise ResourceError(f"{REFUSED}: {where} is k0sctl's localhost connection: the drill would reset "
                                    "the machine it runs on")
            if "$" in address:
                raise ResourceError(f"{REFUSED}: {where} {address!r} is filled in by k0sctl from environment "
                                    "variables; give the scratch hosts' addresses as they are")
            if normal_address(address) in production:
                raise ResourceError(f"{REFUSED}: {where} {address} is a host of cluster {source!r} (backup {ref}); "
                                    "a drill resets its hosts and never runs on the cluster it restores")


def _addresses(host: Host) -> list[tuple[str, str]]:
    where = f"spec.hosts[{host.index}]"
    if host.endpoint is None:
        return [(f"{where}.localhost", "localhost")]
    found = [(f"{where}.{host.endpoint.protocol}.address", host.endpoint.address)]
    if host.bastion is not None:
        found.append((f"{where}.{host.connection}.bastion.address", host.bastion.address))
    return found
