"""The version of a put that makes no commit of its own (apply, reset, ping) (README, "Versions").

Concourse saves every version a put prints, and one it has not seen before becomes the newest version
that the next job's `get` takes; a later check that lists only known versions does not move it back.
So with a backup repository the version is always a commit of the branch, read from the remote:

- a branch that does not exist yet is created with the same empty commit `init` makes;
- a branch that cannot be read fails the put: never a placeholder, never a guess;
- `apply` and `reset` read it (`branch_version`) before k0sctl runs, so such a failure stops them
  before anything changes, and read it again afterwards (`after_action`) to print the newest commit.

Only a source without a backup repository prints the placeholder `{"ref": "none"}`.
"""

from __future__ import annotations

from k0sctl_resource.config.models import NONE_VERSION, Version
from k0sctl_resource.runtime import log
from k0sctl_resource.runtime.errors import ResourceError
from k0sctl_resource.shared.context import StepContext


def branch_version(ctx: StepContext) -> Version:
    """The backup branch's newest commit, created like `init` when the branch is missing.

    Raises ResourceError when the branch cannot be read or created; `none` only without source.backup.
    """
    from k0sctl_resource.shared.init_commit import init_messages

    if (backup := ctx.source.backup) is None:
        return NONE_VERSION
    store = ctx.store_of(backup)
    try:
        tip = store.remote_tip()
        if tip is not None:
            return Version(ref=tip)
        message_for, tag_message = init_messages(store, ctx.build)
        outcome = store.init_branch(force=False, message_for=message_for, tag_message=tag_message,
                                    only_if_missing=True)
    except ResourceError as exc:
        raise ResourceError(f"{exc.message}; this put's version must be a commit of the backup branch, "
                            "so it stops here (nothing was changed)") from None
    if outcome.created:
        log.info(f"{store.remote.describe()} did not exist: created it with the empty commit init makes "
                 f"({outcome.sha[:12]}), the resource's first version")
    else:
        log.info(f"{store.remote.describe()} was created by another put meanwhile; its newest commit "
                 f"{outcome.sha[:12]} is this put's version")
    return Version(ref=outcome.sha)


def after_action(ctx: StepContext, before: Version) -> Version:
    """The branch's newest commit after the cluster action, so that a backup another put pushed
    meanwhile is not printed behind an older commit. The action has happened: when the branch cannot
    be read now, the commit read before (a real commit of the branch) is printed, with a warning; a
    branch deleted meanwhile is created again like a missing one (a version of a branch that no longer
    exists is one that check would never list)."""
    if (backup := ctx.source.backup) is None:
        return NONE_VERSION
    store = ctx.store_of(backup)
    try:
        tip = store.remote_tip()
    except ResourceError as exc:
        log.warn(f"could not read {store.remote.describe()} again after the cluster action ({exc.message}); "
                 f"printing {before.ref[:12]}, its newest commit before the action")
        return before
    if tip is None:  # deleted while this put ran: `before` is no commit of the branch any more
        log.warn(f"{store.remote.describe()} was deleted while this put ran; creating it again, as for a "
                 "branch that does not exist")
        return branch_version(ctx)
    return Version(ref=tip)
