"""`k0sctl-resource fleet-status`: every cluster of clusters.yml, its newest backup's age and its last
drill, against `max_age` and `max_drill_age`.

Clusters are grouped by backup repository; each repository is read once (`gitstore.fleet_read`: all its
branches in one fetch), in a thread of its own, within `defaults.timeout` from the moment its thread
starts: a repository that hangs makes its own clusters `unreachable` and delays nothing else.

Credentials for the backup repositories come from the environment, never from the command line:
`K0SCTL_FLEET_BACKUP_PRIVATE_KEY` (SSH), `K0SCTL_FLEET_BACKUP_USERNAME` / `K0SCTL_FLEET_BACKUP_PASSWORD`
(HTTPS), each also as `<NAME>_FILE` naming a file that holds it; `K0SCTL_FLEET_SSH_KNOWN_HOSTS` (or the
clusters' `cluster_ssh_known_hosts` var) for the SSH host keys of the git servers.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from k0sctl_resource.config.fleet import Fleet, FleetCluster
from k0sctl_resource.config.models import BackupRepo, parse_source, require_backup
from k0sctl_resource.config.paths import read_regular
from k0sctl_resource.gitstore.auth import GitAuth
from k0sctl_resource.gitstore.fleet_read import BranchReport, read_branches
from k0sctl_resource.gitstore.runner import forget_inherited_git_env
from k0sctl_resource.runtime.errors import ResourceError
from k0sctl_resource.runtime.redact import REDACT
from k0sctl_resource.runtime.workspace import Workspace

ENV_PREFIX = "K0SCTL_FLEET_"
SEVERITY = ("ok", "undrilled", "stale", "unreachable")
GRACE_S = 5.0  # beyond a repository's own bound, before its thread is given up on
# What the resource's messages call a setting of `source`, as fleet-status's user sets it.
_FLEET_NAMES = (
    ("source.backup.private_key or source.backup.username/password",
     f"{ENV_PREFIX}BACKUP_PRIVATE_KEY or {ENV_PREFIX}BACKUP_USERNAME/PASSWORD"),
    ("source.backup.timeout", "defaults.timeout of clusters.yml"),
    ("source.ssh_known_hosts", f"the clusters' cluster_ssh_known_hosts (or {ENV_PREFIX}SSH_KNOWN_HOSTS)"),
    ("source.backup.uri", "backup_repo_uri"),
    ("source.backup.", f"{ENV_PREFIX}BACKUP_"),
)


def _in_fleet_terms(message: str) -> str:
    for theirs, ours in _FLEET_NAMES:
        message = message.replace(theirs, ours)
    return REDACT(message)


@dataclass
class ClusterStatus:
    name: str
    repository: str
    branch: str
    max_age_s: float
    max_drill_age_s: float
    status: str = "ok"
    problems: list[str] = field(default_factory=list)
    newest_backup: str | None = None
    newest_backup_at: str | None = None
    backup_age_s: float | None = None
    last_drill_result: str | None = None
    last_drill_at: str | None = None
    restore_s: float | None = None
    last_passed_drill_at: str | None = None
    drill_age_s: float | None = None

    def flag(self, status: str, problem: str) -> None:
        self.problems.append(problem)
        if SEVERITY.index(status) > SEVERITY.index(self.status):
            self.status = status


def credential(name: str) -> str | None:
    """`K0SCTL_FLEET_<name>` from the environment, or the content of the file `K0SCTL_FLEET_<name>_FILE` names."""
    value = os.environ.get(ENV_PREFIX + name)
    file_name = os.environ.get(f"{ENV_PREFIX}{name}_FILE")
    if not value and file_name:
        data = read_regular(Path(file_name), f"{ENV_PREFIX}{name}_FILE", 1024 * 1024)
        value = data.decode("utf-8", "replace")
    return value or None


@dataclass(frozen=True)
class RepositoryAccess:
    """How one repository is read: its `source.backup` and the SSH host keys of its server (or None)."""
    backup: BackupRepo
    ssh_known_hosts: str | None


def repository_access(uri: str, clusters: list[FleetCluster], timeout: float) -> RepositoryAccess:
    """What reads `uri`, with the fleet's credentials, checked as a resource's source is."""
    backup: dict[str, object] = {"uri": uri, "timeout": f"{max(1, round(timeout))}s"}
    for key, name in (("private_key", "BACKUP_PRIVATE_KEY"), ("username", "BACKUP_USERNAME"),
                      ("password", "BACKUP_PASSWORD")):
        if (value := credential(name)) is not None:
            if key != "username":
                REDACT.add(value)
            backup[key] = value
    known = credential("SSH_KNOWN_HOSTS")
    if known is None:
        lines = dict.fromkeys(ln for c in clusters for ln in (c.known_hosts or "").splitlines() if ln.strip())
        known = "\n".join(lines) + "\n" if lines else None
    raw: dict[str, object] = {"backup": backup}
    if known:
        raw["ssh_known_hosts"] = known
    source = parse_source(raw)
    return RepositoryAccess(require_backup(source, "fleet-status"), source.ssh_known_hosts)


def _by_repository(fleet: Fleet) -> dict[str, list[FleetCluster]]:
    groups: dict[str, list[FleetCluster]] = {}
    for cluster in fleet.clusters:
        if cluster.backup_uri is None:
            raise ResourceError(f"clusters.yml: cluster {cluster.name} has no backup_repo_uri var (in its vars "
                                "or the defaults' vars)")
        groups.setdefault(cluster.backup_uri, []).append(cluster)
    return groups


def _read(access: RepositoryAccess | ResourceError, workspace: Workspace, branches: list[str], timeout: float
          ) -> dict[str, BranchReport]:
    if isinstance(access, ResourceError):
        raise access
    deadline = time.monotonic() + timeout  # from the moment this repository's thread starts
    auth = GitAuth(access.backup, workspace, ssh_known_hosts=access.ssh_known_hosts)
    return read_branches(auth.url, auth.env, branches, workspace.dir("fleet"), deadline)


def human_age(seconds: float | None) -> str:
    """`45s`, `12m`, `30h`, `9d`: whole units, the largest that keeps two digits of sense."""
    if seconds is None:
        return "-"
    for unit, size, up_to in (("s", 1, 120), ("m", 60, 120 * 60), ("h", 3600, 48 * 3600)):
        if seconds < up_to:
            return f"{seconds // size:.0f}{unit}"
    return f"{seconds // 86400:.0f}d"


def _age(moment: str | None, now: datetime) -> float | None:
    """Seconds from `moment` (RFC 3339; without a zone it is UTC, as verify reads it) to `now`."""
    try:
        parsed = datetime.fromisoformat((moment or "").replace("Z", "+00:00"))
    except ValueError:
        return None
    return max(0.0, (now - (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))).total_seconds())


def judge(status: ClusterStatus, report: BranchReport, now: datetime) -> ClusterStatus:
    """Fill `status` from what its branch says, and flag what is wrong."""
    status.newest_backup, status.newest_backup_at = report.newest_backup, report.newest_backup_at
    status.backup_age_s = _age(report.newest_backup_at, now)
    if not report.exists:
        status.flag("stale", f"branch {report.branch} does not exist: no backup yet")
    elif report.newest_backup is None:
        status.flag("stale", "no backup on the branch yet")
    elif status.backup_age_s is None:
        status.flag("stale", f"the newest backup {report.newest_backup[:12]} records no readable Created-At")
    elif status.backup_age_s > status.max_age_s:
        status.flag("stale", f"newest backup older than max_age ({human_age(status.max_age_s)})")
    if (last := report.last_drill) is not None:
        status.last_drill_result, status.last_drill_at, status.restore_s = last.result, last.drilled_at, last.restore_s
        if not last.passed:
            status.problems.append(f"last drill failed: {last.reason or 'no reason recorded'}")
    passed = report.last_passed_drill
    status.last_passed_drill_at = passed.drilled_at if passed else None
    status.drill_age_s = _age(status.last_passed_drill_at, now)
    if passed is None:
        status.flag("undrilled", "no drill ever passed" if last is None or not last.passed else "no readable drill")
    elif status.drill_age_s is None or status.drill_age_s > status.max_drill_age_s:
        status.flag("undrilled", f"no passed drill within max_drill_age ({human_age(status.max_drill_age_s)})")
    return status


@contextlib.contextmanager
def _workspaces(count: int) -> Iterator[list[Workspace]]:
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(Workspace("k0sctl-fleet-")) for _ in range(count)]


def fleet_status(fleet: Fleet, now: datetime | None = None) -> list[ClusterStatus]:
    """The status of every cluster of `fleet`, in the order of clusters.yml."""
    forget_inherited_git_env()
    groups = _by_repository(fleet)
    timeout = float(fleet.defaults.timeout)
    sources: dict[str, RepositoryAccess | ResourceError] = {}
    for uri, members in groups.items():
        try:
            sources[uri] = repository_access(uri, members, timeout)
        except ResourceError as refused:  # its clusters are unreachable; the others are still read
            sources[uri] = refused
    found: dict[str, ClusterStatus] = {}
    with _workspaces(len(groups)) as spaces, \
            concurrent.futures.ThreadPoolExecutor(max_workers=min(64, len(groups))) as pool:
        futures = {pool.submit(_read, sources[uri], space, [c.backup_branch for c in members], timeout): uri
                   for (uri, members), space in zip(groups.items(), spaces, strict=True)}
        concurrent.futures.wait(futures, timeout=timeout * -(-len(groups) // 64) + GRACE_S)
        moment = now or datetime.now(UTC)
        for future, uri in futures.items():
            for cluster in groups[uri]:
                status = ClusterStatus(name=cluster.name, repository=uri, branch=cluster.backup_branch,
                                       max_age_s=cluster.max_age, max_drill_age_s=cluster.max_drill_age)
                found[cluster.name] = status
                if not future.done():
                    status.flag("unreachable", f"{uri}: no answer within {timeout:g}s")
                elif (exc := future.exception()) is not None:
                    if not isinstance(exc, ResourceError):
                        raise exc
                    status.flag("unreachable", _in_fleet_terms(exc.message if uri in exc.message
                                                               else f"{uri}: {exc.message}"))
                else:
                    judge(status, future.result()[cluster.backup_branch], moment)
    return [found[c.name] for c in fleet.clusters]
