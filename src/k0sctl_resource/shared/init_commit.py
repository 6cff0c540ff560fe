"""The commit that starts a backup branch: `init` makes it, and so does the first put that needs a
version of a branch that does not exist yet."""

from __future__ import annotations

from collections.abc import Callable

from k0sctl_resource.concourse.buildenv import BuildEnv
from k0sctl_resource.gitstore.commit_format import InitFacts, format_message, rfc3339, utc_now
from k0sctl_resource.gitstore.store import BackupStore

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
