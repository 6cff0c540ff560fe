"""What keeps a restore drill off the cluster it restores: the checks that run before k0sctl does.

A drill resets its scratch hosts before and after the restore, so it must never reach a host of the
cluster the backup came from. Every backup commit records that cluster's hosts: their addresses as
written (`hosts`), where k0sctl really connected (`endpoints`: HostName, ports, bastions and ProxyJump
hosts, read by `config.endpoints`), what the names among them resolved to (`addresses`) and the SSH
host keys the hosts showed (`host_keys`, checked by `host_facts.check_identity` after these). The
drill refuses, in one line and before any SSH connection, when:

- `confirm` is missing or is not the scratch cluster's metadata.name;
- restore_from is not a get of a backup (an archive file or an init commit has no record; refused
  where restore_from is found, `restore_source.locate_backup`);
- the scratch cluster has the backup's cluster name;
- the backup records no hosts (written by a release before the record): nothing could prove the
  scratch hosts are not that cluster's; a new backup records them;
- anything a scratch host is reached through (its address, `options.HostName`, a bastion, a ProxyJump
  host, what `ssh -G` says for `openSSH`) is one of the recorded hosts: both sides in one spelling
  (`config.spelling`: every IP spelling, destination forms, loopback as `localhost`), names also by
  the addresses they resolve to now (a name that does not resolve is compared by its spelling);
- where a scratch host is reached cannot be known: a `$` anywhere in the scratch config (k0sctl
  substitutes environment variables, `source.k0sctl.env` among them, in the file's text before it
  parses it: a variable could add hosts or options), a `ProxyCommand`, an unreadable ssh_config;
- a scratch host uses k0sctl's `localhost` connection: it would reset the worker the drill runs on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from k0sctl_resource.config.cluster import ClusterConfig
from k0sctl_resource.config.endpoints import HostEndpoints, SshG, cluster_endpoints
from k0sctl_resource.config.spelling import canonical_host, is_name, resolve_names
from k0sctl_resource.runtime.errors import ResourceError
from k0sctl_resource.shared.confirm import require_confirm
from k0sctl_resource.shared.get_folder import METADATA_FILE, FolderRecord

REFUSED = "drill refused"
Resolver = Callable[[Iterable[str]], dict[str, frozenset[str]]]


def check_confirm(confirm: str | None, scratch: ClusterConfig) -> None:
    require_confirm(confirm, scratch.name, "drill", whose="the scratch cluster's",
                    why=" that its hosts may be reset")


def require_well_formed(record: FolderRecord, key: str) -> None:
    """Refuse a record that holds `key` in a form its type does not allow (a list of strings, for the
    host lists and `host_keys`): what a drill cannot check, it does not skip."""
    if key in record.malformed:
        raise ResourceError(f"{REFUSED}: {METADATA_FILE} of backup {record.short_ref} records its {key} in a form a "
                            "drill cannot check (expected a list of strings)")


def _listed(record: FolderRecord, key: str, value: tuple[str, ...] | None) -> list[str]:
    """The host addresses `value` the record keeps under `key` ([] when absent), refused when the record
    holds them in another shape or names one through an environment variable."""
    require_well_formed(record, key)
    for text in value or ():
        if "$" in text:
            raise ResourceError(f"{REFUSED}: backup {record.short_ref} records the host address {text!r}, which "
                                "k0sctl fills in from environment variables; nothing proves the scratch hosts are "
                                "not that cluster's")
    return [h for h in value or () if h.strip()]


def recorded_hosts(record: FolderRecord) -> list[str]:
    """Every host the backup records (as written, where k0sctl connected, resolved then), canonical."""
    facts = record.backup
    lists = {"hosts": facts.hosts, "endpoints": facts.endpoints, "addresses": facts.addresses}
    found = [canonical_host(h) for key, value in lists.items() for h in _listed(record, key, value)]
    return list(dict.fromkeys(found))


def check_not_production(scratch: ClusterConfig, record: FolderRecord, *, ssh_g: SshG | None = None,
                         files_matter: bool = False, resolve: Resolver = resolve_names) -> list[HostEndpoints]:
    """Refuse (see the module doc) or return where k0sctl will connect for every scratch host."""
    ref = record.short_ref
    source = record.backup.cluster or "?"
    if scratch.name == source:
        raise ResourceError(f"{REFUSED}: the scratch cluster's metadata.name {scratch.name!r} is the name of the "
                            f"cluster backup {ref} came from; give the scratch cluster a name of its own")
    production = recorded_hosts(record)
    if not _listed(record, "hosts", record.backup.hosts):
        raise ResourceError(f"{REFUSED}: backup {ref} records no host addresses (it was taken before backups "
                            f"recorded them), so nothing proves the scratch hosts are not {source}'s; take a new "
                            "backup (put command: backup) and drill that one")
    if b"$" in scratch.data:  # k0sctl substitutes variables in the file's text, before it parses the YAML
        line = scratch.data[: scratch.data.index(b"$")].count(b"\n") + 1
        raise ResourceError(f"{REFUSED}: the scratch config holds a '$' (line {line}): k0sctl fills in environment "
                            "variables anywhere in the file before it reads it, so what was checked is not what "
                            "k0sctl would connect to; write the values out")
    found = cluster_endpoints([(h.index, h.raw or _raw(h)) for h in scratch.hosts], ssh_g, files_matter)
    for host in found:
        if host.connection == "localhost":
            raise ResourceError(f"{REFUSED}: spec.hosts[{host.index}].localhost is k0sctl's localhost connection: "
                                "the drill would reset the machine it runs on")
    scratch_names = {hop.canonical for host in found for hop in host.hops}
    resolved = resolve([n for n in [*production, *scratch_names] if is_name(n)])
    known = set(production).union(*(resolved.get(n, frozenset()) for n in production))
    for host in found:
        for hop in host.hops:
            reached = {hop.canonical, *resolved.get(hop.canonical, frozenset())}
            if reached & known:
                shown = sorted(reached - {hop.written.strip()})
                also = f" (reached as {', '.join(shown)})" if shown else ""
                raise ResourceError(f"{REFUSED}: {hop.where} {hop.written}{also} is a host of cluster {source!r} "
                                    f"(backup {ref}); a drill resets its hosts and never runs on the cluster it "
                                    "restores")
    for host in found:  # after the matches: a host known to be production is named as such
        if host.problems:
            raise ResourceError(f"{REFUSED}: {host.problems[0]}; nothing proves the drill would not reach a host "
                                f"of cluster {source!r}")
    return found


def _raw(host: Any) -> dict[str, Any]:
    """A YAML entry rebuilt from a parsed host (configs built in code, without their YAML)."""
    if host.endpoint is None:
        return {"localhost": {"enabled": True}}
    conn: dict[str, Any] = {"address": host.endpoint.address, "port": host.endpoint.port}
    if host.bastion is not None:
        conn["bastion"] = {"address": host.bastion.address, "port": host.bastion.port}
    return {host.connection: conn}
