"""Unit tests of the runner's pure parts: versions, flags per version, parsing k0sctl's output."""

from __future__ import annotations

from pathlib import Path

import pytest

from k0sctl_resource.config.models import K0sctlOptions
from k0sctl_resource.k0sctl.runner import RunResult
from k0sctl_resource.k0sctl.versions import Invocation, K0sctlVersion, command_line
from k0sctl_resource.runtime.errors import ResourceError
from tests.support import PINNED
from tests.support.k0sctl_argv import command_lines_for_contract

CFG = Path("/w/config/k0sctl.yaml")


def result(*lines: str, rc: int = 0) -> RunResult:
    return RunResult(argv=[], returncode=rc, lines=list(lines), duration_s=0.0)


@pytest.mark.parametrize(("text", "expected"), [
    ("version: v0.31.4\ncommit: abc\n", "v0.31.4"),
    ("version: v0.28.0", "v0.28.0"),
    ("v0.13.1", "v0.13.1"),
    ("version: 0.0.0\n", "unknown"),
    ("version: (devel)\n", "unknown"),
])
def test_version_parse(text: str, expected: str) -> None:
    assert str(K0sctlVersion.parse(text)) == expected


def test_unknown_version_gets_newest_flags() -> None:
    v = K0sctlVersion.parse("version: (devel)")
    argv = command_line(v, Invocation("apply", CFG, dry_run=True), K0sctlOptions())
    assert "--dry-run" in argv


@pytest.mark.parametrize(("version", "has_output", "has_concurrency"), [
    (PINNED, True, True),
    ("v0.28.0", True, True),
    ("v0.22.0", False, True),
    ("v0.20.0", False, True),
    ("v0.13.1", False, False),
])
def test_flags_by_version(version: str, has_output: bool, has_concurrency: bool) -> None:
    v = K0sctlVersion.parse(version)
    opts = K0sctlOptions(concurrency=2)
    backup = command_line(v, Invocation("backup", CFG, output=Path("/p/out.tar.gz")), opts)
    assert ("--output" in backup) is has_output
    assert not any(flag.startswith("--disable-") for flag in backup)  # never passed, see k0sctl.py
    assert ("--concurrency" in backup) is has_concurrency
    assert "--force" in command_line(v, Invocation("reset", CFG), opts)


def test_dry_run_refused_before_v017() -> None:
    with pytest.raises(ResourceError, match=r"dry_run needs k0sctl v0\.17"):
        command_line(K0sctlVersion.parse("v0.16.0"), Invocation("apply", CFG, dry_run=True), K0sctlOptions())


def test_contract_lines_cover_every_command(tmp_path: Path) -> None:
    lines = command_lines_for_contract(K0sctlVersion.parse(PINNED), CFG, tmp_path)
    assert {argv[0] for argv in lines} == {"apply", "backup", "reset", "kubeconfig"}
    assert any("--dry-run" in argv for argv in lines)
    assert len(lines) == len({tuple(a) for a in lines})


def test_dry_run_summary_parsing() -> None:
    changed = result(
        'time="t" level=info msg="==> Running phase: Connect to hosts"',
        "\x1b[91mdry-run: cluster state altering actions would be performed:\x1b[0m",
        "dry-run: * [ssh] 192.0.2.10:22 :",
        "dry-run:  - install k0s v1.31.2+k0s.0",
        "dry-run:  - start the k0s controller",
    )
    plan = changed.dry_run_plan()
    assert plan.changes is True
    assert plan.actions == ["* [ssh] 192.0.2.10:22 :", "- install k0s v1.31.2+k0s.0", "- start the k0s controller"]
    assert plan.would_restore is True
    same = (result(
        'time="t" level=info msg="[ssh] 192.0.2.10:22: is running k0s controller+worker version v1.31.2+k0s.0"',
        'time="t" level=info msg="[ssh] 192.0.2.11:22: is running k0s worker version v1.31.2+k0s.0"',
        "dry-run: no cluster state altering actions would be performed").dry_run_plan())
    assert same.changes is False and same.actions == []
    assert same.running_controllers == ["192.0.2.10:22"] and not same.would_restore
    with pytest.raises(ResourceError, match="no dry-run summary"):
        result("level=info msg=\"==> Running phase: Connect to hosts\"").dry_run_plan()


def test_restore_detection() -> None:
    assert result('level=info msg="==> Running phase: Restore cluster state"').transcript.restore_ran()
    assert result('level=info msg="\x1b[32m==> Running phase: Restore cluster state\x1b[0m"').transcript.restore_ran()
    assert not result('level=info msg="==> Running phase: Install controllers"').transcript.restore_ran()


def test_last_error_and_leftovers() -> None:
    r = result(
        'time="t" level=info msg="==> Running phase: Take backup"',
        'time="t" level=warning msg="[ssh] 192.0.2.10:22: failed to clean up backup temp file '
        '/tmp/x1/k0s_backup_2026.tar.gz: permission denied"',
        'time="t" level=fatal msg="apply failed - log file saved to /c/k0sctl/k0sctl.log: '
        'failed to connect to \\"192.0.2.10\\": refused"',
        rc=1,
    )
    assert r.last_error() == 'failed to connect to "192.0.2.10": refused'
    assert r.leftovers() == ["192.0.2.10:22:/tmp/x1/k0s_backup_2026.tar.gz"]


def test_held_error_lines_keep_their_order_and_are_shown_unless_the_caller_drops_them(
        capsys: pytest.CaptureFixture[str]) -> None:
    from k0sctl_resource.k0sctl.output import HeldErrors

    held = HeldErrors(echo=True, hold=True)
    for line in ('level=info msg="==> Running phase: Connect to hosts"', 'level=error msg="a passing error"',
                 'level=info msg="==> Running phase: Gather facts"', 'level=fatal msg="the end"'):
        held.line(line)
    assert capsys.readouterr().err.splitlines() == [
        'level=info msg="==> Running phase: Connect to hosts"', 'level=error msg="a passing error"',
        'level=info msg="==> Running phase: Gather facts"']  # the trailing fatal line is held back
    held.flush()
    assert capsys.readouterr().err.splitlines() == ['level=fatal msg="the end"']
    live = HeldErrors(echo=True, hold=False)
    live.line('level=fatal msg="shown at once"')
    assert capsys.readouterr().err.splitlines() == ['level=fatal msg="shown at once"']


def test_service_log_tails_are_cut_per_host() -> None:
    from k0sctl_resource.k0sctl.service_logs import tails

    lines = ['level=info msg="==> Running phase: Connect to hosts"', "192.0.2.10:22: one", "  continued",
             "[ssh] 192.0.2.11:22: two", "192.0.2.10:22: three", "192.0.2.10:22: four", "x" * 5000]
    assert tails(lines, keep=2) == {"192.0.2.10:22": ["four", "x" * 2000], "[ssh] 192.0.2.11:22": ["two"]}


def test_logs_needs_v034() -> None:
    with pytest.raises(ResourceError, match=r"k0sctl logs needs k0sctl v0\.34\.0 or newer \(found v0\.31\.0\)"):
        command_line(K0sctlVersion.parse("v0.31.0"), Invocation("logs", CFG), K0sctlOptions())
    assert command_line(K0sctlVersion.parse("v0.34.0"), Invocation("logs", CFG), K0sctlOptions(debug=True)) == \
        ["logs", "--config", str(CFG)]


def test_an_empty_restore_folder_is_reported_not_counted(capsys: pytest.CaptureFixture[str]) -> None:
    r = result('time="t" level=warning msg="192.0.2.12:22: failed to remove backup temp dir /tmp/Ox1CBz: '
               'command failed: rm: cannot remove \'/tmp/Ox1CBz\': Is a directory"')
    assert r.warn_leftovers() == 0 and r.leftovers() == []
    assert "k0sctl left the temporary folder 192.0.2.12:22:/tmp/Ox1CBz on the host" in capsys.readouterr().err
