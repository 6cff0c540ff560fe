"""What a test needs from this machine: skipped with the reason here, failed under CI=true.

CONTRIBUTING.md promises that under `CI=true` a test that needs a tool fails instead of
skipping when the tool is missing. Every such check goes through `unavailable`:

- `require_tool(name, package)` in a test or fixture: the tool's path, else skip (fail under CI=true)
  naming the package that brings it. `name` may be an absolute path (`/usr/sbin/sshd`).
- `@needs_tool(name, package)` on a test: the same check before the test's fixtures are set up (the
  `needs_tool` marker, checked by `pytest_runtest_setup` below; tests/conftest.py loads this plugin).
- `unavailable(reason)` for anything else a test needs (a capability, network namespaces, a build).

Skips that are about the environment by design (fly where the module proxy does not serve Concourse,
127.0.0.2:22 taken, a different Graphviz version) do not come through here.
"""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

import pytest


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


def unavailable(reason: str) -> NoReturn:
    """Skip the calling test with `reason`; under CI=true fail it instead."""
    if in_ci():
        pytest.fail(f"CI=true, but {reason}", pytrace=False)
    pytest.skip(reason)


def require_tool(name: str, package: str) -> str:
    """The path of the command `name`; the calling test is skipped (failed under CI=true) without it."""
    path = shutil.which(name)
    if path is None:
        unavailable(f"{name} ({package}) is not installed")
    return path


def needs_tool(name: str, package: str) -> pytest.MarkDecorator:
    """Mark a test that runs the command `name` (from `package`): checked with `require_tool` at setup."""
    return pytest.mark.needs_tool(name, package)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "needs_tool(name, package): needs the command `name` (tests/support/tools.py)")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    for mark in item.iter_markers("needs_tool"):
        require_tool(*mark.args)
