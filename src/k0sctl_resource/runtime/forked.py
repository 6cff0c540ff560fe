"""Run a long call that holds the interpreter in a forked child, so that the step stays abortable.

age's passphrase form (scrypt, then the whole archive) runs seconds inside one call that never lets
Python run a signal handler: an abort would wait for it. `run_forked` runs such a call in a child (a
fork: nothing is serialised but the result), while the step waits in a loop that signals can
interrupt; on an abort the child is killed at once. The child dies with the step (SIGKILL included:
`lifecycle.child_setup`), is a helper that the watchdog kills first, and passes a `ResourceError` back
as one line.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import time
from collections.abc import Callable
from typing import TypeVar

from k0sctl_resource.runtime import lifecycle, watchdog
from k0sctl_resource.runtime.errors import ResourceError

T = TypeVar("T")
POLL = 0.02


def _child(func: Callable[[], object], out: int) -> None:  # pragma: no cover - runs in the fork
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)
    watchdog.detach()
    lifecycle.child_setup()
    code = 0
    try:
        answer: tuple[str, object] = ("ok", func())
    except ResourceError as exc:
        answer, code = ("error", exc.message), 1
    except BaseException as exc:
        answer, code = ("internal", f"{exc.__class__.__name__}"), 2
    data = pickle.dumps(answer)
    with contextlib.suppress(OSError):
        while data:
            data = data[os.write(out, data):]
    os._exit(code)


def run_forked(func: Callable[[], T], what: str) -> T:
    """`func()` in a forked child; its result (or its ResourceError) here. An abort kills the child."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read_end)
        _child(func, write_end)
    os.close(write_end)
    lifecycle.helper(pid)
    chunks: list[bytes] = []
    try:
        os.set_blocking(read_end, False)
        while True:
            with contextlib.suppress(BlockingIOError):
                chunk = os.read(read_end, 1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
                continue
            time.sleep(POLL)  # signals are handled here: an abort raises out of the loop
    finally:
        os.close(read_end)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)  # gone already, unless an abort came first
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        lifecycle.helper(pid, alive=False)
    try:
        kind, value = pickle.loads(b"".join(chunks))  # noqa: S301 - our own child's answer
    except (pickle.UnpicklingError, EOFError, ValueError):
        raise ResourceError(f"{what} ran out of memory or was killed") from None
    if kind == "ok":
        return value  # type: ignore[no-any-return]
    if kind == "error":
        raise ResourceError(str(value))
    raise ResourceError(f"{what} failed: {value}")
