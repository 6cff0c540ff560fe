"""The backup repository: one branch, one commit per `init` or `backup`, the archives as files.

Everything here talks to the remote with as little data as git allows, so that no step costs more as
the history grows:

- the branch's tip comes from `git ls-remote`;
- a put fetches the tip commit alone (`--depth 1 --filter=blob:none`: its trees, no archive), builds
  the new tree with a private index and `commit-tree`, and pushes (`push.py` for a backup); a backup
  whose archive is not the newest also reads the commits pushed since its second (`names_used.py`);
- a get fetches the one commit it needs by its sha and then the one blob it names;
- check keeps a small cache (a commits-only partial repository and the first-parent list) in the
  check container's temporary space, so that a check with nothing new is one `git ls-remote`.

Efficient fetching needs a server that speaks git protocol v2 and allows filters (GitHub, GitLab,
Gitea/Forgejo, Bitbucket do; a plain `git` over OpenSSH needs `AcceptEnv GIT_PROTOCOL` in sshd and
`uploadpack.allowFilter`). Without them every operation still works, fetching more.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from k0sctl_resource.config.models import BackupRepo
from k0sctl_resource.gitstore.auth import GitAuth
from k0sctl_resource.gitstore.check_cache import remote_tip
from k0sctl_resource.gitstore.commit_format import (
    BackupFacts,
    CommitInfo,
    compact_stamp,
    is_archive_name,
    parse_facts,
    utc_now,
)
from k0sctl_resource.gitstore.remote import Remote
from k0sctl_resource.gitstore.runner import (
    SHA,
    TIP_REF,
    GitFailure,
    GitResult,
    GitRunner,
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


@dataclass(frozen=True)
class InitOutcome:
    sha: str
    created: bool
    archived_as: str | None = None
    previous_tip: str | None = None


class BackupStore:
    """The backup branch of `backup` (`source.backup`), worked on in the private `workspace`;
    `ssh_known_hosts` as for `GitAuth`."""

    def __init__(self, backup: BackupRepo, workspace: Workspace, *, ssh_known_hosts: str | None) -> None:
        self.backup = backup
        forget_inherited_git_env()
        self.workspace = workspace
        self.auth = GitAuth(backup, workspace, ssh_known_hosts=ssh_known_hosts)
        self._scratch: GitRunner | None = None

    @functools.cached_property
    def remote(self) -> Remote:
        """The branch and how to reach it (its environment is built on first use)."""
        return Remote(url=self.auth.url, branch=self.backup.branch, env=self.auth.env, bounds=self.auth.bounds)

    # -- remote state ------------------------------------------------------------------------------
    def remote_tip(self) -> str | None:
        """The branch's tip on the remote, or None when the branch does not exist."""
        return remote_tip(self.remote, self.workspace.path)

    def remote_tags(self, prefix: str) -> set[str]:
        runner = GitRunner(self.workspace.path, self.remote.env)
        out = runner.ok("ls-remote", "--tags", "--", self.remote.url, f"refs/tags/{prefix}*",
                        what=f"cannot read {self.remote.url}", timeout=self.remote.bounds.call)
        return {line.partition("\t")[2].removeprefix("refs/tags/").removesuffix("^{}")
                for line in out.splitlines() if "\t" in line}

    # -- a private scratch repository --------------------------------------------------------------
    def scratch(self) -> GitRunner:
        if self._scratch is None:
            path = self.workspace.dir("backup-repo")
            init_repo(path, bare=False)
            self._scratch = GitRunner(path, self.remote.env)
        return self._scratch

    def fetch_tip(self, runner: GitRunner) -> str | None:
        """Fetch the branch's tip commit with its trees (no blobs) into `runner`'s repository."""
        return self.fetch_branch(runner, self.remote, TIP_REF, ("--depth=1", "--filter=blob:none"))

    @staticmethod
    def fetch_branch(runner: GitRunner, remote: Remote, local_ref: str, options: tuple[str, ...]) -> str | None:
        """Fetch `remote`'s branch into `local_ref` of `runner`'s repository as `options` say; its tip, or None
        when the branch does not exist."""
        result = runner.fetch(remote.url, f"+{remote.head_ref}:{local_ref}", options=options,
                              timeout=remote.bounds.call)
        if not result.ok:
            failure = result.failure(f"cannot fetch {remote.describe()}")
            if failure.kind == "missing_ref":
                return None
            raise failure
        return runner.ok("rev-parse", "--verify", f"{local_ref}^{{commit}}", what="reading the fetched tip").strip()

    def fetch_commit(self, runner: GitRunner, sha: str, *, with_trees: bool = True) -> None:
        """Fetch one commit by its sha (and its trees unless `with_trees` is false); no blobs."""
        if not SHA.match(sha):
            raise ResourceError(f"version {sha!r} is not a full commit sha")
        flt = "--filter=blob:none" if with_trees else "--filter=tree:0"
        result = runner.fetch(self.remote.url, sha, options=("--depth=1", flt), timeout=self.remote.bounds.call)
        if result.ok:
            return
        failure = result.failure(f"cannot fetch {sha} from {self.remote.url}")
        if failure.kind == "missing_object":
            raise GitFailure(f"version {sha} no longer exists in {self.remote.url} (the branch was rewritten "
                             "and the commit removed)", failure.kind, result.stderr)
        if failure.kind != "unadvertised":
            raise failure
        # Protocol v0 server: fetch the branch and the archive tags in full, then look for the commit.
        log.warn(f"{self.remote.url} does not allow fetching a single commit (git protocol v2 is off); "
                 "fetching the whole branch instead")
        result = runner.fetch(self.remote.url, f"+{self.remote.head_ref}:refs/k0sctl/all/head",
                              f"+refs/tags/{ARCHIVE_TAG_PREFIX}*:refs/k0sctl/all/tags/*",
                              timeout=self.remote.bounds.bulk)
        if not result.ok:
            failure = result.failure(f"cannot fetch {self.remote.describe()}")
            if failure.kind != "missing_ref":
                raise failure
        if not runner.run("cat-file", "-e", f"{sha}^{{commit}}").ok:
            raise GitFailure(f"version {sha} no longer exists in {self.remote.url}", "missing_object")

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
        if not result.ok or not SHA.match(blob):
            raise ResourceError(f"commit {sha} has no file {path}")
        fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as handle:
            got = runner.run("cat-file", "blob", blob, output=handle, timeout=self.remote.bounds.bulk)
        if not got.ok:
            dst.unlink(missing_ok=True)
            raise got.failure(f"cannot fetch {path} of {sha} from {self.remote.url}")
        return objects_size(runner.cwd / ".git")

    # -- committing and pushing (a backup in push.py, init below) -----------------------------------
    def index_env(self, runner: GitRunner, name: str) -> dict[str, str]:
        index = runner.cwd / ".git" / f"k0sctl-index-{name}"
        index.unlink(missing_ok=True)
        return {"GIT_INDEX_FILE": str(index)}

    def _author_env(self) -> dict[str, str]:
        user = self.backup.git_user
        return {"GIT_AUTHOR_NAME": user.name, "GIT_AUTHOR_EMAIL": user.email,
                "GIT_COMMITTER_NAME": user.name, "GIT_COMMITTER_EMAIL": user.email}

    def commit_tree(self, runner: GitRunner, tree: str, parent: str | None, message: str) -> str:
        msg_file = runner.cwd / ".git" / "k0sctl-message"
        msg_file.write_text(message, encoding="utf-8")
        args = ["commit-tree", tree, "-F", str(msg_file)]
        if parent is not None:
            args[2:2] = ["-p", parent]
        sha = runner.ok(*args, what="creating the commit", env=self._author_env()).strip()
        if not SHA.match(sha):
            raise ResourceError(f"git commit-tree returned no commit ({sha[:60]!r})")
        return sha

    def push_ref(self, runner: GitRunner, refspec: str, *, lease: str | None = None) -> GitResult:
        src = refspec.split(":", 1)[0].lstrip("+")
        if not src:  # an empty source would delete the remote ref
            raise ResourceError("internal error: refusing to push an empty source")
        args = ["push", "--porcelain", "--no-verify"]
        if lease is not None:
            args.append(f"--force-with-lease={lease}")
        result = runner.run(*args, "--", self.remote.url, refspec, timeout=self.remote.bounds.bulk)
        # --porcelain reports a rejected ref on stdout; classify() reads both
        return GitResult(code=result.code, stdout=result.stdout, stderr=result.stderr + "\n" + result.stdout)

    # -- init --------------------------------------------------------------------------------------
    def archive_count(self, runner: GitRunner, tip: str) -> int:
        """How many archives the branch holds: files in the tip's tree, else backup commits in history."""
        listing = runner.ok("ls-tree", "-r", "--name-only", tip, what="listing the branch's files")
        in_tree = sum(1 for p in listing.splitlines() if is_archive_name(p.rsplit("/", 1)[-1]))
        if in_tree:
            return in_tree
        result = runner.fetch(self.remote.url, f"+{self.remote.head_ref}:{TIP_REF}",
                              options=("--filter=tree:0", "--unshallow"), timeout=self.remote.bounds.bulk)
        if not result.ok and "unshallow on a complete repository" not in result.stderr:
            raise result.failure(f"cannot fetch the history of {self.remote.describe()}")
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
                commit = self.commit_tree(runner, EMPTY_TREE, None, message_for(None, None))
                result = self.push_ref(runner, f"{commit}:{self.remote.head_ref}")
                if result.ok:
                    return InitOutcome(sha=commit, created=True)
                if (failure := result.failure(f"cannot push to {self.remote.describe()}")).kind != "rejected":
                    raise failure
                log.info(f"{self.remote.branch} was created by someone else meanwhile; looking again")
                continue
            count = self.archive_count(runner, tip)
            if count == 0:
                return InitOutcome(sha=tip, created=False)
            if not force:
                raise ResourceError(
                    f"{self.remote.describe()} already holds backups ({count} archive(s)); init "
                    "refuses to replace it and is not needed: its commits are already the resource's versions. "
                    f"Only to start anew (install then no longer restores them), params.force: true keeps its tip "
                    f"under a tag {ARCHIVE_TAG_PREFIX}<timestamp> and replaces the branch")
            tag = self._archive_tag(runner, tip, tag_message)
            commit = self.commit_tree(runner, EMPTY_TREE, None, message_for(tag, tip))
            result = self.push_ref(runner, f"{commit}:{self.remote.head_ref}", lease=f"{self.remote.head_ref}:{tip}")
            if result.ok:
                return InitOutcome(sha=commit, created=True, archived_as=tag, previous_tip=tip)
            if (failure := result.failure(f"cannot push to {self.remote.describe()}")).kind != "rejected":
                raise failure
            log.info(f"{self.remote.branch} moved while init ran (its tip stays kept under {tag}); looking again")
        raise ResourceError(f"init: {self.remote.branch} kept moving; nothing was replaced. Try again")

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
            result = self.push_ref(runner, f"refs/tags/{name}:refs/tags/{name}")
            if result.ok:
                log.info(f"kept the old tip {tip[:12]} of {self.remote.branch} under tag {name}")
                return name
            failure = result.failure(f"cannot push tag {name} to {self.remote.url}")
            if failure.kind != "rejected" and "already exists" not in result.stderr:
                raise failure
        raise ResourceError("could not find a free name for the archive tag")
