"""put `init`: create the backup branch (README, "`command: init`"). Nothing is ever lost: with `force`,
the old tip is first kept under the tag `k0sctl-backup-archive/<UTC timestamp>`."""

from __future__ import annotations

from collections.abc import Callable

from k0sctl_resource.concourse.buildenv import BuildEnv
from k0sctl_resource.concourse.params import InitParams
from k0sctl_resource.concourse.responses import StepResponse
from k0sctl_resource.config.models import Version, require_backup
from k0sctl_resource.gitstore.commit_format import InitFacts, format_message, rfc3339, utc_now
from k0sctl_resource.gitstore.store import BackupStore
from k0sctl_resource.runtime import log
from k0sctl_resource.steps.context import StepContext

InitMessage = Callable[[str | None, str | None], str]


def init_messages(store: BackupStore, build: BuildEnv) -> tuple[InitMessage, str]:
    """The commit message builder (archived_as, previous_tip) and the archive tag's message of `init`.

    The first put that needs a version of a branch that does not exist yet (apply, reset, ping) makes its
    first commit with the same builder, so that every branch starts with the same kind of commit."""
    created = utc_now()

    def message_for(archived_as: str | None, previous: str | None) -> str:
        body = [f"Backup branch {store.remote.branch} created by k0sctl-resource, by {build.describe()}."]
        if archived_as:
            body.append(f"It replaces the previous history, kept under tag {archived_as}.")
        return format_message(f"init {store.remote.branch}", body, InitFacts(
            created_at=rfc3339(created), build_url=build.build_url, build=build.describe(),
            archived_as=archived_as, previous_tip=previous,
        ))

    tag_message = (f"Tip of {store.remote.branch} before init with force: true, by {build.describe()}"
                   + (f" ({build.build_url})" if build.build_url else "") + ".\n")
    return message_for, tag_message


def run(ctx: StepContext, params: InitParams) -> StepResponse:
    require_backup(ctx.source, "init")
    store = BackupStore(ctx.source, ctx.workspace)
    message_for, tag_message = init_messages(store, ctx.build)
    outcome = store.init_branch(force=params.force, message_for=message_for, tag_message=tag_message)
    if outcome.created and outcome.archived_as:
        log.ok(f"{store.remote.describe()} replaced by {outcome.sha[:12]}; its old history is kept under tag "
               f"{outcome.archived_as}")
    elif outcome.created:
        log.ok(f"created {store.remote.describe()} at {outcome.sha[:12]}")
    else:
        log.info(f"{store.remote.describe()} exists and holds no archive: nothing changed (newest {outcome.sha[:12]})")
    return StepResponse(Version(ref=outcome.sha), {
        "kind": "init", "branch": store.remote.branch, "created": outcome.created,
        "archived_as": outcome.archived_as, "previous_tip": outcome.previous_tip,
    })
