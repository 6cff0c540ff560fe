"""The one reader of what k0sctl prints, in both of its formats.

k0sctl logs through logrus. Off a terminal (always, in Concourse) a line is logfmt:
`level=info msg="192.0.2.11:22: is running k0s single version v1.31.2+k0s.0"` (with `time="…"` first under
--debug; the value is quoted only when it needs to be, with Go's escapes). On a terminal it is coloured text:
`ESC[36mINFOESC[0m 192.0.2.11:22: connected      ` (the level's first four letters, padding, CR LF). A few
lines are no log lines in either format: the logo, v0.32's notice, and the dry-run summary (`dry-run: …`).
:func:`parse` turns any of them into a :class:`Line` (level and plain message); the readers below work on
messages only, so each wording is matched in one place. Hosts are named `192.0.2.11:22` from v0.32 and
`[ssh] 192.0.2.11:22` before; readers give the address without the protocol.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_LOGFMT_START = re.compile(r"(?:time=(?:\"(?:[^\"\\]|\\.)*\"|\S*)\s+)?level=(?P<level>\w+)\s+msg=")
_QUOTED = re.compile(r"\"(?P<body>(?:[^\"\\]|\\.)*)\"")
_TERMINAL = re.compile(r"(?P<level>INFO|WARN|ERRO|FATA|DEBU|TRAC|PANI)(?:\[[^\]]*\])?(?: (?P<msg>.*))?")
_TERMINAL_LEVELS = {"INFO": "info", "WARN": "warning", "ERRO": "error", "FATA": "fatal", "DEBU": "debug",
                    "TRAC": "trace", "PANI": "panic"}
_ESCAPES = re.compile(r"\\(?:x(?P<x>[0-9a-fA-F]{2})|u(?P<u>[0-9a-fA-F]{4})|U(?P<U>[0-9a-fA-F]{8})|(?P<c>.))")
_SIMPLE = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}
FAILING = ("fatal", "error", "panic")


@dataclass(frozen=True)
class Line:
    """One line of k0sctl's output: `level` is logrus' (`info`, `warning`, `fatal`, …) or None for a line
    that is no log line (logo, notices, `dry-run:` summary); `text` is the message, without colours."""

    level: str | None
    text: str

    @property
    def failing(self) -> bool:
        return self.level in FAILING


def plain(raw: str) -> str:
    """`raw` without terminal colours and the carriage return of a terminal's line end."""
    return _ANSI.sub("", raw).rstrip("\r")


def _unquote(body: str) -> str:
    def one(match: re.Match[str]) -> str:
        code = match.group("x") or match.group("u") or match.group("U")
        if code:
            return chr(int(code, 16)) if int(code, 16) <= 0x10FFFF else match.group(0)
        char = match.group("c")
        return _SIMPLE.get(char, char)

    return _ESCAPES.sub(one, body)


def parse(raw: str) -> Line:
    """One output line, in either format."""
    text = plain(raw)
    logfmt = _LOGFMT_START.match(text)
    if logfmt:
        rest = text[logfmt.end():]
        quoted = _QUOTED.match(rest)
        message = _unquote(quoted.group("body")) if quoted else rest.split(" ", 1)[0]
        return Line(logfmt.group("level"), message)
    terminal = _TERMINAL.fullmatch(text.rstrip())
    if terminal:
        return Line(_TERMINAL_LEVELS[terminal.group("level")], (terminal.group("msg") or "").strip())
    return Line(None, text.rstrip())


def messages(lines: Iterable[str]) -> list[Line]:
    return [parse(line) for line in lines]


# -- what the readers look for -------------------------------------------------------------------
_HOST = r"(?:\[\w+\] )?(?P<host>[^\s\"=]+)"
_PHASE = re.compile(r"==> Running phase: (?P<title>.+)")
_RUNNING = re.compile(_HOST + r": is running k0s (?P<role>controller\S*|single) version (?P<version>v[\w.+-]+)")
_LEFTOVER = re.compile(_HOST + r": failed to (?:clean up backup temp file|remove backup file) (?P<path>/\S+?):? ")
# v0.32 removes the restore's temporary folder with `rm -f`, which fails: an empty folder stays.
_TEMP_DIR = re.compile(_HOST + r": failed to remove backup temp dir (?P<path>/\S+?):? ")
_LOG_SAVED = re.compile(r"^[\w ]*failed - log file saved to \S+?: ")
_API_WAIT = re.compile(r"wait for kubernetes to reach ready state|waiting for kubernetes api to respond")
_INSTALLED = re.compile(r"k0s cluster version (?P<version>\S+) is now installed")
_NO_CONTROLLER = ("failed to find a running controller", "no running controller")
# MODELLED, not seen: k0sctl v0.34.0 refuses `--restore-from` onto a running cluster (k0sctl#1264). Its wording is
# not known here, so a failure that speaks of a restore and of a refusal or of k0s already running counts;
# one that says k0s is *not* running (a broken install) does not.
_RESTORE = re.compile(r"restor", re.IGNORECASE)
_REFUSAL = re.compile(r"refus|not allowed|not supported|already running|is running|running cluster", re.IGNORECASE)
_NOT_RUNNING = re.compile(r"not running|n't appear to be running|not be running", re.IGNORECASE)
DRY_NO_CHANGES = "dry-run: no cluster state altering actions would be performed"
DRY_CHANGES = "dry-run: cluster state altering actions would be performed"
RESTORE_PHASE = "Restore cluster state"


@dataclass(frozen=True)
class Controller:
    host: str
    role: str
    version: str


@dataclass(frozen=True)
class DryRunPlan:
    changes: bool
    actions: list[str]
    running_controllers: list[str]

    @property
    def would_restore(self) -> bool:
        """k0sctl restores only onto a cluster where no controller runs k0s."""
        return not self.running_controllers


class Transcript:
    """The lines of one k0sctl run, read once."""

    def __init__(self, lines: Iterable[str]) -> None:
        self.lines = messages(lines)

    def phases(self) -> list[str]:
        return [m.group("title") for m in (_PHASE.fullmatch(line.text) for line in self.lines if line.level) if m]

    def controllers(self) -> list[Controller]:
        """The controllers k0sctl found running k0s while it gathered facts."""
        found = (_RUNNING.search(line.text) for line in self.lines if line.level)
        return [Controller(m.group("host"), m.group("role"), m.group("version")) for m in found if m]

    def running_controllers(self) -> list[str]:
        return [controller.host for controller in self.controllers()]

    def running_k0s_version(self) -> str | None:
        return next((controller.version for controller in self.controllers()), None)

    def restore_ran(self) -> bool:
        return RESTORE_PHASE in self.phases()

    def api_waited(self) -> bool:
        return any(_API_WAIT.search(line.text) for line in self.lines if line.level)

    def installed_version(self) -> str | None:
        found = [m.group("version") for m in (_INSTALLED.search(line.text) for line in self.lines if line.level) if m]
        return found[-1] if found else None

    def leftovers(self) -> list[str]:
        """`host:path` of every backup file k0sctl could not remove from a controller (it warns and goes on)."""
        found = (_LEFTOVER.search(line.text + " ") for line in self.lines if line.level)
        return [f"{m.group('host')}:{m.group('path')}" for m in found if m]

    def temp_dirs(self) -> list[str]:
        """`host:path` of every (empty) temporary folder of a restore that k0sctl could not remove."""
        found = (_TEMP_DIR.search(line.text + " ") for line in self.lines if line.level)
        return [f"{m.group('host')}:{m.group('path')}" for m in found if m]

    def dry_run(self) -> DryRunPlan | None:
        """The dry-run summary (plain `dry-run:` lines, in both formats), or None when there is none."""
        changes: bool | None = None
        actions: list[str] = []
        for line in self.lines:
            text = line.text.strip()
            if DRY_NO_CHANGES in text:
                changes = False
            elif DRY_CHANGES in text:
                changes = True
            elif changes and text.startswith("dry-run:"):
                actions.append(text.removeprefix("dry-run:").strip())
        if changes is None:
            return None
        return DryRunPlan(changes, actions, self.running_controllers())

    def last_error(self) -> str | None:
        """k0sctl's own reason for a failure, from its last fatal/error line, without the path of its log
        file (`<command> failed - log file saved to <path>: <reason>`)."""
        for line in reversed(self.lines):
            text = line.text.replace("\n", " ").strip()
            if line.failing or (line.level is None and text.startswith("Error: ")):
                text = text.removeprefix("Error: ")
                return _LOG_SAVED.sub("", text).strip() or text
        return None

    def no_running_controller(self) -> bool:
        text = "\n".join(line.text for line in self.lines[-200:]).lower()
        return any(marker in text for marker in _NO_CONTROLLER)

    def restore_refused(self) -> bool:
        """Whether k0sctl refused a restore onto a running cluster (v0.34+, wording modelled: see above)."""
        reason = self.last_error()
        return (reason is not None and bool(_RESTORE.search(reason)) and bool(_REFUSAL.search(reason))
                and not _NOT_RUNNING.search(reason))


def failing(raw: str) -> bool:
    """Whether one output line is one of k0sctl's error lines (in either format)."""
    line = parse(raw)
    return line.failing or (line.level is None and line.text.startswith("Error: "))
