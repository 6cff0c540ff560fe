"""tests/support/tools.py: a missing tool skips the test here and fails it under CI=true (CONTRIBUTING.md)."""

from __future__ import annotations

import sys

import pytest

from tests.support.tools import require_tool, unavailable

MISSING = "k0sctl-resource-no-such-tool"


def test_a_missing_tool_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=f"{MISSING} \\(Debian nothing\\) is not installed"):
        require_tool(MISSING, "Debian nothing")


def test_a_missing_tool_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=f"CI=true, but {MISSING} \\(Debian nothing\\) is not installed"):
        require_tool(MISSING, "Debian nothing")
    with pytest.raises(pytest.fail.Exception, match="CI=true, but no CAP_MKNOD"):
        unavailable("no CAP_MKNOD")


def test_a_present_tool_is_its_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    assert require_tool(sys.executable, "python3") == sys.executable


@pytest.mark.parametrize(("ci", "outcome"), [("false", "skipped"), ("true", "errors")])
def test_the_needs_tool_marker(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str,
                               outcome: str) -> None:
    monkeypatch.setenv("CI", ci)
    pytester.makepyfile(f"""
        from tests.support.tools import needs_tool

        @needs_tool({MISSING!r}, "Debian nothing")
        def test_needs_it():
            raise AssertionError("ran without the tool")

        @needs_tool("sh", "Debian dash")
        def test_has_it():
            pass
    """)
    result = pytester.runpytest_inprocess("-p", "tests.support.tools", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, **{outcome: 1})
