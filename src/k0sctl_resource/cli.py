"""The `k0sctl-resource` command: the Concourse steps (check, in, out) and tools for tasks and debugging.

`/opt/resource/check|in|out` are thin wrappers around `k0sctl-resource check|in|out`. This module holds
the console script and the step runner; the full command-line interface is in `cli_group`.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from k0sctl_resource import log
from k0sctl_resource.errors import ResourceError
from k0sctl_resource.redact import REDACT


def _debug_requested(raw: Any) -> bool:
    try:
        return raw["source"]["k0sctl"]["debug"] is True
    except (KeyError, TypeError):
        return False


def _register_secrets(raw: Any) -> None:
    """Feed every secret value to the redactor before anything is validated or printed."""
    from k0sctl_resource.models import secrets_in_raw

    if isinstance(raw, dict):
        REDACT.add(*secrets_in_raw(raw.get("source")))


def run_step(step: Callable[[Any], Any]) -> int:
    """Run one Concourse step: request on stdin, one JSON answer on stdout, logs on stderr."""
    from k0sctl_resource.protocol import AnswerChannel, read_request

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


def main() -> None:
    """The console script. The Concourse steps (`check`, `in DIR`, `out DIR`) run every minute for every
    pipeline, so they are dispatched before the command-line parser (click) is even imported; everything
    else, help included, goes through the click group."""
    args = sys.argv[1:]
    if args == ["check"]:
        from k0sctl_resource.commands.check import handle as check_handle

        sys.exit(run_step(check_handle))
    if len(args) == 2 and args[0] in ("in", "out") and not args[1].startswith("-"):
        directory = Path(args[1])
        if args[0] == "in":
            from k0sctl_resource.commands.get import handle as get_handle

            sys.exit(run_step(lambda raw: get_handle(raw, directory)))
        if directory.is_dir():
            from k0sctl_resource.commands.put import handle as put_handle

            sys.exit(run_step(lambda raw: put_handle(raw, directory)))
    from k0sctl_resource.cli_group import group

    group()
