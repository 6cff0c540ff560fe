"""fleet-status's judgement of one branch, and its table's ages."""

from __future__ import annotations

from datetime import UTC, datetime

from k0sctl_resource.fleet.report import exit_code, render_table
from k0sctl_resource.fleet.status import ClusterStatus, human_age, judge
from k0sctl_resource.gitstore.drill_record import DrillRecord
from k0sctl_resource.gitstore.fleet_read import BranchReport

NOW = datetime(2026, 12, 7, 12, 0, 0, tzinfo=UTC)
PASSED = DrillRecord(result="passed", drilled_at="2026-12-06T12:00:00Z", restore_s=42.0)


def status() -> ClusterStatus:
    return ClusterStatus(name="c", repository="file:///r", branch="b", max_age_s=26 * 3600, max_drill_age_s=8 * 86400)


def report(at: str | None, last: DrillRecord | None = PASSED, passed: DrillRecord | None = PASSED) -> BranchReport:
    return BranchReport(branch="b", exists=True, newest_backup="a" * 40, newest_backup_at=at, last_drill=last,
                        last_passed_drill=passed)


def test_fresh_and_drilled_is_ok() -> None:
    got = judge(status(), report("2026-12-07T11:00:00Z"), NOW)
    assert (got.status, got.problems, got.backup_age_s, got.drill_age_s) == ("ok", [], 3600, 86400)


def test_a_created_at_without_a_zone_is_utc_and_garbage_is_stale() -> None:
    assert judge(status(), report("2026-12-07T11:00:00"), NOW).backup_age_s == 3600
    got = judge(status(), report("yesterday"), NOW)
    assert got.status == "stale" and "records no readable Created-At" in got.problems[0]


def test_stale_beats_undrilled_and_both_are_listed() -> None:
    old = DrillRecord(result="passed", drilled_at="2026-11-01T00:00:00Z", restore_s=1.0)
    got = judge(status(), report("2026-12-05T00:00:00Z", last=old, passed=old), NOW)
    assert got.status == "stale"
    assert got.problems == ["newest backup older than max_age (26h)", "no passed drill within max_drill_age (8d)"]


def test_a_failed_last_drill_is_a_problem_listed_not_a_status() -> None:
    failed = DrillRecord(result="failed", drilled_at="2026-12-07T10:00:00Z", restore_s=None, reason="boom")
    got = judge(status(), report("2026-12-07T11:00:00Z", last=failed), NOW)
    assert (got.status, got.last_drill_result, got.problems) == ("ok", "failed", ["last drill failed: boom"])
    never = judge(status(), report("2026-12-07T11:00:00Z", last=failed, passed=None), NOW)
    assert never.status == "undrilled" and "no drill ever passed" in never.problems


def test_ages_and_the_exit_code() -> None:
    assert [human_age(s) for s in (None, 59, 119, 120, 7199, 7200, 47 * 3600, 48 * 3600)] == \
        ["-", "59s", "119s", "2m", "119m", "2h", "47h", "2d"]
    ok, bad = judge(status(), report("2026-12-07T11:00:00Z"), NOW), judge(status(), report(None), NOW)
    assert exit_code([ok]) == 0 and exit_code([ok, bad]) == 1 and exit_code([]) == 0
    assert render_table([ok, bad]).endswith("2 cluster(s): 1 ok, 0 undrilled, 1 stale, 0 unreachable\n")
