"""Storing an archive on the backup branch: a commit on top of the tip that adds it (and applies `keep`),
pushed, and read back from the remote before the step reports it stored; redone on top of a new tip when
the branch moved."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from k0sctl_resource.gitstore.commit_format import retention, unique_name
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
    archive: str
    path: str
    removed: tuple[str, ...]
    created_branch: bool
    attempts: int


def _archive_commit(store: BackupStore, runner: GitRunner, blob: str, tip: str | None, wanted_name: str,
                    message_for: Any, attempt: int) -> PushedArchive:
    """A commit on top of `tip` that adds `blob` under a name unique in the tree and applies `keep`
    (never to the archive it adds, whatever the stamps of the others say)."""
    folder = store.backup.folder
    env = store.index_env(runner, str(attempt))
    if tip is None:
        runner.ok("read-tree", "--empty", what="preparing the tree", env=env)
        present: list[str] = []
    else:
        runner.ok("read-tree", tip, what="reading the branch's tree", env=env)
        listing = runner.ok("ls-tree", "--name-only", tip, "--", f"{folder}/", what="listing archives")
        present = [p.rsplit("/", 1)[-1] for p in listing.splitlines() if p.strip()]
    name = unique_name(wanted_name, set(present))
    path = f"{folder}/{name}"
    runner.ok("update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", what="adding the archive", env=env)
    removed = tuple(retention([*present, name], store.backup.keep, protect={name}))
    if removed:
        runner.ok("update-index", "--force-remove", "--", *(f"{folder}/{r}" for r in removed),
                  what="applying keep", env=env)
    tree = runner.ok("write-tree", "--missing-ok", what="writing the tree", env=env).strip()
    commit = store.commit_tree(runner, tree, tip, message_for(name, path, removed))
    return PushedArchive(sha=commit, archive=name, path=path, removed=removed, created_branch=tip is None,
                         attempts=attempt)


def confirm_pushed(store: BackupStore, runner: GitRunner, pushed: PushedArchive, blob: str) -> str | None:
    """Read the branch back from the remote: None when its tip is `pushed.sha` or has it on its
    first-parent chain and that commit holds the archive's blob; otherwise what is wrong."""
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
    held = runner.run("rev-parse", "--verify", "--quiet", f"{pushed.sha}:{pushed.path}")
    if held.stdout.strip() != blob:
        return f"commit {pushed.sha[:12]} does not hold {pushed.path}"
    return None


def push_archive(store: BackupStore, encrypted_file: Path, wanted_name: str,
                 message_for: Any) -> PushedArchive:
    """Commit `encrypted_file` as `<backup.path>/<name>` on top of the branch, push it and read it
    back from the remote.

    `message_for(name, path, removed)` builds the commit message once the final name (unique in
    the tree) and the archives removed by `keep` are known. A rejected push, or one that the remote
    does not show afterwards, is redone on top of the new tip, at most PUSH_ATTEMPTS times and not
    after `bounds.retry_window`, with jittered backoff.
    """
    runner = store.scratch()
    blob = runner.ok("hash-object", "-w", "--", str(encrypted_file), what="storing the archive").strip()
    deadline = time.monotonic() + store.remote.bounds.retry_window
    last_reason = ""
    attempt = 0
    while attempt < PUSH_ATTEMPTS:
        attempt += 1
        tip = store.fetch_tip(runner)
        pushed = _archive_commit(store, runner, blob, tip, wanted_name, message_for, attempt)
        result = store.push_ref(runner, f"{pushed.sha}:{store.remote.head_ref}")
        kind, reason = ("", "") if result.ok else classify(result.stderr)
        if kind not in ("", "rejected", "network", "timeout"):
            raise result.failure(f"cannot push to {store.remote.describe()}")
        try:  # a push that reached the server although we saw an error (network) counts too
            missing = reason if kind == "rejected" else confirm_pushed(store, runner, pushed, blob)
        except GitFailure as exc:
            if result.ok:
                raise GitFailure(f"pushed {pushed.sha[:12]} to {store.remote.describe()} but could not read the branch "
                                 f"back ({str(exc).rsplit(': ', 1)[-1]}); the backup is not reported as stored",
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
    raise ResourceError(f"could not push the backup to {store.remote.describe()} ({attempt} attempt(s), at most "
                        f"{PUSH_ATTEMPTS} within {store.remote.bounds.retry_window:.0f}s; last: {last_reason}); "
                        "the backup is not on the branch")
