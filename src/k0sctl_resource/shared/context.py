"""What every step shares: the parsed source, a private workspace, the build variables, and (on first
use) a k0sctl runner with the SSH environment set up."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from k0sctl_resource.concourse.buildenv import BuildEnv
from k0sctl_resource.config.models import BackupRepo, Source, require_backup
from k0sctl_resource.runtime.workspace import Workspace

if TYPE_CHECKING:  # imported where used: a check or get never runs k0sctl, a ping may need no store
    from k0sctl_resource.gitstore.store import BackupStore
    from k0sctl_resource.k0sctl.runner import K0sctl


class StepContext:
    def __init__(self, source: Source, build: BuildEnv | None = None) -> None:
        self.source = source
        self.build = build or BuildEnv.from_environ()
        self.workspace = Workspace()
        self.started = time.monotonic()
        self._stack = contextlib.ExitStack()
        self._k0sctl: K0sctl | None = None
        self._store: BackupStore | None = None

    def __enter__(self) -> StepContext:
        self._stack.enter_context(self.workspace)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stack.close()

    @property
    def private(self) -> Path:
        return self.workspace.path

    def k0sctl(self) -> K0sctl:
        from k0sctl_resource.k0sctl.runner import K0sctl
        from k0sctl_resource.k0sctl.ssh import SshEnvironment

        if self._k0sctl is None:
            ssh = self._stack.enter_context(SshEnvironment(self.source, self.workspace))
            self._k0sctl = K0sctl(self.source.k0sctl, self.workspace.dir("k0sctl"), env=ssh.env)
        return self._k0sctl

    def store(self, for_what: str) -> BackupStore:
        """The backup repository, built once per step (building one parses the URI and writes the
        credential files); `for_what` names what needs it in the error when there is no source.backup."""
        if self._store is None:
            return self.store_of(require_backup(self.source, for_what))
        return self._store

    def store_of(self, backup: BackupRepo) -> BackupStore:
        """The store of `backup`, this step's `source.backup` that the caller has already required (so that
        its own checks could come between); built once per step, as `store`."""
        from k0sctl_resource.gitstore.store import BackupStore

        if self._store is None:
            self._store = BackupStore(backup, self.workspace, ssh_known_hosts=self.source.ssh_known_hosts)
        return self._store

    def k0sctl_version(self) -> str:
        """The version of the k0sctl on PATH, without setting up SSH when no k0sctl run is needed."""
        from k0sctl_resource.k0sctl.runner import K0sctl

        runner = self._k0sctl or K0sctl(self.source.k0sctl, self.workspace.dir("k0sctl"))
        return str(runner.version())

    def elapsed(self) -> float:
        return round(time.monotonic() - self.started, 1)
