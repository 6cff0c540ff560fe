"""put `prune`: apply `backup.retention` to the branch's tree without taking a backup.

The commit it pushes removes what the policy drops, and carries the record of the branch's newest backup
(whose archive the policy never removes) as its trailers: it becomes a version of the resource, and a get
of it, like an `install` that takes the newest version, finds the newest archive, not an empty commit.
With `dry_run: true` it only reports.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from k0sctl_resource.concourse.responses import StepResponse
from k0sctl_resource.config.cluster import ClusterConfig
from k0sctl_resource.config.models import Version
from k0sctl_resource.gitstore.commit_format import BackupFacts, cluster_stem, format_message, parse_facts, utc_now
from k0sctl_resource.gitstore.drill_record import newest_passed
from k0sctl_resource.gitstore.pruning import Pruning, message_lines, metadata
from k0sctl_resource.gitstore.push import push_prune
from k0sctl_resource.gitstore.retention import Decision
from k0sctl_resource.gitstore.runner import GitRunner
from k0sctl_resource.runtime import log
from k0sctl_resource.runtime.errors import ResourceError
from k0sctl_resource.shared.context import StepContext


@dataclass(frozen=True)
class PruneParams:
    command: Literal["prune"] = "prune"
    config: str = "config/k0sctl.yaml"  # read for the cluster's name: only its archives are pruned
    dry_run: bool = False  # report what the policy would remove, remove nothing


def run(ctx: StepContext, params: PruneParams, cluster: ClusterConfig, directory: Path) -> StepResponse:
    store = ctx.store("prune")
    policy = store.backup.policy
    if policy is None:
        raise ResourceError("prune needs a policy: set source.backup.retention (or backup.keep); without one "
                            "every archive is kept")
    if store.remote_tip() is None:
        raise ResourceError(f"{store.remote.describe()} does not exist: there is nothing to prune")
    passed = newest_passed(store)
    pruning = Pruning(policy, cluster_stem(cluster.name), utc_now(), passed.drilled_archive if passed else None)
    build = ctx.build

    def message_for(runner: GitRunner, tip: str, decision: Decision) -> str:
        message = runner.ok("cat-file", "commit", tip, what="reading the branch's tip")
        facts = parse_facts(message.split("\n\n", 1)[1] if "\n\n" in message else "")
        if not isinstance(facts, BackupFacts) or not facts.archive or facts.archive in decision.removed:
            raise ResourceError(f"the tip {tip[:12]} of {store.remote.describe()} is not a backup whose archive "
                                "stays; prune would make a version without the newest archive. Take a backup "
                                "instead: it applies the policy too")
        record = dataclasses.replace(facts, removed_archives=len(decision.removed), build=build.describe(),
                                     reason=f"pruned by {build.describe()}")
        body = [f"retention applied to cluster {cluster.name} without a backup, by {build.describe()}; the "
                f"trailers are the record of the newest backup, {facts.archive}, which stays.",
                *message_lines(decision)]
        return format_message(f"prune {cluster.name}: {len(decision.removed)} archive(s) removed", body, record)

    decision, pushed = push_prune(store, pruning, message_for, dry_run=params.dry_run)
    facts: dict[str, object] = {"dry_run": params.dry_run, "branch": store.remote.branch,
                                "kept_archives": len(decision.kept), "removed_archives": len(decision.removed),
                                **metadata(decision)}
    for name in decision.removed[:20]:
        log.info(f"prune: {'would remove' if params.dry_run else 'removed'} {name}")
    if pushed is not None:
        log.ok(f"prune: removed {len(pushed.removed)} archive(s) from the tree in {pushed.sha[:12]} (the history "
               "keeps them)")
        return StepResponse(Version(ref=pushed.sha), facts)
    log.ok(f"prune: {'dry run, ' if params.dry_run else ''}{len(decision.kept)} kept, "
           f"{len(decision.removed)} {'would be ' if params.dry_run else ''}removed"
           + ("" if params.dry_run or decision.removed else "; nothing to commit"))
    tip = store.remote_tip()
    if tip is None:
        raise ResourceError(f"{store.remote.describe()} was deleted while prune ran")
    return StepResponse(Version(ref=tip), facts)
