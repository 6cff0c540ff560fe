"""Running git: commands in one directory with the auth environment, their failures sorted by kind, and
the private repositories the resource keeps for plumbing.

Every git runs in its own process group with a hard wall bound: when it passes, the whole group (git,
git-remote-https, ssh) is killed, so that no grandchild keeps a pipe open and no wait outlives its
bound; an abort (`runtime.lifecycle.Aborted`) unwinds through the same `finally` and kills the group too.

git's environment is built here, not inherited: no `GIT_*` variable of the caller reaches it but the TLS
trust ones (`GIT_SSL_CAINFO`, `GIT_SSL_CAPATH`), git looks for no repository above the directory it
runs in (`GIT_CEILING_DIRECTORIES`), and messages are in the C locale for `classify`.

Nothing here imports GitPython: every git is a plain subprocess.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from k0sctl_resource.runtime import lifecycle, watchdog
from k0sctl_resource.runtime.errors import ResourceError
from k0sctl_resource.runtime.redact import REDACT

LOCAL_TIMEOUT = 600.0
TIP_REF = "refs/k0sctl/tip"  # where a private repository keeps the remote branch's tip it fetched
SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")  # a full object name (SHA-1 or SHA-256)

# Variables that would point git at another repository, index or config than the one we name: a
# resource (or a task running it inside a git hook) must not inherit them.
_INHERITED_GIT_VARS = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
                       "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_NAMESPACE", "GIT_COMMON_DIR",
                       "GIT_CONFIG_PARAMETERS", "GIT_PREFIX", "GIT_SHALLOW_FILE", "GIT_QUARANTINE_PATH")
# The only `GIT_*` variables of the caller that git may see: which CA certificates to trust.
_KEPT_GIT_VARS = ("GIT_SSL_CAINFO", "GIT_SSL_CAPATH")



def forget_inherited_git_env() -> None:
    """Remove the variables of `_INHERITED_GIT_VARS` from this process's environment."""
    for name in _INHERITED_GIT_VARS:
        os.environ.pop(name, None)


def git_environment(cwd: Path, *layers: Mapping[str, str] | None) -> dict[str, str]:
    """The environment of one git command: the caller's without its `GIT_*`/askpass variables, then
    `layers` in order."""
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith("GIT_") and k not in _KEPT_GIT_VARS) and k not in ("SSH_ASKPASS",)}
    # No system or global configuration (`core.sshCommand`, `url.*.insteadOf`, hooks, helpers of
    # anyone else), no prompt, no repository above `cwd`, messages in the C locale for `classify`.
    env.update(LC_ALL="C", LANGUAGE="C", GIT_CEILING_DIRECTORIES=str(cwd.parent), GIT_CONFIG_NOSYSTEM="1",
               GIT_CONFIG_GLOBAL=os.devnull, GIT_TERMINAL_PROMPT="0")
    for layer in layers:
        if layer:
            env.update(layer)
    return env


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


@dataclass
class GitResult:
    code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.code == 0

    def failure(self, what: str) -> GitFailure:
        """The failure of this command: `<what>: <reason>`, with the kind `classify` reads in stderr."""
        kind, reason = classify(self.stderr)
        return GitFailure(f"{what}: {reason}", kind, self.stderr)


class GitFailure(ResourceError):
    """A git command failed; `kind` says why (timeout, host_key, auth, unadvertised, missing_object,
    missing_ref, not_found, network, refused, rejected, other)."""

    def __init__(self, message: str, kind: str, stderr: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.stderr = stderr


def classify(stderr: str) -> tuple[str, str]:
    """(kind, a short reason) for git's stderr, in git's C locale."""
    text = REDACT(stderr)
    low = text.lower()
    rules: tuple[tuple[str, tuple[str, ...], str], ...] = (
        ("timeout", ("git was stopped after", "operation too slow", "timed out", "timeout, server"),
         "no answer in time (bounded by source.backup.timeout)"),
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
        ("refused", ("hook declined", "protected branch", "denying non-fast-forward"),
         "the server refused the push (a hook or branch protection declined it)"),
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


KEY_FD_VAR = "K0SCTL_RESOURCE_GIT_KEY_FD"  # the descriptor of the SSH key in one git call (see auth)


class GitEnv(dict[str, str]):
    """git's environment against the backup repository, and the SSH key that each call gets in a memory
    file of its own (`key_file`), never in a named file."""

    def __init__(self, env: Mapping[str, str], *, ssh_key: bytes | None = None) -> None:
        super().__init__(env)
        self.ssh_key = ssh_key


@contextlib.contextmanager
def key_file(key: bytes) -> Iterator[int]:
    """`key` in an anonymous memory file (0600), open for the block: `/proc/self/fd/N` in a child that
    inherits it (`pass_fds`). It is in no directory, and gone when the block ends or the step dies."""
    fd = os.memfd_create("k0sctl-resource-key", os.MFD_CLOEXEC)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, key)
        yield fd
    finally:
        os.close(fd)


class GitRunner:
    """git in one directory, with the auth environment."""

    def __init__(self, cwd: Path, env: Mapping[str, str]) -> None:
        self.cwd = cwd
        self.env = dict(env)
        self.ssh_key = env.ssh_key if isinstance(env, GitEnv) else None

    def run(self, *args: str, env: Mapping[str, str] | None = None, stdin: BinaryIO | None = None,
            output: BinaryIO | None = None, timeout: float = LOCAL_TIMEOUT) -> GitResult:
        """Run `git *args`; a run that passes `timeout` seconds is killed with its process group."""
        with contextlib.ExitStack() as stack:
            fds: tuple[int, ...] = ()
            if self.ssh_key is not None:
                fds = (stack.enter_context(key_file(self.ssh_key)),)
                env = {**(env or {}), KEY_FD_VAR: str(fds[0])}
            return self._run(args, env, stdin, output, timeout, fds)

    def _run(self, args: Sequence[str], env: Mapping[str, str] | None, stdin: BinaryIO | None,
             output: BinaryIO | None, timeout: float, fds: tuple[int, ...]) -> GitResult:
        try:
            proc = subprocess.Popen(["git", *args], cwd=self.cwd, env=git_environment(self.cwd, self.env, env),
                                    stdin=stdin if stdin is not None else subprocess.DEVNULL,
                                    stdout=output if output is not None else subprocess.PIPE,
                                    stderr=subprocess.PIPE, start_new_session=True, pass_fds=fds,
                                    preexec_fn=lifecycle.child_setup)  # noqa: PLW1509 - see lifecycle.child_setup
        except FileNotFoundError:
            raise ResourceError("git is not installed (not found on PATH)") from None
        watchdog.watch_group(proc.pid)
        timed_out = False
        try:
            try:
                out, err = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill_group(proc)
                out, err = proc.communicate()
        finally:
            _kill_group(proc)  # nothing of this git outlives it (a helper that stayed behind)
            watchdog.forget(proc.pid)
        out_text = out.decode("utf-8", "replace") if out else ""
        err_text = err.decode("utf-8", "replace") if err else ""
        if timed_out:
            err_text += f"\ngit was stopped after {timeout:.0f}s (timed out)"
        return GitResult(code=-1 if timed_out else proc.returncode, stdout=out_text, stderr=err_text)

    def ok(self, *args: str, what: str, env: Mapping[str, str] | None = None,
           timeout: float = LOCAL_TIMEOUT, stdin: BinaryIO | None = None) -> str:
        """Run and return stdout; a failure raises GitFailure naming `what`."""
        result = self.run(*args, env=env, timeout=timeout, stdin=stdin)
        if not result.ok:
            raise result.failure(what)
        return result.stdout

    def fetch(self, url: str, *refspecs: str, options: Sequence[str] = (), timeout: float) -> GitResult:
        """`git fetch` of `refspecs` from `url` (data, after `--`): quiet, no tags, no FETCH_HEAD; `options`
        (depth, filter) before it."""
        return self.run("fetch", "--quiet", "--no-tags", "--no-write-fetch-head", *options, "--", url, *refspecs,
                        timeout=timeout)


# Every git process in our private repositories streams an archive instead of holding it whole, so
# that memory stays flat in the archive's size (docs/performance.md):
# - core.bigFileThreshold: a blob above it is streamed by `hash-object -w` (straight into a pack, no
#   loose object), by index-pack (a fetch), pack-objects (a push) and `cat-file blob` (git's default,
#   512 MiB, holds a 500 MB archive in memory, twice for hash-object);
# - core.packedGitWindowSize/Limit: packs are read through mmap windows, by default up to 1 GiB each
#   and 8 GiB in all, and every mapped page that was read counts in the process's RSS;
# - core.compression 0: the archives are age-encrypted (or gzip) and do not compress; zlib at any
#   level spends ~30 s per GB finding that out. Commits and trees are a few hundred bytes.
STREAMING_CONFIG = (("core", "bigFileThreshold", "1m"), ("core", "packedGitWindowSize", "1m"),
                    ("core", "packedGitLimit", "16m"), ("core", "compression", "0"))


def init_repo(path: Path, *, bare: bool) -> None:
    """A fresh local repository for plumbing (never checked out), quiet, with no automatic gc, no
    template (so no hooks), that streams big blobs (`STREAMING_CONFIG`)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    args = ["init", "--quiet", "--template=", *(["--bare"] if bare else []), "."]
    GitRunner(path, {}).ok(*args, what="creating a private repository")
    config = path / ("config" if bare else ".git/config")
    with open(config, "a", encoding="utf-8") as handle:
        handle.write("[gc]\n\tauto = 0\n[maintenance]\n\tauto = false\n[core]\n\tlogAllRefUpdates = false\n"
                     "[fetch]\n\twriteCommitGraph = false\n[advice]\n\tdetachedHead = false\n")
        handle.writelines(f"[{section}]\n\t{key} = {value}\n" for section, key, value in STREAMING_CONFIG)


def objects_size(git_dir: Path) -> int:
    """Bytes in a repository's object store (what was fetched into a fresh repository)."""
    total = 0
    for root, _dirs, files in os.walk(git_dir / "objects"):
        for name in files:
            with contextlib.suppress(OSError):
                total += (Path(root) / name).stat().st_size
    return total
