"""One running k0sctl process, supervised until it and everything it started are gone.

- Its output is read without blocking (a selector with a short tick), so that a deadline or an abort is
  acted on even while a child that escaped k0sctl still holds the other end of the pipe.
- `source.k0sctl.timeout` bounds the whole run: at the deadline k0sctl's process group and every process
  below it get SIGTERM, and SIGKILL `KILL_GRACE` seconds later.
- An abort (`stop`) must fit in Concourse's grace period (SIGKILL 10 s after its SIGTERM), and k0sctl
  answers a first SIGTERM with "Aborting..." and goes on with its phase: so the step's secrets go first
  (`lifecycle.secrets_first`: the ssh-agent stopped, the private directory wiped), then k0sctl's group
  gets SIGTERM and, `ABORT_GRACE` seconds later, SIGKILL, whatever it answered. That SIGTERM is sent
  once: by the watchdog when one runs (it hears the same signal), else from here. k0sctl takes a second
  one as "Ctrl-C again" and exits at once, mid-phase (two SIGTERMs a moment apart, seen under load).
- When k0sctl exits, whatever is left of its process group is killed, and so is any process that
  escaped it (see `lifecycle.kill_strays`); output is read for at most `DRAIN_AFTER_EXIT` seconds more.
  k0sctl is reaped only after its group was signalled, so that its pid (the group's id) cannot have
  been reused by then.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Callable

from k0sctl_resource.runtime import lifecycle, log, watchdog
from k0sctl_resource.runtime.redact import REDACT

KILL_GRACE = 10.0  # seconds between SIGTERM and SIGKILL at the timeout
ABORT_GRACE = 3.0  # seconds between SIGTERM and SIGKILL on an abort
DRAIN_AFTER_EXIT = 2.0  # seconds output is still read after k0sctl exited
DRAIN_AFTER_ABORT = 0.5  # the same, on an abort
TICK = 0.2
MAX_LINE = 64 * 1024  # bytes of one output line held before it is passed on in pieces


def split_long_line(partial: bytes, on_piece: Callable[[str], None]) -> bytes:
    """Pass on the start of an output line that grew past MAX_LINE without a newline (never held whole);
    what is kept for the next read is returned. Pieces end on a character boundary, and the kept rest is at
    least one masked value's length (`REDACT.max_match` - 1) long and never begins inside a masked value, so a
    secret that spans the place of the cut is masked as a whole in the piece that holds its beginning."""
    overlap = REDACT.max_match - 1
    if len(partial) <= max(MAX_LINE, 2 * overlap):
        return partial
    end = len(partial)
    while end > 0 and partial[end - 1] & 0xC0 == 0x80:  # not inside a UTF-8 sequence
        end -= 1
    if end > 0 and partial[end - 1] >= 0xC0:
        end -= 1
    text = partial[:end].decode("utf-8", errors="replace")
    cut = REDACT.safe_cut(text, max(len(text) - overlap, 0))
    if cut == 0:
        return partial
    on_piece(text[:cut])
    return text[cut:].encode("utf-8") + partial[end:]


class Supervised:
    def __init__(self, proc: subprocess.Popen[bytes], *, timeout: float | None,
                 on_line: Callable[[str], None]) -> None:
        self.proc = proc
        self.deadline = time.monotonic() + timeout if timeout is not None else None
        self.on_line = on_line
        self.timed_out = False
        self.aborted: int | None = None
        self._term_sent: float | None = None
        self._killed = False
        self._exited_at: float | None = None
        self._partial = b""
        self._fd: int | None = None
        assert proc.stdout is not None
        self._fd = proc.stdout.fileno()
        os.set_blocking(self._fd, False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._fd, selectors.EVENT_READ)

    # -- signals -----------------------------------------------------------------------------------
    def _group_and_tree(self, sig: int, *, group: bool = True) -> None:
        """`sig` to every process below k0sctl and, with `group`, to k0sctl's process group (k0sctl itself)."""
        tree = lifecycle.descendants(self.proc.pid)  # read while the parent links still hold
        if group:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, sig)
        lifecycle.signal_all(tree, sig)

    def _terminate(self, *, group: bool = True) -> None:
        if self._term_sent is None:
            self._term_sent = time.monotonic()
            if self._exited_at is None:
                self._group_and_tree(signal.SIGTERM, group=group)

    def stop(self, signum: int) -> int:
        """An abort while k0sctl runs: SIGTERM (SIGKILL after the grace), wait for it, return its code."""
        self.aborted = signum
        lifecycle.secrets_first()
        log.warn(f"received {signal.Signals(signum).name}: secrets removed; stopping k0sctl "
                 f"(SIGTERM, SIGKILL after {ABORT_GRACE:.0f}s)")
        # A running watchdog heard the same signal and sends k0sctl's group its SIGTERM (`runtime.watchdog`): a
        # second SIGTERM from here would be k0sctl's "Ctrl-C again", a forced exit in the middle of a phase.
        self._terminate(group=not watchdog.pid())
        return self.run()

    # -- the loop ----------------------------------------------------------------------------------
    def _exited(self) -> bool:
        """Whether k0sctl exited, without reaping it (its pid stays the group's id until we do)."""
        try:
            info = os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        return info is not None

    def _tick(self, now: float) -> None:
        if self._exited_at is None and self._exited():
            self._exited_at = now
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)  # what is left of its group
            lifecycle.kill_strays()
            return
        if self.deadline is not None and now >= self.deadline and not self.timed_out and self.aborted is None:
            self.timed_out = True
            log.warn(f"source.k0sctl.timeout passed: stopping k0sctl (SIGTERM, SIGKILL after {KILL_GRACE:.0f}s)")
            self._terminate()
        grace = ABORT_GRACE if self.aborted is not None else KILL_GRACE
        if self._term_sent is not None and not self._killed and now - self._term_sent >= grace:
            self._killed = True
            self._group_and_tree(signal.SIGKILL)

    def _read(self) -> None:
        if self._fd is None:
            time.sleep(TICK)
            return
        if not self._selector.select(TICK):
            return
        try:
            chunk = os.read(self._fd, 65536)
        except BlockingIOError:
            return
        if not chunk:
            self._close_pipe()
            return
        *lines, self._partial = (self._partial + chunk).split(b"\n")
        for raw in lines:
            self.on_line(raw.decode("utf-8", errors="replace").rstrip("\r"))
        self._partial = split_long_line(self._partial, self.on_line)

    def _close_pipe(self) -> None:
        if self._fd is not None:
            self._selector.unregister(self._fd)
            self._fd = None
            if self._partial:
                self.on_line(self._partial.decode("utf-8", errors="replace").rstrip("\r"))
                self._partial = b""

    def run(self) -> int:
        """Read k0sctl's output until it exited and its pipe closed (or the drain time passed)."""
        while True:
            now = time.monotonic()
            self._tick(now)
            drain = DRAIN_AFTER_ABORT if self.aborted is not None else DRAIN_AFTER_EXIT
            if self._exited_at is not None and (self._fd is None or now - self._exited_at >= drain):
                break
            self._read()
        self._close_pipe()
        return self.proc.wait()

    def close(self) -> None:
        """Make sure nothing is left (called however the run ended) and release the pipe."""
        if self._exited_at is None and not self._exited():
            self._group_and_tree(signal.SIGKILL)
        self._close_pipe()
        self._selector.close()
        with contextlib.suppress(OSError, ValueError):
            if self.proc.stdout is not None:
                self.proc.stdout.close()
        with contextlib.suppress(ChildProcessError):
            self.proc.wait()
