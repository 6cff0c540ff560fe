"""Many backup branches of one repository, read at once: for `fleet-status`.

The cost is that of one fetch of the repository, whatever the number of branches:

1. one `git ls-remote --heads`: which of the wanted branches (`<branch>` and its drill branch
   `k0sctl-drills/<branch>`) exist, and nothing else is fetched;
2. one `git fetch --depth=1 --filter=tree:0` of all of them (their tips; commits only: no tree, no
   archive), refspecs on stdin;
3. one `git cat-file --batch-all-objects --batch`: every commit fetched, walked in Python along first
   parents from each tip to the newest backup commit and the newest drill records.

Only a branch whose newest commit is not the one wanted (a failed drill, a commit that is no backup)
costs more fetches, of those branches alone, 64 commits deep and then their whole history (commits
only). Every git call is bounded by what is left of the caller's deadline: a repository that hangs
costs its own bound, never more.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from k0sctl_resource.gitstore.commit_format import BackupFacts, parse_facts
from k0sctl_resource.gitstore.drill_record import DRILLS_PREFIX, DrillRecord, parse_drill_record
from k0sctl_resource.gitstore.runner import SHA, GitFailure, GitRunner, init_repo

# The depth of each round of fetching: the tips alone answer when the newest commit of a branch is a backup
# and that of its drill branch a passed drill; a branch that needs more goes on, alone, to the next round.
DEPTHS = (1, 64, 1_000_000)
LOCAL_PREFIX = "refs/fleet/"


@dataclass(frozen=True)
class Commit:
    parent: str | None  # first parent; None for a root commit
    body: str  # the message


@dataclass(frozen=True)
class BranchReport:
    """What one backup branch and its drill branch say."""

    branch: str
    exists: bool
    newest_backup: str | None = None  # sha of the newest backup commit
    newest_backup_at: str | None = None  # its Created-At (RFC 3339, UTC)
    last_drill: DrillRecord | None = None
    last_passed_drill: DrillRecord | None = None


class _Walk:
    """The newest commit along first parents from `tip` that `want` accepts; `unresolved` when the fetched
    history ended (shallow) before one was found or a root was reached."""

    def __init__(self, commits: Mapping[str, Commit]) -> None:
        self.commits = commits

    def find(self, tip: str | None, want: type | str) -> tuple[str | None, bool]:
        sha = tip
        while sha is not None:
            commit = self.commits.get(sha)
            if commit is None:
                return None, True
            if self._accepts(commit.body, want):
                return sha, False
            sha = commit.parent
        return None, False

    @staticmethod
    def _accepts(body: str, want: type | str) -> bool:
        if want is BackupFacts:
            return isinstance(parse_facts(body), BackupFacts)
        record = parse_drill_record(body)
        return record is not None and want in ("any", record.result)


def _remaining(deadline: float, what: str) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise GitFailure(f"{what}: no answer in time (bounded by the fleet's timeout)", "timeout")
    return left


def _heads(runner: GitRunner, url: str, deadline: float) -> dict[str, str]:
    result = runner.run("ls-remote", "--heads", "--", url, timeout=_remaining(deadline, f"reading {url}"))
    if not result.ok:
        raise result.failure(f"cannot read {url}")
    heads: dict[str, str] = {}
    for line in result.stdout.splitlines():
        sha, _, ref = line.partition("\t")
        if SHA.match(sha.strip()) and ref.startswith("refs/heads/"):
            heads[ref.strip()] = sha.strip()
    return heads


def _fetch(runner: GitRunner, url: str, refs: Sequence[str], depth: int, deadline: float) -> None:
    if not refs:
        return
    with tempfile.TemporaryFile(dir=runner.cwd) as specs:
        specs.write("".join(f"+{ref}:{LOCAL_PREFIX}{ref.removeprefix('refs/heads/')}\n" for ref in refs).encode())
        specs.seek(0)
        result = runner.run("fetch", "--quiet", "--no-tags", "--no-write-fetch-head", f"--depth={depth}",
                            "--filter=tree:0", "--stdin", "--", url, stdin=specs,
                            timeout=_remaining(deadline, f"fetching from {url}"))
    if not result.ok:
        raise result.failure(f"cannot fetch {len(refs)} branch(es) of {url}")


def _commits(runner: GitRunner, deadline: float) -> dict[str, Commit]:
    """Every commit in the private repository (what the fetches brought), by sha."""
    with tempfile.TemporaryFile(dir=runner.cwd) as dump:
        out = runner.run("cat-file", "--batch-all-objects", "--batch", "--unordered", output=dump,
                         timeout=_remaining(deadline, "reading the fetched commits"))
        if not out.ok:
            raise out.failure("reading the fetched commits")
        dump.seek(0)
        data = dump.read()
    found: dict[str, Commit] = {}
    pos = 0
    while pos < len(data):
        end = data.index(b"\n", pos)
        sha, kind, size = data[pos:end].decode("ascii").split(" ")
        content = data[end + 1:end + 1 + int(size)]
        pos = end + 1 + int(size) + 1
        if kind == "commit":
            header, _, body = content.partition(b"\n\n")
            parents = [ln[7:].decode("ascii") for ln in header.splitlines() if ln.startswith(b"parent ")]
            found[sha] = Commit(parent=parents[0] if parents else None, body=body.decode("utf-8", "replace"))
    return found


def _local_tips(runner: GitRunner) -> dict[str, str]:
    out = runner.ok("for-each-ref", "--format=%(objectname) %(refname)", LOCAL_PREFIX, what="listing fetched refs")
    return {ref.removeprefix(LOCAL_PREFIX): sha for sha, _, ref in (ln.partition(" ") for ln in out.splitlines())}


def _search(runner: GitRunner, branches: Sequence[str], deadline: float
            ) -> tuple[dict[str, dict[str, str | None]], set[str], dict[str, Commit]]:
    """Per branch, the sha found for each question; the refs whose history ended too early; the commits."""
    commits, tips = _commits(runner, deadline), _local_tips(runner)
    walk = _Walk(commits)
    answers: dict[str, dict[str, str | None]] = {}
    deeper: set[str] = set()
    for branch in branches:
        drills = DRILLS_PREFIX + branch
        questions: tuple[tuple[str, str, type | str], ...] = (
            ("backup", branch, BackupFacts), ("drill", drills, "any"), ("passed", drills, "passed"))
        answers[branch] = {}
        for key, ref, want in questions:
            sha, unresolved = walk.find(tips.get(ref), want)
            answers[branch][key] = sha
            if unresolved:
                deeper.add(f"refs/heads/{ref}")
    return answers, deeper, commits


def read_branches(url: str, env: Mapping[str, str], branches: Sequence[str], work: Path,
                  deadline: float) -> dict[str, BranchReport]:
    """Every branch of `branches` in the repository at `url` (with `env` for authentication), read in the
    private directory `work` before `deadline` (time.monotonic()). Raises GitFailure when the repository
    cannot be read."""
    repo = work / "fleet.git"
    init_repo(repo, bare=True)
    runner = GitRunner(repo, env)
    heads = _heads(runner, url, deadline)
    wanted = [ref for b in branches for ref in (f"refs/heads/{b}", f"refs/heads/{DRILLS_PREFIX}{b}") if ref in heads]
    try:
        _fetch(runner, url, wanted, DEPTHS[0], deadline)
    except GitFailure as exc:
        if exc.kind != "missing_ref":
            raise
        heads = _heads(runner, url, deadline)  # a branch was deleted since ls-remote: once more
        wanted = [ref for ref in wanted if ref in heads]
        _fetch(runner, url, wanted, DEPTHS[0], deadline)
    answers, deeper, commits = _search(runner, branches, deadline)
    for depth in DEPTHS[1:]:
        if not deeper:
            break
        _fetch(runner, url, sorted(deeper), depth, deadline)
        answers, deeper, commits = _search(runner, branches, deadline)
    return {b: _report(b, f"refs/heads/{b}" in heads, answers[b], commits) for b in branches}


def _report(branch: str, exists: bool, found: dict[str, str | None], commits: Mapping[str, Commit]) -> BranchReport:
    backup, drill, passed = found["backup"], found["drill"], found["passed"]
    facts = parse_facts(commits[backup].body) if backup else None
    return BranchReport(branch=branch, exists=exists, newest_backup=backup,
                        newest_backup_at=facts.created_at if isinstance(facts, BackupFacts) else None,
                        last_drill=parse_drill_record(commits[drill].body, drill) if drill else None,
                        last_passed_drill=parse_drill_record(commits[passed].body, passed) if passed else None)
