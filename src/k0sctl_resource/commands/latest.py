"""The version printed by puts that make no commit (apply, reset, ping): the branch's newest one."""

from __future__ import annotations

from k0sctl_resource import log
from k0sctl_resource.context import StepContext
from k0sctl_resource.errors import ResourceError
from k0sctl_resource.models import NONE_VERSION, Version


def newest_or_none(ctx: StepContext) -> Version:
    """The backup branch's newest commit, or `none`.

    The cluster action has already happened when this runs, so an unreachable backup repository must not
    turn it into a failed put: it is reported and the placeholder version printed instead.
    """
    from k0sctl_resource.backup_store import newest_version

    try:
        return newest_version(ctx)
    except ResourceError as exc:
        log.warn(f"could not read the backup branch's newest version ({exc.message}); printing none")
        return NONE_VERSION
