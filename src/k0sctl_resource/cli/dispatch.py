"""The one place where a Concourse step name (check, in, out) becomes the step that runs."""

from __future__ import annotations

from pathlib import Path

from k0sctl_resource.concourse.runner import run_step


def run_concourse_step(name: str, directory: Path | None = None) -> int:
    """Run `check`, `in DIRECTORY` or `out DIRECTORY` and return the exit code. Each step's module is
    imported here, when it runs: a check never loads what a put needs."""
    if name == "check":
        from k0sctl_resource.steps.check import handle as check_handle

        return run_step(check_handle)
    if directory is None:
        raise ValueError(f"step {name} needs a directory")
    if name == "in":
        from k0sctl_resource.steps.get import handle as get_handle

        return run_step(lambda raw: get_handle(raw, directory))
    if name == "out":
        from k0sctl_resource.steps.put import handle as put_handle

        return run_step(lambda raw: put_handle(raw, directory))
    raise ValueError(f"unknown step {name}")
