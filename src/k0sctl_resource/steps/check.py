"""`check`: the first-parent commits of the backup branch (README, "`check`: list the backups")."""

from __future__ import annotations

from k0sctl_resource.concourse.requests import CheckRequest
from k0sctl_resource.concourse.responses import CheckResponse
from k0sctl_resource.config.models import Version
from k0sctl_resource.runtime import log


def run(request: CheckRequest) -> CheckResponse:
    if request.source.backup is None:
        log.info("no source.backup configured: this resource has no versions")
        return CheckResponse([])
    # git and the store are imported only when there is a repository to ask (check runs every minute)
    from k0sctl_resource.gitstore.store import BackupStore
    from k0sctl_resource.steps.context import StepContext

    with StepContext(request.source) as ctx:
        refs = BackupStore(ctx.source, ctx.workspace).versions_since(request.version)
    return CheckResponse([Version(ref=ref) for ref in refs])
