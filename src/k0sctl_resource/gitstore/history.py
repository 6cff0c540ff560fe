"""Reading a branch's first-parent history from its commits alone (no trees, no archives): the newest
backup, what `verify` measures the age of and what `prune` carries forward; and the drill records.

The newest commits are fetched first, the whole first-parent history (commit objects, a few hundred bytes
each) only when none of them is what is looked for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from k0sctl_resource.gitstore.commit_format import BackupFacts, CommitInfo, parse_facts
from k0sctl_resource.gitstore.remote import Remote
from k0sctl_resource.gitstore.runner import SHA, GitRunner
from k0sctl_resource.gitstore.store import BackupStore

FIRST_DEPTH = 32
HISTORY_REF = "refs/k0sctl/history"
T = TypeVar("T")


def messages(runner: GitRunner, ref: str, limit: int | None) -> list[tuple[str, str]]:
    """(sha, message) of the first-parent commits of `ref`, newest first, at most `limit`."""
    count = () if limit is None else (f"--max-count={limit}",)
    out = runner.ok("log", "--first-parent", *count, "--format=%H%x00%B%x01", ref, what="reading the history")
    found = []
    for entry in out.split("\x01"):
        sha, sep, body = entry.strip().partition("\x00")
        if sep and SHA.match(sha):
            found.append((sha, body))
    return found


def find_newest(store: BackupStore, remote: Remote, local_ref: str, depth: int,
                read: Callable[[str, str], T | None]) -> tuple[str | None, list[T]]:
    """(the tip of `remote`'s branch, what `read(sha, message)` makes of its commits, newest first): the
    newest `depth` commits, or the whole history when `read` finds nothing among them; (None, []) when the
    branch does not exist."""
    runner = store.scratch()
    tip = store.fetch_branch(runner, remote, local_ref, ("--filter=tree:0", f"--depth={depth}"))
    if tip is None:
        return None, []
    newest = messages(runner, local_ref, depth)
    found = [r for sha, body in newest if (r := read(sha, body)) is not None]
    if not found and len(newest) >= depth:
        result = runner.fetch(remote.url, f"+{remote.head_ref}:{local_ref}",
                              options=("--filter=tree:0", "--unshallow"), timeout=remote.bounds.bulk)
        if not result.ok and "unshallow on a complete repository" not in result.stderr:
            raise result.failure(f"cannot fetch the history of {remote.describe()}")
        found = [r for sha, body in messages(runner, local_ref, None) if (r := read(sha, body)) is not None]
    return tip, found


def _backup(sha: str, body: str) -> CommitInfo | None:
    facts = parse_facts(body)
    return CommitInfo(sha=sha, message=body, facts=facts) if isinstance(facts, BackupFacts) and facts.archive else None


def newest_backup(store: BackupStore) -> tuple[str | None, CommitInfo | None]:
    """(the branch's tip, its newest backup commit); (None, None) when the branch does not exist."""
    tip, found = find_newest(store, store.remote, HISTORY_REF, FIRST_DEPTH, _backup)
    return tip, (found[0] if found else None)
