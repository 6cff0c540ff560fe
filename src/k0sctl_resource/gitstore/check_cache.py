"""What `check` runs: the branch's tip by one `git ls-remote` and, when the version it is given is not the
tip, the cache behind it: a commits-only partial repository and the branch's first-parent list, kept in
the check container's temporary space so that a check fetches only what is new since the last one.

check runs every minute for every resource: this module imports only what that path needs (not the
store, not `hashlib` until a cache is opened)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from k0sctl_resource.config.models import Version
from k0sctl_resource.gitstore.remote import Remote
from k0sctl_resource.gitstore.runner import SHA, TIP_REF, GitFailure, GitRunner, init_repo
from k0sctl_resource.runtime import log
from k0sctl_resource.runtime.cache_dir import lock, private_fallback, read_private, trusted_path

CACHE_DIR_NAME = "k0sctl-check-cache"
CHECK_FIRST_DEPTH = 32


@dataclass
class CheckState:
    tip: str | None = None
    chain: list[str] = field(default_factory=list)  # first-parent commits, oldest first, ending at tip
    complete: bool = False  # the chain starts at a root commit


def cache_root() -> Path:
    return Path(tempfile.gettempdir()) / CACHE_DIR_NAME


def remote_tip(remote: Remote, cwd: Path) -> str | None:
    """The branch's tip on the remote (one `git ls-remote`, run in `cwd`), or None when the branch does
    not exist."""
    runner = GitRunner(cwd, remote.env)
    result = runner.run("ls-remote", "--exit-code", "--", remote.url, remote.head_ref, timeout=remote.bounds.call)
    if result.code == 2:
        return None
    if not result.ok:
        raise result.failure(f"cannot read {remote.url}")
    for line in result.stdout.splitlines():
        sha, _, ref = line.partition("\t")
        if ref.strip() == remote.head_ref and SHA.match(sha.strip()):
            return sha.strip()
    return None


def versions_since(remote: Remote, version: Version | None, cwd: Path) -> list[str]:
    """check: the first-parent commits of the branch from `version` on (README, "`check`: list the
    backups"). A tip that has not moved since `version` costs one `git ls-remote`; otherwise the cache
    (`CheckCache`) answers."""
    tip = remote_tip(remote, cwd)
    if tip is None:
        log.warn(f"branch {remote.branch} does not exist in {remote.url} yet; run a put with "
                 "params.command: init (or backup) to create it")
        return []
    if version is None or version.is_none or tip.startswith(version.ref):
        return [tip]
    with CheckCache.open(remote) as cache:
        return cache.versions_since(version.ref, tip)


class CheckCache:
    """A commits-only partial repository and the branch's first-parent list, per (uri, branch).

    Lives in `$TMPDIR/k0sctl-check-cache/<sha256 of uri and branch>` (the check container's
    temporary space); holds no credential (the URL in it is the credential-free one). Used only when
    every level is this user's private directory (`cache_dir.trusted_path`) and its lock is had within
    the bound of one git network call; otherwise the check works in a fresh private directory.
    """

    def __init__(self, remote: Remote, path: Path) -> None:
        self.remote = remote
        self.path = path
        self.repo = path / "repo.git"
        self.state_file = path / "state.json"
        self.runner = GitRunner(self.repo, remote.env)

    @classmethod
    @contextlib.contextmanager
    def open(cls, remote: Remote) -> Iterator[CheckCache]:
        import hashlib  # here: loading OpenSSL costs milliseconds; a check whose tip has not moved never comes here

        key = hashlib.sha256(f"{remote.url}\n{remote.branch}".encode()).hexdigest()[:32]
        path, why = trusted_path(cache_root(), key)
        wait = remote.bounds.call
        held = lock(path / "lock", wait) if path is not None else None
        if path is None or held is None:
            why = why or f"its lock was held by another check for more than {wait:.0f}s"
            log.warn(f"check cache not used: {why}; this check uses a fresh private directory")
            with private_fallback(f"{CACHE_DIR_NAME}-") as fresh:
                yield cls(remote, fresh)
            return
        try:
            yield cls(remote, path)
        finally:
            os.close(held)

    # state ---------------------------------------------------------------------------------------
    def load(self) -> CheckState:
        try:
            raw = json.loads(read_private(self.state_file) or "null")
            state = CheckState(tip=raw["tip"], chain=list(raw["chain"]), complete=bool(raw["complete"]))
            if (state.tip and state.chain and state.chain[-1] == state.tip
                    and (self.repo / "HEAD").exists()):
                return state
        except (OSError, ValueError, KeyError, TypeError):
            pass
        return CheckState()

    def save(self, state: CheckState) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps({"tip": state.tip, "chain": state.chain, "complete": state.complete}))
        os.replace(tmp, self.state_file)

    def reset(self) -> None:
        shutil.rmtree(self.repo, ignore_errors=True)
        self.state_file.unlink(missing_ok=True)

    # fetching ------------------------------------------------------------------------------------
    def _fetch(self, *extra: str) -> None:
        """Fetch the branch's commits (no trees) into TIP_REF: those the cache lacks, or as `extra` says."""
        result = self.runner.fetch(self.remote.url, f"+{self.remote.head_ref}:{TIP_REF}",
                                   options=("--filter=tree:0", *extra), timeout=self.remote.bounds.call)
        if not result.ok:
            raise result.failure(f"cannot fetch {self.remote.describe()}")

    def _shallow(self) -> set[str]:
        try:
            return set((self.repo / "shallow").read_text(encoding="ascii").split())
        except OSError:
            return set()

    def _chain_from(self, tip: str) -> CheckState:
        """The first-parent chain of `tip` (a commit, or TIP_REF) as far as the cache has it."""
        chain = self.runner.ok("rev-list", "--first-parent", "--reverse", tip, what="walking the history").split()
        if not chain:
            raise GitFailure(f"walking the history: no commit at {tip}", "other")
        return CheckState(tip=chain[-1], chain=chain, complete=chain[0] not in self._shallow())

    def _extend(self, state: CheckState) -> CheckState | None:
        """`state` brought up to the fetched TIP_REF: itself when the tip has not moved, extended when its
        tip is the first parent of the first new commit, None when the branch was rewritten. One git
        command when something is new: the new first-parent commits with their parents."""
        assert state.tip is not None
        out = self.runner.ok("rev-list", "--first-parent", "--reverse", "--parents", f"{state.tip}..{TIP_REF}",
                             what="walking the history")
        rows = [line.split() for line in out.splitlines() if line.strip()]
        if not rows:  # TIP_REF is the cached tip, or one of its ancestors (the branch was reset back)
            tip = self.runner.ok("rev-parse", "--verify", TIP_REF, what="reading the cache").strip()
            return state if tip == state.tip else None
        if len(rows[0]) < 2 or rows[0][1] != state.tip:
            return None
        newer = [row[0] for row in rows]
        return CheckState(tip=newer[-1], chain=[*state.chain, *newer], complete=state.complete)

    def refresh(self, state: CheckState) -> CheckState:
        if state.tip is None or not (self.repo / "HEAD").exists():
            self.reset()
            init_repo(self.repo, bare=True)
            self._fetch(f"--depth={CHECK_FIRST_DEPTH}")
            return self._chain_from(TIP_REF)
        self._fetch()  # only what is new since the cached tip
        extended = self._extend(state)
        return extended if extended is not None else self._chain_from(TIP_REF)

    def deepen(self, state: CheckState) -> CheckState:
        depth = max(CHECK_FIRST_DEPTH, len(state.chain))
        assert state.tip is not None
        self._fetch(f"--deepen={depth}")
        return self._chain_from(state.tip)

    def versions_since(self, ref: str, tip: str) -> list[str]:
        state = self.load()
        for attempt in (1, 2):
            try:
                if state.tip != tip:
                    state = self.refresh(state)
                    self.save(state)
                while not any(sha.startswith(ref) for sha in state.chain) and not state.complete:
                    state = self.deepen(state)
                    self.save(state)
                break
            except GitFailure as exc:
                if exc.kind not in ("other", "missing_object") or attempt == 2:
                    raise
                log.info("check cache was unusable; rebuilding it")
                self.reset()
                state = CheckState()
        found = [i for i, sha in enumerate(state.chain) if sha.startswith(ref)]
        if found:  # a full sha, or a unique abbreviation of one someone pinned
            return state.chain[found[-1]:]
        log.info(f"version {ref[:12]} is no longer on {self.remote.branch} (the branch was rewritten); "
                 "answering its newest commit")
        return [state.chain[-1] if state.chain else tip]
