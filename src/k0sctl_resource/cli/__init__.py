"""The `k0sctl-resource` command: the Concourse steps (check, in, out) and tools for tasks and debugging.

`/opt/resource/check|in|out` are thin wrappers around `k0sctl-resource check|in|out`. The steps are
dispatched in `cli.dispatch`; the full command-line interface (click) is in `cli.group`, the task tools
in `cli.tools`.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main() -> None:
    """The console script. The Concourse steps (`check`, `in DIR`, `out DIR`) run every minute for every
    pipeline, so they are dispatched before the command-line parser (click) is even imported; everything
    else, help included, goes through the click group."""
    from k0sctl_resource.cli.dispatch import run_concourse_step
    from k0sctl_resource.concourse.runner import finish

    args = sys.argv[1:]
    if args == ["check"]:
        finish(run_concourse_step("check"))
    if len(args) == 2 and args[0] in ("in", "out") and not args[1].startswith("-"):
        directory = Path(args[1])
        if args[0] == "in" or directory.is_dir():
            finish(run_concourse_step(args[0], directory))
    from k0sctl_resource.cli.group import group

    group()
