"""What a backup records about the hosts it came from, and the identity check a drill runs with it.

At backup time (`endpoint_facts`, `key_facts`): where k0sctl connects for every host (`endpoints`,
canonical; `config.endpoints`), what the names among them resolve to (`addresses`), and, after k0sctl
ran, the SSH host keys of the hosts it connected to (`host_keys`, from the step's private known_hosts
file; `k0sctl.host_keys`).

At drill time (`check_identity`), after the endpoint comparison passed and before any reset: the keys
the scratch hosts show (`ssh-keyscan`: a key exchange, no login) are compared with the recorded ones.
A scratch host that shows a production host's key is that host, whatever its address says.
"""

from __future__ import annotations

import time
from typing import Any

from k0sctl_resource.config.cluster import ClusterConfig
from k0sctl_resource.config.endpoints import HostEndpoints, cluster_endpoints
from k0sctl_resource.config.spelling import is_name, resolve_names
from k0sctl_resource.k0sctl import host_keys, ssh_config
from k0sctl_resource.runtime import log
from k0sctl_resource.runtime.errors import ResourceError
from k0sctl_resource.shared.context import StepContext
from k0sctl_resource.shared.drill_guard import REFUSED, require_well_formed
from k0sctl_resource.shared.get_folder import FolderRecord


def endpoints_of(cluster: ClusterConfig) -> list[HostEndpoints]:
    """Where k0sctl connects for each host of `cluster` (with `ssh -G` where ssh_config decides)."""
    return cluster_endpoints([(h.index, h.raw) for h in cluster.hosts], ssh_config.ssh_g, ssh_config.files_matter())


def endpoint_facts(found: list[HostEndpoints]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The recorded `endpoints` (canonical, every hop) and `addresses` (what their names resolve to)."""
    endpoints = tuple(dict.fromkeys(hop.canonical for host in found for hop in host.hops if hop.canonical))
    resolved = resolve_names(n for n in endpoints if is_name(n))
    addresses = tuple(sorted(set().union(*resolved.values()))) if resolved else ()
    return endpoints, addresses


def key_facts(ctx: StepContext, found: list[HostEndpoints], addresses: tuple[str, ...] = ()) -> tuple[str, ...]:
    """After a k0sctl run: the fingerprints of the host keys of the hosts it connected to."""
    known = ctx.k0sctl().known_hosts
    if known is None:
        return ()
    if ctx.source.ssh_known_hosts:  # the file holds the given lines: only those naming our hosts (or the
        # addresses their names resolve to, which the host key check also looks up) count
        names = [(hop.host, hop.port) for host in found for hop in host.hops]
        ports = {hop.port for host in found for hop in host.hops}
        names += [(address, port) for address in addresses for port in ports]
        return tuple(host_keys.recorded_keys(known, names))
    return tuple(host_keys.recorded_keys(known, None))  # trust on first use: exactly what k0sctl met


def check_identity(found: list[HostEndpoints], record: FolderRecord) -> dict[str, Any]:
    """Refuse when a scratch host shows a host key the backup's record holds; the facts of the check (its cost)."""
    recorded, cluster = record.backup.host_keys, record.backup.cluster
    ref = record.short_ref
    require_well_formed(record, "host_keys")
    if not recorded:
        log.info(f"drill: backup {ref} records no SSH host keys (taken before they were recorded, or through "
                 "no SSH connection): its hosts are compared by where k0sctl connects alone")
        return {"identity_checked": False}
    started = time.monotonic()
    targets = [(hop.host, hop.port) for host in found for hop in host.hops if not hop.where.endswith("winRM.address")]
    try:
        shown = host_keys.scan(targets)
    except ValueError as exc:
        raise ResourceError(f"{REFUSED}: the scratch hosts' SSH host keys cannot be read ({exc}); backup {ref} "
                            "records its hosts' keys to compare them with") from None
    production = set(recorded)
    for host in found:
        for hop in host.hops:
            same = sorted(shown.get((hop.host, hop.port), set()) & production)
            if same:
                raise ResourceError(f"{REFUSED}: {hop.where} {hop.written} (reached at {hop.host}:{hop.port}) shows "
                                    f"the SSH host key {same[0]} of a host of cluster {cluster!r} "
                                    f"(backup {ref}): it is that host, whatever its address says")
    seconds = round(time.monotonic() - started, 2)
    log.info(f"drill: SSH host keys of {len(shown)} of {len(set(targets))} scratch endpoints read in {seconds} s; "
             f"none is one of the {len(production)} recorded for cluster {cluster!r}")
    return {"identity_checked": True, "identity_check_s": seconds, "identity_endpoints_answered": len(shown)}
