"""The shared fixtures, one place: every module of tests/support that defines fixtures is a plugin here."""

pytest_plugins = [
    "pytester",  # tests/unit/test_tools.py
    "tests.support.tools",  # the needs_tool marker
    "tests.support.fixtures",
    "tests.support.in_process",
    "tests.support.k0sctl_fixtures",
    "tests.support.netns",
    "tests.support.sshd",
    "tests.support.git_https",
    "tests.support.scratch_api",
    "tests.support.node",  # after netns and sshd, which it imports
    "tests.support.k0s_node",  # after node, which it imports
    "tests.support.real_k0s",  # after k0s_node
]


# -- a short base for tmp_path -------------------------------------------------------------------------
# A step's private ssh-agent listens on $TMPDIR/k0sctl-resource-<8 hex>/ssh/agent.sock, and a Unix socket
# path holds at most 107 bytes. pytest's default base (/tmp/pytest-of-<user>/pytest-<n>/, then
# popen-gw<i>/ under xdist) leaves too little of them, so the run gets a short base of its own: removed
# when the run passes, kept (and named in the summary) when it does not.

import os  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402

import pytest  # noqa: E402

_SHORT_BASE: list[str] = []


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if config.option.basetemp is None and not hasattr(config, "workerinput"):
        base = tempfile.mkdtemp(prefix="krt-", dir=tempfile.gettempdir())
        os.rmdir(base)  # pytest makes it again (and would empty it first)
        config.option.basetemp = base
        _SHORT_BASE.append(base)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _SHORT_BASE and not hasattr(session.config, "workerinput") and exitstatus == 0:
        shutil.rmtree(_SHORT_BASE[0], ignore_errors=True)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int) -> None:
    if _SHORT_BASE and exitstatus != 0:
        terminalreporter.write_line(f"the failed run's temporary files are kept in {_SHORT_BASE[0]}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Test ids must be the same in every xdist worker, which collect at different moments: an id made from
    gzip bytes (whose header holds the clock) is refused at collection, naming the tests that need `ids=`."""
    clocked = [item.nodeid for item in items if "\\x1f\\x8b" in item.nodeid]
    if clocked:
        raise pytest.UsageError("test ids made from gzip bytes differ between workers (give them ids=): "
                                + ", ".join(clocked))
