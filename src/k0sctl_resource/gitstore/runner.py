"""Running git: commands in one directory with the auth environment, their failures sorted by kind, and
the private repositories the resource keeps for plumbing.

GitPython (the command layer and `Repo.init`) is imported by the functions that run git, not by this
module, so that importing the resource's modules never pays for it (nor for the `git version` call
GitPython makes when it is imported).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from k0sctl_resource.runtime.errors import ResourceError
from k0sctl_resource.runtime.redact import REDACT

if TYPE_CHECKING:
    import git

NETWORK_TIMEOUT = 1800.0
LOCAL_TIMEOUT = 600.0
TIP_REF = "refs/k0sctl/tip"  # where a private repository keeps the remote branch's tip it fetched

# Variables that would point git at another repository, index or config than the one we name: a
# resource (or a task running it inside a git hook) must not inherit them.
_INHERITED_GIT_VARS = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
                       "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_NAMESPACE", "GIT_COMMON_DIR",
                       "GIT_CONFIG_PARAMETERS", "GIT_PREFIX", "GIT_SHALLOW_FILE", "GIT_QUARANTINE_PATH")


def forget_inherited_git_env() -> None:
    """Remove the variables of `_INHERITED_GIT_VARS` from this process's environment."""
    for name in _INHERITED_GIT_VARS:
        os.environ.pop(name, None)


@dataclass
class GitResult:
    code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.code == 0


class GitFailure(ResourceError):
    """A git command failed; `kind` says why (auth, host_key, not_found, network, missing_ref,
    missing_object, rejected, unadvertised, timeout, other)."""

    def __init__(self, message: str, kind: str, stderr: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.stderr = stderr


def classify(stderr: str) -> tuple[str, str]:
    """(kind, a short reason) for git's stderr, in git's C locale."""
    text = REDACT(stderr)
    low = text.lower()
    rules: tuple[tuple[str, tuple[str, ...], str], ...] = (
        ("host_key", ("host key verification failed", "remote host identification has changed",
                      "no ed25519 host key is known", "no rsa host key is known"),
         "the server's SSH host key is not in source.ssh_known_hosts or does not match it"),
        ("auth", ("permission denied (publickey", "permission denied, please try again",
                  "authentication failed", "could not read username", "could not read password",
                  "invalid username or password", "http basic: access denied", "the requested url returned error: 401",
                  "the requested url returned error: 403", "access denied", "too many authentication failures"),
         "authentication failed (check source.backup.private_key or source.backup.username/password)"),
        ("unadvertised", ("does not allow request for unadvertised object",),
         "the server does not allow fetching a single commit"),
        ("missing_object", ("not our ref", "no such remote ref", "bad object", "unable to read tree"),
         "the object does not exist in the repository"),
        ("missing_ref", ("couldn't find remote ref",), "the branch does not exist"),
        ("not_found", ("does not appear to be a git repository", "repository not found", "not found",
                       "no such file or directory", "does not exist", "not a git repository"),
         "the repository does not exist or this key/user may not read it"),
        ("network", ("could not resolve host", "connection refused", "connection timed out", "timed out",
                     "network is unreachable", "no route to host", "connection reset", "connection closed",
                     "could not connect", "failed to connect", "unable to access", "ssl", "tls",
                     "kex_exchange_identification", "broken pipe", "early eof", "the remote end hung up"),
         "the repository could not be reached"),
        ("rejected", ("[rejected]", "non-fast-forward", "fetch first", "stale info", "cannot lock ref",
                      "failed to update ref", "failed to lock", "incorrect old value", "! [remote rejected]"),
         "the branch moved (push rejected)"),
    )
    for kind, needles, reason in rules:
        if any(n in low for n in needles):
            return kind, reason
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("hint:")]
    last = lines[-1] if lines else "git failed"
    last = re.sub(r"^(fatal|error|remote):\s*", "", last)
    return "other", last[:200]


class GitRunner:
    """git (through GitPython's command layer) in one directory, with the auth environment."""

    def __init__(self, cwd: Path, env: Mapping[str, str]) -> None:
        import git

        self.cwd = cwd
        self.env = dict(env)
        self._git: git.cmd.Git = git.cmd.Git(str(cwd))

    def run(self, *args: str, env: Mapping[str, str] | None = None, stdin: BinaryIO | None = None,
            output: BinaryIO | None = None, timeout: float = LOCAL_TIMEOUT) -> GitResult:
        import git

        merged = dict(self.env)
        if env:
            merged.update(env)
        try:
            result: Any = self._git.execute(
                ["git", *args], istream=stdin, output_stream=output, with_extended_output=True,
                with_exceptions=False, stdout_as_string=output is None, kill_after_timeout=timeout,
                env=merged,
            )
        except git.exc.GitCommandNotFound:
            raise ResourceError("git is not installed (not found on PATH)") from None
        code: int | None = result[0]
        out: Any = result[1]
        err: Any = result[2]
        out_text = out if isinstance(out, str) else ""
        err_text = err.decode("utf-8", "replace") if isinstance(err, bytes) else str(err or "")
        if code is None:
            code = -1
        if code < 0 and "timed out" not in err_text.lower():
            err_text += f"\ngit was stopped after {timeout:.0f}s (timed out)"
        return GitResult(code=int(code), stdout=out_text, stderr=err_text)

    def ok(self, *args: str, what: str, env: Mapping[str, str] | None = None,
           timeout: float = LOCAL_TIMEOUT, stdin: BinaryIO | None = None) -> str:
        """Run and return stdout; a failure raises GitFailure naming `what`."""
        result = self.run(*args, env=env, timeout=timeout, stdin=stdin)
        if not result.ok:
            kind, reason = classify(result.stderr)
            raise GitFailure(f"{what}: {reason}", kind, result.stderr)
        return result.stdout


def init_repo(path: Path, *, bare: bool) -> None:
    """A fresh local repository for plumbing (never checked out), quiet and with no automatic gc."""
    import git

    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    repo = git.Repo.init(str(path), bare=bare)
    try:
        with repo.config_writer() as cfg:
            cfg.set_value("gc", "auto", "0")
            cfg.set_value("maintenance", "auto", "false")
            cfg.set_value("core", "logAllRefUpdates", "false")
            cfg.set_value("fetch", "writeCommitGraph", "false")
            cfg.set_value("advice", "detachedHead", "false")
    finally:
        repo.close()


def objects_size(git_dir: Path) -> int:
    """Bytes in a repository's object store (what was fetched into a fresh repository)."""
    total = 0
    for root, _dirs, files in os.walk(git_dir / "objects"):
        for name in files:
            with contextlib.suppress(OSError):
                total += (Path(root) / name).stat().st_size
    return total
