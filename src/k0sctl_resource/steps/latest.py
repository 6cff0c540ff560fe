"""The version printed by puts that make no commit (apply, reset, ping): the branch's newest one."""

from __future__ import annotations

from k0sctl_resource.config.models import NONE_VERSION, Version
from k0sctl_resource.runtime import log
from k0sctl_resource.runtime.errors import ResourceError
from k0sctl_resource.steps.context import StepContext


def newest_or_none(ctx: StepContext) -> Version:
    """The backup branch's newest commit, or `none`.

    The cluster action has already happened when this runs, so an unreachable backup repository must not
    turn it into a failed put: it is reported and the placeholder version printed instead.
    """
    try:
        return newest_version(ctx)
    except ResourceError as exc:
        log.warn(f"could not read the backup branch's newest version ({exc.message}); printing none")
        return NONE_VERSION


def newest_version(ctx: StepContext) -> Version:
    """The branch's newest commit, NONE_VERSION when there is no backup repository or no branch."""
    if ctx.source.backup is None:
        return NONE_VERSION
    from k0sctl_resource.gitstore.store import BackupStore

    tip = BackupStore.for_context(ctx).remote_tip()
    return Version(ref=tip) if tip is not None else NONE_VERSION
