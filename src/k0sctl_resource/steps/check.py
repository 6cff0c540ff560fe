"""`check`: the first-parent commits of the backup branch (see SPEC.md, check)."""

from __future__ import annotations

from typing import Any

from k0sctl_resource.config.models import parse_check
from k0sctl_resource.runtime import log
from k0sctl_resource.runtime.redact import REDACT


def handle(raw: Any) -> list[dict[str, str]]:
    request = parse_check(raw)
    REDACT.add(*request.source.secrets())
    if request.source.backup is None:
        log.info("no source.backup configured: this resource has no versions")
        return []
    # git and the store are imported only when there is a repository to ask (check runs every minute)
    from k0sctl_resource.gitstore.store import BackupStore
    from k0sctl_resource.steps.context import StepContext

    with StepContext(request.source) as ctx:
        refs = BackupStore.for_context(ctx).versions_since(request.version)
    return [{"ref": ref} for ref in refs]
