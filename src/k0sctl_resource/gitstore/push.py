"""Storing an archive on the backup branch: a commit on top of the tip that adds it (and applies the
retention policy), pushed, and read back from the remote before the step reports it stored; redone on top of
a new tip when the branch moved. `prune` pushes a commit that only applies the policy, the same way.

Two puts racing lose nothing: a put redone on a new tip protects the archives that appeared on the branch
since it first read it (another put's just written archive, which that put's policy keeps)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from k0sctl_resource.gitstore.commit_format import unique_name
from k0sctl_resource.gitstore.names_used import folder_names, names_taken
from k0sctl_resource.gitstore.pruning import Pruning
from k0sctl_resource.gitstore.retention import Decision
from k0sctl_resource.gitstore.runner import GitFailure, GitRunner, classify
from k0sctl_resource.gitstore.store import BackupStore
from k0sctl_resource.runtime import log
from k0sctl_resource.runtime.errors import ResourceError

PUSH_ATTEMPTS = 10
CONFIRM_DEPTH = 100  # commits read back below the remote tip to find the one just pushed
CONFIRM_REF = "refs/k0sctl/confirm"


@dataclass(frozen=True)
class PushedArchive:
    sha: str
    archive: str  # "" for a prune
    path: str  # "" for a prune
    removed: tuple[str, ...]
    created_branch: bool
    attempts: int
    decision: Decision = field(default_factory=Decision)


@dataclass
class _Seen:
    """The archives in the tree the first time this put read the branch (None: not read yet)."""

    first: set[str] | None = None

    def since_first(self, present: list[str]) -> set[str]:
        if self.first is None:
            self.first = set(present)
        return set(present) - self.first


def _tree(store: BackupStore, runner: GitRunner, tip: str | None, env: dict[str, str]) -> list[str]:
    """Read `tip`'s tree into the index of `env` (an empty one without a tip); the names in the folder."""
    if tip is None:
        runner.ok("read-tree", "--empty", what="preparing the tree", env=env)
        return []
    runner.ok("read-tree", tip, what="reading the branch's tree", env=env)
    return folder_names(store, runner, tip)


def _remove(store: BackupStore, runner: GitRunner, removed: tuple[str, ...], env: dict[str, str]) -> None:
    if removed:
        runner.ok("update-index", "--force-remove", "--", *(f"{store.backup.folder}/{r}" for r in removed),
                  what="applying retention", env=env)


def _archive_commit(store: BackupStore, runner: GitRunner, blob: str, tip: str | None, wanted_name: str,
                    message_for: Any, attempt: int, pruning: Pruning, seen: _Seen) -> PushedArchive:
    """A commit on top of `tip` that adds `blob` under a name the branch never had and applies the policy
    (never to the archive it adds, whatever the stamps of the others say)."""
    env = store.index_env(runner, str(attempt))
    present = _tree(store, runner, tip, env)
    name = unique_name(wanted_name, names_taken(store, runner, tip, present, wanted_name))
    path = f"{store.backup.folder}/{name}"
    runner.ok("update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", what="adding the archive", env=env)
    decision = pruning.decide([*present, name], just_written=name, protect=seen.since_first(present))
    _remove(store, runner, decision.removed, env)
    tree = runner.ok("write-tree", "--missing-ok", what="writing the tree", env=env).strip()
    commit = store.commit_tree(runner, tree, tip, message_for(name, path, decision))
    return PushedArchive(sha=commit, archive=name, path=path, removed=decision.removed, created_branch=tip is None,
                         attempts=attempt, decision=decision)


def confirm_pushed(store: BackupStore, runner: GitRunner, pushed: PushedArchive, blob: str | None) -> str | None:
    """Read the branch back from the remote: None when its tip is `pushed.sha` or has it on its
    first-parent chain and that commit holds the archive's blob (`blob`, when one was added); otherwise
    what is wrong."""
    tip = store.remote_tip()
    if tip is None:
        return "the branch no longer exists"
    if tip != pushed.sha:
        result = runner.fetch(store.remote.url, f"+{store.remote.head_ref}:{CONFIRM_REF}",
                              options=("--filter=tree:0", f"--depth={CONFIRM_DEPTH}"), timeout=store.remote.bounds.call)
        if not result.ok:
            raise result.failure(f"cannot read back {store.remote.describe()}")
        chain = runner.ok("rev-list", "--first-parent", CONFIRM_REF, what="reading the branch back").split()
        if pushed.sha not in chain:
            return f"its tip {tip[:12]} does not have commit {pushed.sha[:12]} on its history"
    if blob is None:
        return None
    held = runner.run("rev-parse", "--verify", "--quiet", f"{pushed.sha}:{pushed.path}")
    if held.stdout.strip() != blob:
        return f"commit {pushed.sha[:12]} does not hold {pushed.path}"
    return None


def push_archive(store: BackupStore, encrypted_file: Path, wanted_name: str, message_for: Any,
                 pruning: Pruning) -> PushedArchive:
    """Commit `encrypted_file` as `<backup.path>/<name>` on top of the branch, push it and read it
    back from the remote.

    `message_for(name, path, decision)` builds the commit message once the final name (one the branch
    never had: `names_used`) and the retention decision are known. A rejected push, or one that the remote
    does not show afterwards, is redone on top of the new tip, at most PUSH_ATTEMPTS times and not
    after `bounds.retry_window`, with jittered backoff.
    """
    runner = store.scratch()
    blob = runner.ok("hash-object", "-w", "--", str(encrypted_file), what="storing the archive").strip()
    seen = _Seen()
    pushed = _push_until_landed(store, runner, lambda tip, attempt: _archive_commit(
        store, runner, blob, tip, wanted_name, message_for, attempt, pruning, seen), blob, "the backup")
    assert pushed is not None
    return pushed


def push_prune(store: BackupStore, pruning: Pruning, message_for: Callable[[GitRunner, str, Decision], str],
               *, dry_run: bool) -> tuple[Decision, PushedArchive | None]:
    """Apply the policy to the branch's tree without adding an archive: the decision, and the commit that
    removed what it drops (None when nothing is dropped, the branch is missing, or `dry_run`).
    `message_for(runner, tip, decision)` writes the message of a commit on top of `tip`."""
    runner = store.scratch()
    seen = _Seen()
    decided: list[Decision] = []

    def build(tip: str | None, attempt: int) -> PushedArchive | None:
        env = store.index_env(runner, f"prune-{attempt}")
        present = _tree(store, runner, tip, env)
        decision = pruning.decide(present, protect=seen.since_first(present))
        decided.append(decision)
        if tip is None or dry_run or not decision.removed:
            return None
        _remove(store, runner, decision.removed, env)
        tree = runner.ok("write-tree", "--missing-ok", what="writing the tree", env=env).strip()
        commit = store.commit_tree(runner, tree, tip, message_for(runner, tip, decision))
        return PushedArchive(sha=commit, archive="", path="", removed=decision.removed, created_branch=False,
                             attempts=attempt, decision=decision)

    pushed = _push_until_landed(store, runner, build, None, "the prune")
    return decided[-1], pushed


def _push_until_landed(store: BackupStore, runner: GitRunner,
                       build: Callable[[str | None, int], PushedArchive | None], blob: str | None,
                       what: str) -> PushedArchive | None:
    deadline = time.monotonic() + store.remote.bounds.retry_window
    last_reason = ""
    attempt = 0
    while attempt < PUSH_ATTEMPTS:
        attempt += 1
        tip = store.fetch_tip(runner)
        pushed = build(tip, attempt)
        if pushed is None:
            return None
        result = store.push_ref(runner, f"{pushed.sha}:{store.remote.head_ref}")
        kind, reason = ("", "") if result.ok else classify(result.stderr)
        if kind not in ("", "rejected", "network", "timeout"):
            raise result.failure(f"cannot push to {store.remote.describe()}")
        try:  # a push that reached the server although we saw an error (network) counts too
            missing = reason if kind == "rejected" else confirm_pushed(store, runner, pushed, blob)
        except GitFailure as exc:
            if result.ok:
                raise GitFailure(f"pushed {pushed.sha[:12]} to {store.remote.describe()} but could not read the branch "
                                 f"back ({str(exc).rsplit(': ', 1)[-1]}); {what} is not reported as stored",
                                 exc.kind, exc.stderr) from None
            missing = reason  # the push failed and the remote cannot be read: try again
        if missing is None:
            return pushed
        last_reason = reason if not result.ok else f"the pushed commit is not on the branch: {missing}"
        delay = min(8.0, 0.25 * 2 ** min(attempt - 1, 5)) * random.uniform(0.5, 1.5)  # noqa: S311
        if attempt >= PUSH_ATTEMPTS or time.monotonic() + delay > deadline:
            break
        log.info(f"push to {store.remote.describe()} did not land ({last_reason}); retrying on the new tip in "
                 f"{delay:.1f}s (attempt {attempt + 1} of at most {PUSH_ATTEMPTS})")
        time.sleep(delay)
    raise ResourceError(f"could not push {what} to {store.remote.describe()} ({attempt} attempt(s), at most "
                        f"{PUSH_ATTEMPTS} within {store.remote.bounds.retry_window:.0f}s; last: {last_reason}); "
                        f"{what} is not on the branch")
