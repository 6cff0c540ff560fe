"""The step's watchdog: what the step started or wrote dies with it, even when the step is SIGKILLed.

A SIGKILL (Concourse's runtime 10 s after its SIGTERM, the OOM killer) runs no cleanup code in the step.
So `start()` forks, before the step has read its request (the fork holds no secret), a small process
that outlives the step and acts for it:

- It holds the read end of a pipe whose only write end is the step's. The step sends what to clean up
  (a private directory before it is created, an ssh-agent's pid, k0sctl's process group), and
  withdraws it once cleaned up itself. When the pipe reaches end-of-file, the step is gone, however it
  ended: the watchdog kills every process group and helper still registered, then every process that
  carries the step's marker in its environment (every helper inherits it: git's ssh, k0sctl's children,
  a daemon that left its parent), until none is left, and removes every registered directory.
- It also holds the read end of the step's signal wake-up pipe (`signal.set_wakeup_fd`): the kernel-level
  handler writes the signal's number there at once, even while the step's Python code is stuck in a
  long call that holds the interpreter (age's scrypt takes seconds). On SIGTERM or SIGINT the watchdog
  puts the secrets first: helpers killed, private directories removed; then k0sctl's groups get SIGTERM
  and, `ABORT_GRACE` seconds later, SIGKILL.
- It ignores SIGTERM, SIGINT and SIGHUP, lives in a session of its own, and holds no stdout or stderr
  of the step (its end-of-file would otherwise wait for it).

A pid is registered with its start time, so that a reused pid is never killed.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

MARKER = "K0SCTL_RESOURCE_STEP"
ABORT_GRACE = 3.0  # seconds between SIGTERM and SIGKILL of k0sctl's group on an abort
SWEEP_BOUND = 10.0  # seconds the final sweep goes on killing marked processes


class _Link:
    control: int | None = None  # write end: registrations; end-of-file means the step is gone
    pid: int | None = None


def start_time(pid: int) -> str | None:
    """Field 22 of /proc/PID/stat (start time in clock ticks), or None when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 2:].split()
    return fields[19].decode() if len(fields) > 19 else None


def start() -> None:
    """Fork the watchdog (once per process; call it before any thread or secret exists)."""
    if _Link.control is not None:
        return
    os.environ[MARKER] = f"{os.getpid()}-{os.urandom(8).hex()}"
    control_r, control_w = os.pipe()
    wake_r, wake_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the forked watchdog (tests see its effects)
        try:
            _watch(control_r, wake_r, os.environ[MARKER])
        finally:
            os._exit(0)
    os.close(control_r)
    os.close(wake_r)
    for fd in (control_w, wake_w):
        os.set_inheritable(fd, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    _Link.control, _Link.pid = control_w, pid


def pid() -> int:
    """The watchdog's pid (0 when none runs): the step's sweeps spare it."""
    return _Link.pid or 0


def stop(*, clean: bool) -> None:
    """The step ends: close the pipe and reap the watchdog, briefly. `clean`: the step's own sweep left
    nothing (the watchdog then only removes what is still registered, without looking for processes)."""
    control, pid = _Link.control, _Link.pid
    if control is None or pid is None:
        return
    if clean:
        _send("done")
    _Link.control = _Link.pid = None
    wake = signal.set_wakeup_fd(-1)
    with contextlib.suppress(OSError):
        os.close(control)
    if wake >= 0:
        with contextlib.suppress(OSError):
            os.close(wake)
    deadline = time.monotonic() + (1 if clean else 5)
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG)[0] == 0:
                time.sleep(0.001)
                continue
        return


def detach() -> None:
    """In a forked child of the step: let go of the watchdog's pipes (their end-of-file is the step's)."""
    control, _Link.control, _Link.pid = _Link.control, None, None
    wake = signal.set_wakeup_fd(-1)
    for fd in (control, wake):
        if fd is not None and fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)


def _send(*message: str) -> None:
    if _Link.control is None:
        return
    with contextlib.suppress(OSError):
        os.write(_Link.control, (json.dumps(message) + "\n").encode())


def watch_path(path: Path) -> None:
    """Remove `path` (a private directory, created after this call) when the step dies or is aborted."""
    _send("path", str(path))


def forget_path(path: Path) -> None:
    _send("unpath", str(path))


def watch_helper(pid: int) -> None:
    """Kill `pid` (an ssh-agent) first when the step is aborted or dies."""
    _send("helper", str(pid), start_time(pid) or "")


def watch_group(pid: int) -> None:
    """Stop the process group led by `pid` (k0sctl, git) when the step is aborted or dies."""
    _send("group", str(pid), start_time(pid) or "")


def forget(pid: int) -> None:
    _send("forget", str(pid))


# -- the watchdog process ---------------------------------------------------------------------------

def _kill(pid: int, started: str, sig: int, *, group: bool) -> None:
    if start_time(pid) != started:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        (os.killpg if group else os.kill)(pid, sig)


def proc_files(name: str) -> Iterator[tuple[int, bytes]]:
    """(pid, contents of /proc/<pid>/<name>) for every process whose file can be read now."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/{name}", "rb") as handle:
                yield int(entry.name), handle.read()
        except OSError:
            continue


def _marked(marker: bytes) -> list[int]:
    me = os.getpid()
    return [pid for pid, environ in proc_files("environ") if pid != me and marker in b"\0" + environ]


class _Watch:
    def __init__(self, marker: str) -> None:
        self.marker = f"\0{MARKER}={marker}\0".encode()
        self.paths: set[str] = set()
        self.helpers: dict[int, str] = {}
        self.groups: dict[int, str] = {}
        self.kill_at: float | None = None
        self.aborted = False
        self.done = False  # the step swept itself clean: no search for processes at the end

    def message(self, line: bytes) -> None:
        with contextlib.suppress(ValueError):
            kind, *args = json.loads(line)
            if kind == "path":
                self.paths.add(args[0])
            elif kind == "unpath":
                self.paths.discard(args[0])
            elif kind in ("helper", "group"):
                (self.helpers if kind == "helper" else self.groups)[int(args[0])] = args[1]
                if self.aborted:  # started while the abort was under way: stopped as the others were
                    if kind == "helper":
                        _kill(int(args[0]), args[1], signal.SIGKILL, group=False)
                    else:
                        _kill(int(args[0]), args[1], signal.SIGTERM, group=True)
            elif kind == "done":
                self.done = True
            elif kind == "forget":
                self.helpers.pop(int(args[0]), None)
                self.groups.pop(int(args[0]), None)

    def secrets_first(self) -> None:
        for pid, started in self.helpers.items():
            _kill(pid, started, signal.SIGKILL, group=False)
        for path in self.paths:
            shutil.rmtree(path, ignore_errors=True)

    def abort(self) -> None:
        self.secrets_first()
        for pid, started in self.groups.items():
            _kill(pid, started, signal.SIGTERM, group=True)
        if not self.aborted:
            self.aborted = True
            self.kill_at = time.monotonic() + ABORT_GRACE

    def kill_groups(self) -> None:
        for pid, started in self.groups.items():
            _kill(pid, started, signal.SIGKILL, group=True)

    def final(self) -> None:
        self.secrets_first()
        self.kill_groups()
        if self.done:
            return
        deadline = time.monotonic() + SWEEP_BOUND
        quiet = 0
        while quiet < 2 and time.monotonic() < deadline:  # twice nothing: no fork was in flight
            found = _marked(self.marker)
            for pid in found:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            quiet = 0 if found else quiet + 1
            time.sleep(0.02)
        for path in self.paths:
            shutil.rmtree(path, ignore_errors=True)


def _watch(control: int, wake: int, marker: str) -> None:  # pragma: no cover - the forked process
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_IGN)
    signal.set_wakeup_fd(-1)
    os.setsid()
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.closerange(3, min(control, wake))
    os.closerange(max(control, wake) + 1, 65536)
    for fd in range(min(control, wake) + 1, max(control, wake)):
        with contextlib.suppress(OSError):
            os.close(fd)
    sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - for the life of the process
    watch = _Watch(marker)
    buffered = b""
    fds = [control, wake]
    while True:
        timeout = None if watch.kill_at is None else max(0.0, watch.kill_at - time.monotonic())
        ready, _, _ = select.select(fds, [], [], timeout)
        if watch.kill_at is not None and time.monotonic() >= watch.kill_at:
            watch.kill_groups()
            watch.kill_at = None
        if control in ready:  # first: what the step registered before the signal is stopped by the abort
            chunk = os.read(control, 65536)
            if not chunk:
                watch.final()
                return
            *lines, buffered = (buffered + chunk).split(b"\n")
            for line in lines:
                watch.message(line)
        if wake in ready:
            signals = os.read(wake, 256)
            if not signals:
                fds.remove(wake)
            elif {signal.SIGTERM, signal.SIGINT} & set(signals):
                watch.abort()
