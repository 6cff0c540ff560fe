"""The steps run in the test's own process: the same request parsing, step and answer as the console
script, with stdin, stdout and stderr as strings. Faster than `Resource` and open to a debugger; what
only a real process shows (descriptor 1 guarded against children, exit through `sys.exit`, signals) is
held by the subprocess tests through `tests.support.resource.Resource`."""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from k0sctl_resource.cli.dispatch import concourse_step
from k0sctl_resource.concourse.runner import run_step
from k0sctl_resource.runtime import log
from k0sctl_resource.runtime.redact import REDACT
from tests.support.resource import Resource, StepRun


@contextlib.contextmanager
def _as_a_new_process(environment: dict[str, str]) -> Iterator[None]:
    """What a step process starts with: exactly `environment`, tempfile's folder found from its TMPDIR,
    colours as NO_COLOR says, and nothing registered for redaction; the test's own state afterwards."""
    saved_env = dict(os.environ)
    saved = (tempfile.tempdir, log._COLOR, REDACT.secrets)
    os.environ.clear()
    os.environ.update(environment)
    tempfile.tempdir = None
    log._COLOR = "NO_COLOR" not in environment
    REDACT.replace(frozenset())
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        tempfile.tempdir, log._COLOR, secrets = saved
        REDACT.replace(secrets)


def run_in_process(args: list[str], stdin: str, environment: dict[str, str]) -> StepRun:
    """`k0sctl-resource check | in DIR | out DIR` run in this process, in `environment`."""
    stdout, stderr = io.StringIO(), io.StringIO()
    directory = Path(args[1]) if len(args) > 1 else None
    with _as_a_new_process(environment), contextlib.redirect_stderr(stderr):
        code = run_step(concourse_step(args[0], directory), stdin=io.StringIO(stdin), stdout=stdout, guard=False)
    run = StepRun(list(args), code, stdout.getvalue(), stderr.getvalue())
    if run.stdout.strip():
        run.answer = json.loads(run.stdout)
    return run


@dataclass
class InProcess:
    """`Resource`'s check/get/put, run in-process with `run_step(step, stdin=…, stdout=…)`."""

    resource: Resource  # its environment is this process's for the test; its scanner checks every run

    def step(self, name: str, request: Any, directory: Path | None = None) -> StepRun:
        args = [name] if directory is None else [name, str(directory)]
        text = request if isinstance(request, str) else json.dumps(request)
        run = run_in_process(args, text, self.resource.environment())
        self.resource.scan(run)
        return run

    def check(self, request: Any) -> StepRun:
        return self.step("check", request)

    def get(self, request: Any, directory: Path) -> StepRun:
        return self.step("in", request, directory)

    def put(self, request: Any, directory: Path) -> StepRun:
        return self.step("out", request, directory)


@pytest.fixture
def in_process(resource: Resource, monkeypatch: pytest.MonkeyPatch) -> Iterator[InProcess]:
    """The steps in-process, in the environment `resource` gives its subprocesses (HOME, TMPDIR, PATH with
    the k0sctl double, no build variables), without colours."""
    wanted = resource.environment()
    for name in list(os.environ):
        if name not in wanted:
            monkeypatch.delenv(name)
    for name, value in wanted.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(tempfile, "tempdir", None)  # found again from TMPDIR
    monkeypatch.setattr(log, "_COLOR", False)
    yield InProcess(resource)
