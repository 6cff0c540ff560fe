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
