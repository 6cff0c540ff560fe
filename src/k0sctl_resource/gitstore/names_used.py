"""The names an archive may not take on top of a tip: a name is never used twice in the branch's history, so
that one name means one archive wherever a record holds it (a put's metadata, a drill's record, what
`verify` and `prune` report, and the drilled archive retention protects by name).

The tip's tree alone does not tell: retention removes archives from it. A put whose stamp is older than an
archive already in the tree (it raced with a put of a later second, which dropped an archive of its own
second; or its clock ran behind) would take such a name again. But retention never removes the newest
archive of a series, nor one dated after its `now`, so once an archive of a second was added, every later
tree holds an archive of that series stamped in that second or later. Hence:

- a tree holding no archive of the series as new as the wanted name is all there is to know (the usual
  put, whose archive is the newest): no history is read;
- otherwise the trees of the first-parent commits below the tip are read, back to the first one holding no
  archive that new, and every name of the wanted second in them is taken. These are the commits pushed
  since that second (a few, in a race), fetched with their trees and no archive, a few more at a time.

A commit that this resource did not write (an archive removed by hand) is outside this reasoning.
"""

from __future__ import annotations

from k0sctl_resource.gitstore.commit_format import as_new_as, same_second
from k0sctl_resource.gitstore.runner import GitRunner
from k0sctl_resource.gitstore.store import BackupStore
from k0sctl_resource.runtime import log

WALK_REF = "refs/k0sctl/names"
FIRST_DEEPEN = 8  # commits fetched below the history read so far, doubled each time more are needed


def folder_names(store: BackupStore, runner: GitRunner, commit: str) -> list[str]:
    """The names of the files in the backup folder of `commit`'s tree."""
    listing = runner.ok("ls-tree", "--name-only", commit, "--", f"{store.backup.folder}/", what="listing archives")
    return [p.rsplit("/", 1)[-1] for p in listing.splitlines() if p.strip()]


def names_taken(store: BackupStore, runner: GitRunner, tip: str | None, present: list[str], wanted: str) -> set[str]:
    """The names `wanted` may not take in a commit on top of `tip`, whose folder holds `present`: those, and
    every name of `wanted`'s second the branch had since (see the module's doc)."""
    if tip is None or not as_new_as(present, wanted):
        return set(present)
    taken = _walk(store, runner, tip, set(present), wanted)
    if removed := sorted(taken - set(present)):
        log.info(f"{wanted}: the branch already had {', '.join(removed)} (removed from the tree since); the "
                 "archive takes the next free number, as a name is never used twice")
    return taken


def _walk(store: BackupStore, runner: GitRunner, tip: str, taken: set[str], wanted: str) -> set[str]:
    """`taken` and the names of `wanted`'s second in the trees below `tip`, back to the first tree holding no
    archive of the series as new as `wanted`."""
    chain = _first_parents(runner, tip)
    walked, deepen = 1, FIRST_DEEPEN
    while True:
        for commit in chain[walked:]:
            names = folder_names(store, runner, commit)
            if not as_new_as(names, wanted):
                return taken
            taken |= same_second(names, wanted)
        walked = len(chain)
        if chain[-1] not in _shallow(runner):
            return taken  # the branch's first commit
        _deepen(store, runner, deepen)
        deepen *= 2
        chain = _first_parents(runner, tip)
        if len(chain) <= walked:
            # The branch no longer leads to `tip` (it was replaced meanwhile): the push on top of `tip` is
            # refused and redone on the new tip, which this reads again.
            return taken


def _first_parents(runner: GitRunner, tip: str) -> list[str]:
    return runner.ok("rev-list", "--first-parent", tip, what="reading the branch's history").split()


def _shallow(runner: GitRunner) -> set[str]:
    """The commits whose parents were not fetched (a shallow fetch's boundary)."""
    try:
        return set((runner.cwd / ".git" / "shallow").read_text(encoding="ascii").split())
    except FileNotFoundError:
        return set()


def _deepen(store: BackupStore, runner: GitRunner, by: int) -> None:
    """Fetch `by` more commits of the branch below the history read so far (their trees, no archive); the
    whole history from a server that cannot deepen."""
    remote = store.remote
    refspec = f"+{remote.head_ref}:{WALK_REF}"
    result = runner.fetch(remote.url, refspec, options=(f"--deepen={by}", "--filter=blob:none"),
                          timeout=remote.bounds.call)
    if not result.ok and "does not support --deepen" in result.stderr:
        result = runner.fetch(remote.url, refspec, options=("--unshallow", "--filter=blob:none"),
                              timeout=remote.bounds.bulk)
    if not result.ok:
        raise result.failure(f"cannot fetch the history of {remote.describe()}")
