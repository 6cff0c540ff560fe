"""The one place where a Concourse step name (check, in, out) becomes the step that runs: its request
parser (`concourse.requests`; a put's params through the command registry) and its body
(`steps.check|get|put`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from k0sctl_resource.concourse.runner import Step, run_step


def concourse_step(name: str, directory: Path | None = None) -> Step[Any]:
    """The step `check`, `in DIRECTORY` or `out DIRECTORY`. Each step's module is imported here, when it
    runs: a check never loads what a put needs."""
    from k0sctl_resource.concourse import requests

    if name == "check":
        from k0sctl_resource.steps import check

        return Step(requests.parse_check, check.run)
    if directory is None:
        raise ValueError(f"step {name} needs a directory")
    target = directory
    if name == "in":
        from k0sctl_resource.steps import get

        return Step(requests.parse_get, lambda request: get.run(request, target))
    if name == "out":
        from k0sctl_resource.steps import put

        return Step(put.parse, lambda request: put.run(request, target))
    raise ValueError(f"unknown step {name}")


def run_concourse_step(name: str, directory: Path | None = None) -> int:
    """Run `check`, `in DIRECTORY` or `out DIRECTORY` on the process's stdin/stdout; the exit code."""
    return run_step(concourse_step(name, directory))
