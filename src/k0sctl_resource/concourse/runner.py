"""The step runner: one Concourse step from the request on stdin to one JSON answer on stdout, and the
one way a failure becomes an `error:` line and an exit code (for the steps and the CLI tools alike).

The step is a callable; which step runs is decided by the console script (`k0sctl_resource.cli`).
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any

from k0sctl_resource.runtime import log
from k0sctl_resource.runtime.errors import ResourceError
from k0sctl_resource.runtime.redact import REDACT


def _debug_requested(raw: Any) -> bool:
    try:
        return raw["source"]["k0sctl"]["debug"] is True
    except (KeyError, TypeError):
        return False


def _register_secrets(raw: Any) -> None:
    """Feed every secret value to the redactor before anything is validated or printed."""
    from k0sctl_resource.config.models import secrets_in_raw

    if isinstance(raw, dict):
        REDACT.add(*secrets_in_raw(raw.get("source")))


def run_step(step: Callable[[Any], Any]) -> int:
    """Run one Concourse step: request on stdin, one JSON answer on stdout, logs on stderr."""
    from k0sctl_resource.concourse.protocol import AnswerChannel, read_request

    channel = AnswerChannel()
    raw: Any = None
    try:
        raw = read_request()
        _register_secrets(raw)
        channel.send(step(raw))
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
        log.write("".join(traceback.format_exception(exc)))
    if isinstance(exc, ResourceError):
        log.error(exc.message)
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        log.error("interrupted")
        return 130
    detail = REDACT(str(exc)).splitlines()
    log.error(f"internal error: {exc.__class__.__name__}: {detail[0] if detail else ''} ({hint})")
    return 2

