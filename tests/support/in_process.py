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
from tests.support.resource import Resource, StepRun


@dataclass
class InProcess:
    """`Resource`'s check/get/put, run in-process with `run_step(step, stdin=…, stdout=…)`."""

    resource: Resource  # its environment is this process's for the test; its scanner checks every run

    def step(self, name: str, request: Any, directory: Path | None = None) -> StepRun:
        stdin = io.StringIO(request if isinstance(request, str) else json.dumps(request))
        stdout, stderr = io.StringIO(), io.StringIO()
        with contextlib.redirect_stderr(stderr):
            code = run_step(concourse_step(name, directory), stdin=stdin, stdout=stdout, guard=False)
        args = [name] if directory is None else [name, str(directory)]
        run = StepRun(args, code, stdout.getvalue(), stderr.getvalue())
        if run.stdout.strip():
            run.answer = json.loads(run.stdout)
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
