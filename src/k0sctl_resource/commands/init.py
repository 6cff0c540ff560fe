"""put `init`: create the backup branch (README, "`command: init`"). Nothing is ever lost: with `force`,
the old tip is first kept under the tag `k0sctl-backup-archive/<UTC timestamp>`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from k0sctl_resource.concourse.responses import StepResponse
from k0sctl_resource.config.models import Version
from k0sctl_resource.runtime import log
from k0sctl_resource.shared.context import StepContext
from k0sctl_resource.shared.init_commit import init_messages


@dataclass(frozen=True)
class InitParams:
    command: Literal["init"] = "init"
    config: str = "config/k0sctl.yaml"
    force: bool = False


def run(ctx: StepContext, params: InitParams, cluster: None, directory: Path) -> StepResponse:
    store = ctx.store("init")
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
