"""The step runner: one Concourse step from the request on stdin to one JSON answer on stdout, and the
one way a failure becomes an `error:` line and an exit code (for the steps and the CLI tools alike).

The spine of every step: stdin → `read_request` → secrets registered for redaction → `Step.parse` (a
typed request) → `Step.run` (the step, which talks to the outside systems) → a typed response → its JSON
on the answer channel. Which step runs is decided by the console script (`k0sctl_resource.cli.dispatch`).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, NoReturn, TextIO, TypeVar

from k0sctl_resource.concourse.protocol import AnswerChannel, read_request
from k0sctl_resource.concourse.responses import Response
from k0sctl_resource.config.models import secrets_in
from k0sctl_resource.runtime import log
from k0sctl_resource.runtime.errors import ResourceError
from k0sctl_resource.runtime.lifecycle import Aborted, guarded
from k0sctl_resource.runtime.redact import REDACT

R = TypeVar("R")


@dataclass(frozen=True)
class Step(Generic[R]):
    """A Concourse step: how its request is parsed, and what runs on the typed request."""

    parse: Callable[[Any], R]
    run: Callable[[R], Response]


def _debug_requested(raw: Any) -> bool:
    try:
        return raw["source"]["k0sctl"]["debug"] is True
    except (KeyError, TypeError):
        return False


def run_step(step: Step[Any], *, stdin: TextIO | None = None, stdout: TextIO | None = None,
             guard: bool = True) -> int:
    """Run one Concourse step: request on stdin, one JSON answer on stdout, logs on stderr; returns the
    exit code. `stdin`/`stdout` default to the process's own (see `AnswerChannel`); tests pass streams to
    run a step in-process, with `guard=False`: the step's signal handling and final sweep
    (`runtime.lifecycle.guarded`) belong to a process of its own, and would kill the caller's children.

    The source's secrets are registered once, from the request as read and before it is validated, so
    that neither a validation error nor a traceback (`source.k0sctl.debug`) can print one; the typed
    source holds the same values (`config.models.secrets_in`)."""
    channel = AnswerChannel(stdout)
    raw: Any = None
    try:
        with guarded() if guard else contextlib.nullcontext():
            raw = read_request(stdin)
            if isinstance(raw, dict):
                REDACT.add(*secrets_in(raw.get("source")))
            response = step.run(step.parse(raw))
        channel.send(response.to_json())
        return 0
    except BaseException as exc:
        return report_failure(exc, debug=_debug_requested(raw),
                              hint="set source.k0sctl.debug: true for a traceback")


def report_failure(exc: BaseException, *, debug: bool, hint: str) -> int:
    """Turn a failure into one `error:` line on stderr (a traceback before it only with `debug`) and the
    exit code. Used by the Concourse steps and the CLI tools alike."""
    if isinstance(exc, SystemExit):
        raise exc
    if debug:
        import traceback  # only here: it costs every check milliseconds (linecache, tokenize, textwrap)

        log.write("".join(traceback.format_exception(exc)))
    if isinstance(exc, ResourceError | Aborted):
        log.error(exc.message)
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        log.error("interrupted")
        return 130
    detail = REDACT(str(exc)).splitlines()
    log.error(f"internal error: {exc.__class__.__name__}: {detail[0] if detail else ''} ({hint})")
    return 2


def finish(code: int) -> NoReturn:
    """End the step process now. Its helpers are gone (see `runtime.lifecycle`); a timer thread that an
    abort left armed (a library's watchdog thread, say) must not keep the process alive for its
    duration, as a normal interpreter exit would."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)
