"""The one way this resource runs k0sctl.

- finds `k0sctl` on PATH and learns its version once (`k0sctl version`);
- builds only flags that version has (`versions.command_line`);
- runs it with a private cache/log directory and the SSH environment of `sshauth`, streaming every
  output line live to stderr through the redactor and keeping the lines for callers that parse them;
- bounds a run by `source.k0sctl.timeout` (SIGTERM, then SIGKILL, children included) and stops it
  the same way when Concourse aborts the step (see `k0sctl.process`);
- gives k0sctl an environment without git's credentials (the backup repository's key is in no file at
  all, see `gitstore.auth`);
- prints the tail of k0sctl's own log file when a run fails, except for a failure the caller expects
  and reports itself in one calm line (`quiet_if`: backup_first on a cluster with no running controller).
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from k0sctl_resource.config.models import K0sctlOptions
from k0sctl_resource.k0sctl.output import HeldErrors
from k0sctl_resource.k0sctl.transcript import DryRunPlan, Transcript
from k0sctl_resource.k0sctl.versions import Invocation, K0sctlVersion, command_line
from k0sctl_resource.runtime import lifecycle, log, watchdog
from k0sctl_resource.runtime.errors import ResourceError

LOG_TAIL_LINES = 25
MAX_KEPT_LINES = 20000

_GIT_VARS = ("GIT_", "K0SCTL_RESOURCE_GIT_")


@dataclass
class RunResult:
    argv: list[str]
    returncode: int
    lines: list[str]
    duration_s: float
    timed_out: bool = False
    aborted: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out and not self.aborted

    @functools.cached_property
    def transcript(self) -> Transcript:
        """The run's output, read (in either of k0sctl's formats) by the one reader, `k0sctl.transcript`."""
        return Transcript(self.lines)

    def dry_run_plan(self) -> DryRunPlan:
        """k0sctl's dry-run summary: whether anything would change, the planned actions, running controllers."""
        plan = self.transcript.dry_run()
        if plan is None:
            raise ResourceError("k0sctl printed no dry-run summary; cannot tell whether the cluster would change")
        return plan

    def leftovers(self) -> list[str]:
        """Backup files k0sctl could not remove from a controller (it warns and goes on).

        k0sctl uploads the archive for a restore, and writes it for a backup, into a temporary directory on
        the leader and removes it afterwards; when that removal fails, a copy of the cluster's secrets stays
        on the host. The caller reports these paths so an operator can remove them.
        """
        return self.transcript.leftovers()

    def warn_leftovers(self) -> int:
        """Say loudly where k0sctl left a copy of an archive on a controller; return how many."""
        leftovers = self.leftovers()
        for place in leftovers:
            log.warn(f"k0sctl could not remove the backup archive {place}; it holds the cluster's CA keys and "
                     "Secrets: remove it by hand")
        for place in self.transcript.temp_dirs():  # reported, not counted: the archive in it was removed
            log.info(f"k0sctl left the temporary folder {place} on the host (the archive in it was removed)")
        return len(leftovers)

    def reason(self) -> str:
        """Why the run failed, in one line: k0sctl's own reason, else its exit code."""
        return self.last_error() or f"exit code {self.returncode}"

    def failure(self, what: str) -> ResourceError:
        """The error of a failed `k0sctl <what>`: `k0sctl <what> failed: <reason>`."""
        return ResourceError(f"k0sctl {what} failed: {self.reason()}")

    def last_error(self) -> str | None:
        """k0sctl's own reason for a failure (its last fatal/error line, without its log file's path: that
        is inside the step's private directory, which is gone when the step ends)."""
        return self.transcript.last_error()


def find_binary() -> str:
    found = shutil.which("k0sctl")
    if found is None:
        raise ResourceError("k0sctl not found on PATH (the image installs it at /usr/local/bin/k0sctl)")
    return found


class K0sctl:
    """Runs k0sctl inside one step's private workspace."""

    def __init__(self, options: K0sctlOptions, private_dir: Path, env: Mapping[str, str] | None = None) -> None:
        self.options = options
        self.binary = find_binary()
        self.cache_dir = private_dir / "cache"
        self.cache_dir.mkdir(mode=0o700, exist_ok=True)
        self.workdir = private_dir
        self._extra_env = dict(env or {})
        self._version: K0sctlVersion | None = None

    # -- environment -------------------------------------------------------------------------------
    @property
    def known_hosts(self) -> Path | None:
        """The private known_hosts file k0sctl checks host keys against (and trusts new ones into)."""
        path = self._extra_env.get("SSH_KNOWN_HOSTS")
        return Path(path) if path else None

    def environment(self) -> dict[str, str]:
        # git's variables (credentials, GIT_SSH_COMMAND naming the backup key) never reach k0sctl.
        env = {k: v for k, v in os.environ.items() if not k.startswith(_GIT_VARS)}
        env.update(self.options.env)
        env.update(self._extra_env)
        env["XDG_CACHE_HOME"] = str(self.cache_dir)
        # Understood by k0sctl before v0.21, ignored later; "true" because k0sctl parses booleans strictly.
        env["DISABLE_TELEMETRY"] = "true"
        env["DISABLE_UPGRADE_CHECK"] = "true"
        # k0sctl reads these as its --debug/--trace/--dry-run flags: a stray DRY_RUN would turn an apply into a
        # dry run, and a value such as DEBUG=yes breaks every command. The source's options set the flags.
        for name in ("DEBUG", "TRACE", "DRY_RUN"):
            env.pop(name, None)
        return env

    @property
    def log_file(self) -> Path:
        return self.cache_dir / "k0sctl" / "k0sctl.log"

    # -- version -----------------------------------------------------------------------------------
    def version(self) -> K0sctlVersion:
        if self._version is None:
            try:
                proc = subprocess.run([self.binary, "version"], capture_output=True, text=True, timeout=60,
                                      env=self.environment(), cwd=self.workdir, check=False,
                                      preexec_fn=lifecycle.child_setup)
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise ResourceError(f"cannot run {self.binary} version: {exc.__class__.__name__}") from None
            if proc.returncode != 0:
                raise ResourceError(f"{self.binary} version failed (exit {proc.returncode})")
            parsed = K0sctlVersion.parse(proc.stdout)
            if not parsed.known:
                log.warn("k0sctl reports no version; assuming the flags of the newest supported release")
            self._version = parsed
        return self._version

    def argv(self, inv: Invocation) -> list[str]:
        return command_line(self.version(), inv, self.options)

    # -- running -----------------------------------------------------------------------------------
    def run(self, inv: Invocation, *, cwd: Path | None = None, stdin: bytes | None = None,
            echo: bool = True, quiet_if: QuietIf | None = None) -> RunResult:
        """Run one k0sctl command; never raises for a k0sctl failure (see `RunResult.ok`).

        With `quiet_if`, the error lines that end a failed run (k0sctl's `level=fatal` line) are held back
        while it runs; when the run fails and `quiet_if(result)` is true, they and the k0sctl.log tail are
        not shown (the caller says what happened in one line). Any other outcome shows them as usual.
        """
        argv = [self.binary, *self.argv(inv)]
        log.step(f"$ k0sctl {' '.join(argv[1:])}")
        return self._run(argv, cwd=cwd or self.workdir, stdin=stdin, echo=echo, quiet_if=quiet_if)

    def _run(self, argv: list[str], *, cwd: Path, stdin: bytes | None, echo: bool,
             quiet_if: QuietIf | None = None, timeout: float | None = None) -> RunResult:
        from k0sctl_resource.k0sctl.process import Supervised
        from k0sctl_resource.runtime.lifecycle import Aborted

        started = time.monotonic()
        lines: list[str] = []

        held = HeldErrors(echo=echo, hold=quiet_if is not None)

        def keep(line: str) -> None:
            held.line(line)
            lines.append(line)
            if len(lines) > MAX_KEPT_LINES:
                del lines[: len(lines) - MAX_KEPT_LINES]

        try:
            proc = subprocess.Popen(
                argv, cwd=cwd, env=self.environment(),
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=lifecycle.child_setup,  # noqa: PLW1509 - see lifecycle.child_setup
            )
        except OSError as exc:
            raise ResourceError(f"cannot start k0sctl: {exc.strerror}") from None
        watchdog.watch_group(proc.pid)
        bound = self.options.timeout if timeout is None else min(timeout, self.options.timeout or timeout)
        run = Supervised(proc, timeout=bound, on_line=keep)
        try:
            if stdin is not None and proc.stdin is not None:
                with contextlib.suppress(BrokenPipeError):
                    proc.stdin.write(stdin)
                    proc.stdin.close()
            returncode = run.run()
        except Aborted as exc:
            returncode = run.stop(exc.signum)
        finally:
            run.close()
            watchdog.forget(proc.pid)
        result = RunResult(argv=argv[1:], returncode=returncode, lines=lines,
                           duration_s=time.monotonic() - started, timed_out=run.timed_out,
                           aborted=run.aborted is not None)
        quiet = not result.ok and not result.timed_out and not result.aborted and quiet_if is not None \
            and quiet_if(result)
        if not quiet:
            held.flush()
            if not result.ok:
                self.print_log_tail()
        if run.aborted is not None:
            raise Aborted(run.aborted, f"aborted by {signal.Signals(run.aborted).name}: k0sctl was stopped")
        if run.timed_out:
            reason = result.last_error()
            which = "source.k0sctl.timeout" if bound == self.options.timeout else "its bound"
            raise ResourceError(f"k0sctl {argv[1]} did not finish within {which} "
                                f"({log.human_seconds(float(bound or 0))}) and was stopped"
                                + (f"; its last error: {reason}" if reason else ""))
        return result

    def print_log_tail(self) -> None:
        try:
            text = self.log_file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return
        tail = text.splitlines()[-LOG_TAIL_LINES:]
        if tail:
            log.info(f"--- last {len(tail)} lines of k0sctl.log ---")
            for line in tail:
                log.info(line)
            log.info("--- end of k0sctl.log ---")

    def capture(self, inv: Invocation, *, timeout: float | None = None) -> RunResult:
        """Run without echoing stdout (for commands whose output is data, like kubeconfig); `timeout` bounds
        this run below `source.k0sctl.timeout`."""
        argv = [self.binary, *self.argv(inv)]
        return self._run(argv, cwd=self.workdir, stdin=None, echo=False, timeout=timeout)


QuietIf = Callable[[RunResult], bool]  # see K0sctl.run


