"""The backup repository: one branch, one commit per `init` or `backup`, the archives as files.

Everything here talks to the remote with as little data as git allows, so that no step costs more as
the history grows:

- the branch's tip comes from `git ls-remote`;
- a put fetches the tip commit alone (`--depth 1 --filter=blob:none`: the commit and its trees, no
  archive), builds the new tree with a private index (`read-tree`, `update-index`, `write-tree`),
  commits with `commit-tree` and pushes; a push rejected because the branch moved is redone on top
  of the new tip;
- a get fetches the one commit it needs by its sha and then the one blob it names;
- check keeps a small cache (a commits-only partial repository and the first-parent list) in the
  check container's temporary space, so that a check with nothing new is one `git ls-remote`.

Efficient fetching needs a server that speaks git protocol v2 and allows filters (GitHub, GitLab,
Gitea/Forgejo, Bitbucket do; a plain `git` over OpenSSH needs `AcceptEnv GIT_PROTOCOL` in sshd and
`uploadpack.allowFilter`). Without them every operation still works, fetching more.
"""

from __future__ import annotations

import os
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from k0sctl_resource.config.models import BackupRepo, Source, Version
from k0sctl_resource.gitstore.auth import GitAuth
from k0sctl_resource.gitstore.check_cache import CheckCache
from k0sctl_resource.gitstore.commit_format import (
    BackupFacts,
    CommitFacts,
    compact_stamp,
    is_archive_name,
    parse_facts,
    retention,
    unique_name,
    utc_now,
)
from k0sctl_resource.gitstore.remote import Remote
from k0sctl_resource.gitstore.runner import (
    TIP_REF,
    GitFailure,
    GitResult,
    GitRunner,
    classify,
    forget_inherited_git_env,
    init_repo,
    objects_size,
)
from k0sctl_resource.runtime import log
from k0sctl_resource.runtime.errors import ResourceError
from k0sctl_resource.runtime.redact import REDACT
from k0sctl_resource.runtime.workspace import Workspace

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
ARCHIVE_TAG_PREFIX = "k0sctl-backup-archive/"
PUSH_ATTEMPTS = 10
CONFIRM_DEPTH = 100  # commits read back below the remote tip to find the one just pushed
CONFIRM_REF = "refs/k0sctl/confirm"
_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    message: str
    facts: CommitFacts | None  # None: a commit this resource did not write

    @property
    def kind(self) -> str:
        return self.facts.KIND if self.facts is not None else "unknown"


@dataclass(frozen=True)
class PushedArchive:
    sha: str
    archive: str
    path: str
    removed: tuple[str, ...]
    created_branch: bool
    attempts: int


@dataclass(frozen=True)
class InitOutcome:
    sha: str
    created: bool
    archived_as: str | None = None
    previous_tip: str | None = None


class _StepSite(Protocol):
    """What a step hands the store (a `StepContext`), without this layer importing the steps."""

    @property
    def source(self) -> Source: ...

    @property
    def workspace(self) -> Workspace: ...


class BackupStore:
    def __init__(self, source: Source, workspace: Workspace) -> None:
        if source.backup is None:
            raise ResourceError("source.backup is not configured")
        forget_inherited_git_env()
        self.backup: BackupRepo = source.backup
        self.workspace = workspace
        self.auth = GitAuth(source, workspace)
        self.branch = self.backup.branch
        self.head_ref = f"refs/heads/{self.branch}"
        self.bounds = self.auth.bounds
        self._scratch: GitRunner | None = None

    @classmethod
    def for_context(cls, ctx: _StepSite) -> BackupStore:
        return cls(ctx.source, ctx.workspace)

    @property
    def url(self) -> str:
        return self.auth.url

    def describe(self) -> str:
        return f"branch {self.branch} of {self.url}"

    def remote(self) -> Remote:
        return Remote(url=self.url, branch=self.branch, env=self.auth.env, bounds=self.bounds)

    # -- remote state ------------------------------------------------------------------------------
    def remote_tip(self) -> str | None:
        """The branch's tip on the remote, or None when the branch does not exist."""
        runner = GitRunner(self.workspace.path, self.auth.env)
        result = runner.run("ls-remote", "--exit-code", "--", self.url, self.head_ref, timeout=self.bounds.call)
        if result.code == 2:
            return None
        if not result.ok:
            kind, reason = classify(result.stderr)
            raise GitFailure(f"cannot read {self.url}: {reason}", kind, result.stderr)
        for line in result.stdout.splitlines():
            sha, _, ref = line.partition("\t")
            if ref.strip() == self.head_ref and _SHA.match(sha.strip()):
                return sha.strip()
        return None

    def remote_tags(self, prefix: str) -> set[str]:
        runner = GitRunner(self.workspace.path, self.auth.env)
        out = runner.ok("ls-remote", "--tags", "--", self.url, f"refs/tags/{prefix}*",
                        what=f"cannot read {self.url}", timeout=self.bounds.call)
        return {line.partition("\t")[2].removeprefix("refs/tags/").removesuffix("^{}")
                for line in out.splitlines() if "\t" in line}

    # -- a private scratch repository --------------------------------------------------------------
    def scratch(self) -> GitRunner:
        if self._scratch is None:
            path = self.workspace.dir("backup-repo")
            init_repo(path, bare=False)
            self._scratch = GitRunner(path, self.auth.env)
        return self._scratch

    def fetch_tip(self, runner: GitRunner) -> str | None:
        """Fetch the branch's tip commit with its trees (no blobs) into `runner`'s repository."""
        result = runner.run("fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--depth=1",
                            "--filter=blob:none", "--", self.url, f"+{self.head_ref}:{TIP_REF}",
                            timeout=self.bounds.call)
        if not result.ok:
            kind, reason = classify(result.stderr)
            if kind == "missing_ref":
                return None
            raise GitFailure(f"cannot fetch {self.describe()}: {reason}", kind, result.stderr)
        return runner.ok("rev-parse", "--verify", f"{TIP_REF}^{{commit}}", what="reading the fetched tip").strip()

    def fetch_commit(self, runner: GitRunner, sha: str, *, with_trees: bool = True) -> None:
        """Fetch one commit by its sha (and its trees unless `with_trees` is false); no blobs."""
        if not _SHA.match(sha):
            raise ResourceError(f"version {sha!r} is not a full commit sha")
        flt = "--filter=blob:none" if with_trees else "--filter=tree:0"
        result = runner.run("fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--depth=1", flt,
                            "--", self.url, sha, timeout=self.bounds.call)
        if result.ok:
            return
        kind, reason = classify(result.stderr)
        if kind == "missing_object":
            raise GitFailure(f"version {sha} no longer exists in {self.url} (the branch was rewritten "
                             "and the commit removed)", kind, result.stderr)
        if kind != "unadvertised":
            raise GitFailure(f"cannot fetch {sha} from {self.url}: {reason}", kind, result.stderr)
        # Protocol v0 server: fetch the branch and the archive tags in full, then look for the commit.
        log.warn(f"{self.url} does not allow fetching a single commit (git protocol v2 is off); "
                 "fetching the whole branch instead")
        result = runner.run("fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--", self.url,
                            f"+{self.head_ref}:refs/k0sctl/all/head",
                            f"+refs/tags/{ARCHIVE_TAG_PREFIX}*:refs/k0sctl/all/tags/*", timeout=self.bounds.bulk)
        if not result.ok:
            kind, reason = classify(result.stderr)
            if kind != "missing_ref":
                raise GitFailure(f"cannot fetch {self.describe()}: {reason}", kind, result.stderr)
        if not runner.run("cat-file", "-e", f"{sha}^{{commit}}").ok:
            raise GitFailure(f"version {sha} no longer exists in {self.url}", "missing_object")

    def read_commit(self, sha: str, *, with_trees: bool = True) -> CommitInfo:
        runner = self.scratch()
        self.fetch_commit(runner, sha, with_trees=with_trees)
        message = runner.ok("cat-file", "commit", sha, what=f"reading commit {sha}")
        body = message.split("\n\n", 1)[1] if "\n\n" in message else ""
        return CommitInfo(sha=sha, message=body, facts=parse_facts(body))

    def read_blob(self, sha: str, path: str, dst: Path) -> int:
        """Write the file `path` of commit `sha` (fetched by `read_commit`) to `dst` (mode 0600).
        Returns the bytes the scratch repository fetched in all."""
        runner = self.scratch()
        result = runner.run("rev-parse", "--verify", "--quiet", f"{sha}:{path}")
        blob = result.stdout.strip()
        if not result.ok or not _SHA.match(blob):
            raise ResourceError(f"commit {sha} has no file {path}")
        fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as handle:
            got = runner.run("cat-file", "blob", blob, output=handle, timeout=self.bounds.bulk)
        if not got.ok:
            dst.unlink(missing_ok=True)
            kind, reason = classify(got.stderr)
            raise GitFailure(f"cannot fetch {path} of {sha} from {self.url}: {reason}", kind, got.stderr)
        return objects_size(runner.cwd / ".git")

    # -- committing an archive ---------------------------------------------------------------------
    def _index_env(self, runner: GitRunner, name: str) -> dict[str, str]:
        index = runner.cwd / ".git" / f"k0sctl-index-{name}"
        index.unlink(missing_ok=True)
        return {"GIT_INDEX_FILE": str(index)}

    def _author_env(self) -> dict[str, str]:
        user = self.backup.git_user
        return {"GIT_AUTHOR_NAME": user.name, "GIT_AUTHOR_EMAIL": user.email,
                "GIT_COMMITTER_NAME": user.name, "GIT_COMMITTER_EMAIL": user.email}

    def _commit(self, runner: GitRunner, tree: str, parent: str | None, message: str) -> str:
        msg_file = runner.cwd / ".git" / "k0sctl-message"
        msg_file.write_text(message, encoding="utf-8")
        args = ["commit-tree", tree, "-F", str(msg_file)]
        if parent is not None:
            args[2:2] = ["-p", parent]
        sha = runner.ok(*args, what="creating the commit", env=self._author_env()).strip()
        if not _SHA.match(sha):
            raise ResourceError(f"git commit-tree returned no commit ({sha[:60]!r})")
        return sha

    def _push(self, runner: GitRunner, refspec: str, *, lease: str | None = None) -> GitResult:
        src = refspec.split(":", 1)[0].lstrip("+")
        if not src:  # an empty source would delete the remote ref
            raise ResourceError("internal error: refusing to push an empty source")
        args = ["push", "--porcelain", "--no-verify"]
        if lease is not None:
            args.append(f"--force-with-lease={lease}")
        result = runner.run(*args, "--", self.url, refspec, timeout=self.bounds.bulk)
        # --porcelain reports a rejected ref on stdout; classify() reads both
        return GitResult(code=result.code, stdout=result.stdout, stderr=result.stderr + "\n" + result.stdout)

    def _archive_commit(self, runner: GitRunner, blob: str, tip: str | None, wanted_name: str,
                        message_for: Any, attempt: int) -> PushedArchive:
        """A commit on top of `tip` that adds `blob` under a name unique in the tree and applies `keep`
        (never to the archive it adds, whatever the stamps of the others say)."""
        folder = self.backup.folder
        env = self._index_env(runner, str(attempt))
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
        removed = tuple(retention([*present, name], self.backup.keep, protect={name}))
        if removed:
            runner.ok("update-index", "--force-remove", "--", *(f"{folder}/{r}" for r in removed),
                      what="applying keep", env=env)
        tree = runner.ok("write-tree", "--missing-ok", what="writing the tree", env=env).strip()
        commit = self._commit(runner, tree, tip, message_for(name, path, removed))
        return PushedArchive(sha=commit, archive=name, path=path, removed=removed, created_branch=tip is None,
                             attempts=attempt)

    def confirm_pushed(self, runner: GitRunner, pushed: PushedArchive, blob: str) -> str | None:
        """Read the branch back from the remote: None when its tip is `pushed.sha` or has it on its
        first-parent chain and that commit holds the archive's blob; otherwise what is wrong."""
        tip = self.remote_tip()
        if tip is None:
            return "the branch no longer exists"
        if tip != pushed.sha:
            result = runner.run("fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--filter=tree:0",
                                f"--depth={CONFIRM_DEPTH}", "--", self.url, f"+{self.head_ref}:{CONFIRM_REF}",
                                timeout=self.bounds.call)
            if not result.ok:
                kind, reason = classify(result.stderr)
                raise GitFailure(f"cannot read back {self.describe()}: {reason}", kind, result.stderr)
            chain = runner.ok("rev-list", "--first-parent", CONFIRM_REF, what="reading the branch back").split()
            if pushed.sha not in chain:
                return f"its tip {tip[:12]} does not have commit {pushed.sha[:12]} on its history"
        held = runner.run("rev-parse", "--verify", "--quiet", f"{pushed.sha}:{pushed.path}")
        if held.stdout.strip() != blob:
            return f"commit {pushed.sha[:12]} does not hold {pushed.path}"
        return None

    def push_archive(self, encrypted_file: Path, wanted_name: str,
                     message_for: Any) -> PushedArchive:
        """Commit `encrypted_file` as `<backup.path>/<name>` on top of the branch, push it and read it
        back from the remote.

        `message_for(name, path, removed)` builds the commit message once the final name (unique in
        the tree) and the archives removed by `keep` are known. A rejected push, or one that the remote
        does not show afterwards, is redone on top of the new tip, at most PUSH_ATTEMPTS times and not
        after `bounds.retry_window`, with jittered backoff.
        """
        runner = self.scratch()
        blob = runner.ok("hash-object", "-w", "--", str(encrypted_file), what="storing the archive").strip()
        deadline = time.monotonic() + self.bounds.retry_window
        last_reason = ""
        attempt = 0
        while attempt < PUSH_ATTEMPTS:
            attempt += 1
            tip = self.fetch_tip(runner)
            pushed = self._archive_commit(runner, blob, tip, wanted_name, message_for, attempt)
            result = self._push(runner, f"{pushed.sha}:{self.head_ref}")
            kind, reason = ("", "") if result.ok else classify(result.stderr)
            if kind not in ("", "rejected", "network", "timeout"):
                raise GitFailure(f"cannot push to {self.describe()}: {reason}", kind, result.stderr)
            try:  # a push that reached the server although we saw an error (network) counts too
                missing = reason if kind == "rejected" else self.confirm_pushed(runner, pushed, blob)
            except GitFailure as exc:
                if result.ok:
                    raise GitFailure(f"pushed {pushed.sha[:12]} to {self.describe()} but could not read the branch "
                                     f"back ({str(exc).rsplit(': ', 1)[-1]}); the backup is not reported as stored",
                                     exc.kind, exc.stderr) from None
                missing = reason  # the push failed and the remote cannot be read: try again
            if missing is None:
                return pushed
            last_reason = reason if not result.ok else f"the pushed commit is not on the branch: {missing}"
            delay = min(8.0, 0.25 * 2 ** min(attempt - 1, 5)) * random.uniform(0.5, 1.5)  # noqa: S311
            if attempt >= PUSH_ATTEMPTS or time.monotonic() + delay > deadline:
                break
            log.info(f"push to {self.describe()} did not land ({last_reason}); retrying on the new tip in "
                     f"{delay:.1f}s (attempt {attempt + 1} of at most {PUSH_ATTEMPTS})")
            time.sleep(delay)
        raise ResourceError(f"could not push the backup to {self.describe()} ({attempt} attempt(s), at most "
                            f"{PUSH_ATTEMPTS} within {self.bounds.retry_window:.0f}s; last: {last_reason}); "
                            "the backup is not on the branch")

    # -- init --------------------------------------------------------------------------------------
    def archive_count(self, runner: GitRunner, tip: str) -> int:
        """How many archives the branch holds: files in the tip's tree, else backup commits in history."""
        listing = runner.ok("ls-tree", "-r", "--name-only", tip, what="listing the branch's files")
        in_tree = sum(1 for p in listing.splitlines() if is_archive_name(p.rsplit("/", 1)[-1]))
        if in_tree:
            return in_tree
        result = runner.run("fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--filter=tree:0",
                            "--unshallow", "--", self.url, f"+{self.head_ref}:{TIP_REF}", timeout=self.bounds.bulk)
        if not result.ok and "unshallow on a complete repository" not in result.stderr:
            kind, reason = classify(result.stderr)
            raise GitFailure(f"cannot fetch the history of {self.describe()}: {reason}", kind, result.stderr)
        log_out = runner.ok("log", "--first-parent", "--format=%H%x00%B%x01", tip, what="reading the history")
        count = 0
        for record in log_out.split("\x01"):
            _sha, sep, body = record.strip().partition("\x00")
            if sep and isinstance(parse_facts(body), BackupFacts):
                count += 1
        return count

    def init_branch(self, *, force: bool, message_for: Any, tag_message: str,
                    only_if_missing: bool = False) -> InitOutcome:
        """Create the branch with one empty commit, or (force) keep the old tip under a tag and
        replace the branch by a new root commit (README, "`command: init`").

        `only_if_missing` (the first put that needs a version): an existing branch, or one that another
        put created while this one tried, is answered with its tip whatever it holds."""
        runner = self.scratch()
        with open(os.devnull, "rb") as empty:
            runner.ok("hash-object", "-t", "tree", "-w", "--stdin", what="creating the empty tree", stdin=empty)
        for _attempt in range(1, 4):
            tip = self.fetch_tip(runner)
            if tip is not None and only_if_missing:
                return InitOutcome(sha=tip, created=False)
            if tip is None:
                commit = self._commit(runner, EMPTY_TREE, None, message_for(None, None))
                result = self._push(runner, f"{commit}:{self.head_ref}")
                if result.ok:
                    return InitOutcome(sha=commit, created=True)
                kind, reason = classify(result.stderr)
                if kind != "rejected":
                    raise GitFailure(f"cannot push to {self.describe()}: {reason}", kind, result.stderr)
                log.info(f"{self.branch} was created by someone else meanwhile; looking again")
                continue
            count = self.archive_count(runner, tip)
            if count == 0:
                return InitOutcome(sha=tip, created=False)
            if not force:
                raise ResourceError(
                    f"branch {self.branch} of {self.url} already holds backups ({count} archive(s)); init "
                    "refuses to replace it and is not needed: its commits are already the resource's versions. "
                    f"Only to start anew (install then no longer restores them), params.force: true keeps its tip "
                    f"under a tag {ARCHIVE_TAG_PREFIX}<timestamp> and replaces the branch")
            tag = self._archive_tag(runner, tip, tag_message)
            commit = self._commit(runner, EMPTY_TREE, None, message_for(tag, tip))
            result = self._push(runner, f"{commit}:{self.head_ref}", lease=f"{self.head_ref}:{tip}")
            if result.ok:
                return InitOutcome(sha=commit, created=True, archived_as=tag, previous_tip=tip)
            kind, reason = classify(result.stderr)
            if kind != "rejected":
                raise GitFailure(f"cannot push to {self.describe()}: {reason}", kind, result.stderr)
            log.info(f"{self.branch} moved while init ran (its tip stays kept under {tag}); looking again")
        raise ResourceError(f"init: {self.branch} kept moving; nothing was replaced. Try again")

    def _archive_tag(self, runner: GitRunner, tip: str, tag_message: str) -> str:
        """Create and push the annotated tag `k0sctl-backup-archive/<timestamp>` on `tip`."""
        base = f"{ARCHIVE_TAG_PREFIX}{compact_stamp(utc_now())}"
        taken = self.remote_tags(ARCHIVE_TAG_PREFIX)
        for n in range(1, 50):
            name = base if n == 1 else f"{base}-{n}"
            if name in taken:
                continue
            msg_file = runner.cwd / ".git" / "k0sctl-tag-message"
            msg_file.write_text(REDACT(tag_message), encoding="utf-8")
            runner.ok("tag", "-f", "-a", "-F", str(msg_file), name, tip, what="creating the archive tag",
                      env=self._author_env())
            result = self._push(runner, f"refs/tags/{name}:refs/tags/{name}")
            if result.ok:
                log.info(f"kept the old tip {tip[:12]} of {self.branch} under tag {name}")
                return name
            kind, reason = classify(result.stderr)
            if kind != "rejected" and "already exists" not in result.stderr:
                raise GitFailure(f"cannot push tag {name} to {self.url}: {reason}", kind, result.stderr)
        raise ResourceError("could not find a free name for the archive tag")

    # -- check -------------------------------------------------------------------------------------
    def versions_since(self, version: Version | None) -> list[str]:
        """check: the first-parent commits of the branch from `version` on (README, "`check`: list the backups")."""
        tip = self.remote_tip()
        if tip is None:
            log.warn(f"branch {self.branch} does not exist in {self.url} yet; run a put with "
                     "params.command: init (or backup) to create it")
            return []
        if version is None or version.is_none or tip.startswith(version.ref):
            return [tip]
        with CheckCache.open(self.remote()) as cache:
            return cache.versions_since(version.ref, tip)

