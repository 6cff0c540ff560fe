"""The backup store and its git authentication built from a parsed source, as a step builds them: from
the typed `source.backup` and the source's `ssh_known_hosts`."""

from __future__ import annotations

from k0sctl_resource.config.models import Source, require_backup
from k0sctl_resource.gitstore.auth import GitAuth
from k0sctl_resource.gitstore.store import BackupStore
from k0sctl_resource.runtime.workspace import Workspace


def store_of(source: Source, ws: Workspace) -> BackupStore:
    return BackupStore(require_backup(source, "the test's store"), ws, ssh_known_hosts=source.ssh_known_hosts)


def auth_of(source: Source, ws: Workspace) -> GitAuth:
    return GitAuth(require_backup(source, "the test's git"), ws, ssh_known_hosts=source.ssh_known_hosts)
