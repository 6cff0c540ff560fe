"""Aborts and leftovers: nothing a step starts or writes outlives it.

Concourse aborts a build by sending SIGTERM (or SIGINT) to the step's process, at any moment.
`guarded()` wraps a whole step:

- SIGTERM and SIGINT become `Aborted`, an exception that unwinds every `with` block on its way out, so
  private directories are removed and helpers (ssh-agent, git, k0sctl) are stopped as on any failure.
  Only the first signal raises; later ones are remembered, so that they cannot cut a cleanup short.
- The step's process is a child subreaper (Linux `PR_SET_CHILD_SUBREAPER`): a grandchild that escapes
  its parent (a daemonising child of k0sctl, the ssh of a killed git) becomes our child instead of
  init's, so that it can be found.
- When the step ends, however it ends, a final sweep runs with the signals blocked: every cleanup still
  registered with `at_exit` (a private directory whose removal was interrupted, an agent started a
  moment before the signal) runs, and every process still below the step is killed and reaped.
- An abort puts the secrets first (`secrets_first`, and the watchdog at once, see `runtime.watchdog`):
  what is registered with `at_exit` is cleaned up before anything is waited for.
- What survives a SIGKILL of the step: nothing. Every helper is started with `child_setup` (the kernel
  kills it with SIGKILL when the step dies), and the watchdog kills whatever it started and removes its
  private directories. No core dump is written: the step is not dumpable (`PR_SET_DUMPABLE` 0) and the
  core size limit, which every helper inherits, is 1 byte (no core file; a core_pattern pipe refuses 1).
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import resource
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

from k0sctl_resource.runtime import watchdog

_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
_PR_SET_CHILD_SUBREAPER = 36


class Aborted(BaseException):
    """The step received SIGTERM or SIGINT. A BaseException, so that no `except Exception` swallows it."""

    def __init__(self, signum: int, message: str | None = None) -> None:
        self.signum = signum
        self.message = message or f"aborted by {signal.Signals(signum).name}"
        super().__init__(self.message)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class _State:
    active = False
    closing = False
    received: int | None = None
    pid = 0  # the guarded step's pid: a child whose parent is no longer this one exits at once


_cleanups: dict[int, Callable[[], None]] = {}
_tokens = itertools.count(1)
_helpers: set[int] = set()  # pids of the step's own long-lived helpers (ssh-agent)


def at_exit(cleanup: Callable[[], None]) -> int:
    """Register `cleanup` for the final sweep; returns a token for `done` (call it once cleaned up)."""
    token = next(_tokens)
    _cleanups[token] = cleanup
    return token


def done(token: int) -> None:
    _cleanups.pop(token, None)


def helper(pid: int, alive: bool = True) -> None:
    """Declare (or, with `alive=False`, forget) a helper process of the step that `kill_strays` spares and
    that an abort kills first."""
    if alive:
        _helpers.add(pid)
        watchdog.watch_helper(pid)
    else:
        _helpers.discard(pid)
        watchdog.forget(pid)


def secrets_first() -> None:
    """On an abort, before anything is waited for: run every registered cleanup (the ssh-agent stopped,
    the private directory removed)."""
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    try:
        for token in sorted(_cleanups, reverse=True):
            cleanup = _cleanups.pop(token)
            with contextlib.suppress(Exception):
                cleanup()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def child_setup() -> None:
    """`preexec_fn` of every helper: SIGKILL when the step dies (SIGKILL included). The kernel sends it
    when the spawning thread ends: helpers are started by threads that wait for them. It runs between
    fork and exec, so it only calls prctl (looked up beforehand) and takes no lock."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if _State.pid and os.getppid() != _State.pid:  # the step died before the line above
        os._exit(1)


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


try:
    _PRCTL: Callable[..., int] | None = _libc().prctl
except (OSError, AttributeError):  # not Linux
    _PRCTL = None


def _harden() -> None:
    """No core dump of the step or of any helper (see the module doc)."""
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (1, 1))
    except (OSError, ValueError):  # a hard limit of 0 already
        with contextlib.suppress(OSError, ValueError):
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if _PRCTL is not None:
        _PRCTL(_PR_SET_DUMPABLE, 0, 0, 0, 0)


def remove_later(path: Path) -> int:
    """`at_exit` for a private directory (call it before the directory is created): removed by the sweep
    (or by the watchdog, should the step die) unless `forget_path` was called."""
    watchdog.watch_path(path)
    return at_exit(lambda: shutil.rmtree(path, ignore_errors=True))


def forget_path(path: Path, token: int) -> None:
    """The directory of `remove_later` is removed: nothing left to do for it."""
    done(token)
    watchdog.forget_path(path)


def received() -> int | None:
    """The signal that aborted this step, if any."""
    return _State.received


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    first = _State.received is None
    if first:
        _State.received = signum
    if first and not _State.closing:
        raise Aborted(signum)


def _become_subreaper() -> None:
    if _PRCTL is not None:
        _PRCTL(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


@contextlib.contextmanager
def guarded() -> Iterator[None]:
    """Run a step: signals become `Aborted`, and the final sweep runs however the block ends."""
    if _State.active:  # nested use (a tool inside a step): the outer guard sweeps
        yield
        return
    _State.active, _State.closing, _State.received, _State.pid = True, False, None, os.getpid()
    _harden()
    previous = {sig: signal.signal(sig, _on_signal) for sig in _SIGNALS}
    _become_subreaper()
    watchdog.start()
    try:
        yield
    finally:
        _State.closing = True
        watchdog.stop(clean=sweep())
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _State.active = False


def sweep() -> bool:
    """Run every registered cleanup and kill every process below this one, with the signals blocked;
    whether nothing is left."""
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    try:
        secrets_first()
        clean = kill_children()
        secrets_first()  # again: a process killed just now may have written into a private directory
        return clean and not _cleanups
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


# -- processes ---------------------------------------------------------------------------------------

def _parents() -> dict[int, int]:
    """pid -> parent pid of every process we can see."""
    found: dict[int, int] = {}
    for pid, stat in watchdog.proc_files("stat"):
        fields = stat[stat.rfind(b")") + 2:].split()
        if len(fields) > 1:
            found[pid] = int(fields[1])
    return found


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (children, their children, …), found through /proc."""
    parents = _parents()
    children: dict[int, list[int]] = {}
    for child, parent in parents.items():
        children.setdefault(parent, []).append(child)
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def signal_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def kill_tree(pid: int) -> None:
    """SIGKILL `pid` and everything below it (the tree is read first, while the links still hold)."""
    signal_all([pid, *descendants(pid)], signal.SIGKILL)


def _reap() -> bool:
    """Reap exited children; True while some remain."""
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return False
        if pid == 0:
            return True


def kill_strays() -> None:
    """After k0sctl exited: kill every process below the step but its helpers (a child of k0sctl that
    escaped its process group and its parent, and now hangs below us). Only inside `guarded`: elsewhere
    (a test calling the runner) the processes below us are not ours to judge."""
    if not _State.active:
        return
    below = descendants(os.getpid())
    spared = {*_helpers, watchdog.pid()}
    for pid in _helpers:
        spared.update(descendants(pid))
    signal_all([pid for pid in below if pid not in spared], signal.SIGKILL)


def _children() -> set[int] | None:
    """This process's children, from /proc/self/task/*/children (None where the kernel has no such file)."""
    found: set[int] = set()
    try:
        for task in os.scandir("/proc/self/task"):
            with open(f"{task.path}/children", encoding="ascii") as handle:
                found.update(int(pid) for pid in handle.read().split())
    except OSError:
        return None
    return found


def kill_children(timeout: float = 5.0) -> bool:
    """Kill and reap every process below this one (escaped grandchildren included, see the module doc);
    whether none is left."""
    deadline = time.monotonic() + timeout
    while True:
        if not _reap() or _children() == {watchdog.pid()}:  # as a subreaper, nothing else can be below us
            return True
        below = [pid for pid in descendants(os.getpid()) if pid != watchdog.pid()]
        if not below:  # the watchdog alone: it ends when the step closes its pipe
            return True
        signal_all(below, signal.SIGKILL)
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
