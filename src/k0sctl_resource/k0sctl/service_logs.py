"""`collect_logs`: after a failed apply, reset or drill, the end of the k0s service's log of every host, from
`k0sctl logs` (k0sctl v0.34+, MODELLED from its release notes: its flags and output are not known here, so
only `--config` is passed and the tail is cut here).

Bounded: the run by `LOGS_TIMEOUT` (and `source.k0sctl.timeout`), the output by the last `TAIL_LINES` lines of
each host and `MAX_LINE` characters a line. Every line reaches stderr through the log, so masked and with
control characters escaped. Collecting never changes the outcome: a failure here is one warning.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from k0sctl_resource.k0sctl.runner import K0sctl
from k0sctl_resource.k0sctl.transcript import parse
from k0sctl_resource.k0sctl.versions import SINCE_LOGS, Invocation
from k0sctl_resource.runtime import log
from k0sctl_resource.runtime.errors import ResourceError

CollectLogs = Literal["on_failure", "never"]  # the `collect_logs` param of apply, reset and drill
TAIL_LINES = 40
MAX_LINE = 2000
LOGS_TIMEOUT = 60.0
_HOST_LINE = re.compile(r"(?P<host>(?:\[\w+\] )?[^\s\"=]+?:\d+): (?P<text>.*)")


def tails(lines: Iterable[str], keep: int = TAIL_LINES) -> dict[str, list[str]]:
    """The last `keep` lines of each host's log (`<host>: <line>`); k0sctl's own log lines are left out, and
    a line without a host's name belongs to the host before it."""
    found: dict[str, deque[str]] = {}
    host = "k0sctl"
    for raw in lines:
        if parse(raw).level is not None:
            continue
        match = _HOST_LINE.fullmatch(raw)
        text = raw
        if match:
            host, text = match.group("host"), match.group("text")
        found.setdefault(host, deque(maxlen=keep)).append(text[:MAX_LINE])
    return {name: list(kept) for name, kept in found.items()}


def collect(k0sctl: K0sctl, config: Path, *, after: str) -> None:
    """Show the tail of every host's k0s service log after the failed `after` (best effort)."""
    version = k0sctl.version()
    if not version.at_least(SINCE_LOGS):
        log.info(f"collect_logs: k0sctl {version} has no `logs` command (v0.34 and newer have it)")
        return
    log.step(f"collect_logs: the k0s service's logs after the failed {after}")
    try:
        result = k0sctl.capture(Invocation("logs", config), timeout=LOGS_TIMEOUT)
    except ResourceError as exc:
        log.warn(f"collect_logs: {exc.message}")
        return
    if not result.ok:
        log.warn(f"collect_logs: k0sctl logs failed: {result.reason()}")
        return
    for host, kept in tails(result.lines).items():
        log.info(f"--- last {len(kept)} lines of the k0s service log of {host} ---")
        for line in kept:
            log.info(line)
    log.info("--- end of the k0s service logs ---")
