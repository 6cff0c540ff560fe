"""The retention policy (restic's `forget` rules): table tests and properties."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from k0sctl_resource.config.models import Retention, parse_source
from k0sctl_resource.config.schema import Duration
from k0sctl_resource.gitstore.commit_format import archive_created, compact_stamp
from k0sctl_resource.gitstore.retention import Archive, Decision, decide
from k0sctl_resource.runtime.errors import ResourceError

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def archives(*stamps: str) -> list[Archive]:
    """Archives named like the resource names them, from `YYYY-MM-DDTHH:MM:SSZ` (`#2` for the second of a second)."""
    found = []
    for stamp in stamps:
        moment, _, n = stamp.partition("#")
        created = datetime.fromisoformat(moment.replace("Z", "+00:00"))
        name = f"c-{compact_stamp(created)}{'-' + n if n else ''}.tar.gz.age"
        found.append(Archive(name, created))
    return found


def name(stamp: str) -> str:
    return archives(stamp)[0].name


def run(stamps: list[str], now: datetime = NOW, **policy: Any) -> Decision:
    return decide(archives(*stamps), Retention(**policy), now=now)


def kept(decision: Decision) -> set[str]:
    return set(decision.kept)


def names(*stamps: str) -> set[str]:
    return {name(s) for s in stamps}


def test_keep_last_keeps_the_newest_and_says_why() -> None:
    stamps = [f"2026-01-0{d}T00:00:00Z" for d in range(1, 6)]
    decision = run(stamps, keep_last=3)
    assert kept(decision) == names(*stamps[2:])
    assert decision.removed == (name(stamps[1]), name(stamps[0])), "newest first"
    assert decision.kept[name(stamps[4])] == ("last", "newest")
    assert decision.by_rule() == {"last": 3, "newest": 1}


def test_daily_keeps_the_newest_of_each_day_and_the_oldest_while_counts_remain() -> None:
    stamps = ["2026-01-01T01:00:00Z", "2026-01-01T09:00:00Z", "2026-01-02T01:00:00Z", "2026-01-02T23:00:00Z"]
    assert kept(run(stamps, keep_daily=2)) == names("2026-01-02T23:00:00Z", "2026-01-01T09:00:00Z")
    decision = run(stamps, keep_daily=3)  # a count left at the oldest archive: restic keeps it
    assert kept(decision) == names("2026-01-02T23:00:00Z", "2026-01-01T09:00:00Z", "2026-01-01T01:00:00Z")
    assert decision.kept[name("2026-01-01T01:00:00Z")] == ("oldest daily",)


def test_rules_are_ored_and_an_archive_counts_in_every_rule_it_matches() -> None:
    stamps = ["2025-12-31T12:00:00Z", "2026-01-01T12:00:00Z", "2026-01-02T12:00:00Z"]
    decision = run(stamps, keep_last=1, keep_daily=2, keep_yearly=2)
    newest, middle, oldest = name(stamps[2]), name(stamps[1]), name(stamps[0])
    assert decision.kept[newest] == ("last", "daily", "yearly", "newest")
    assert decision.kept[middle] == ("daily",)
    assert decision.kept[oldest] == ("yearly",), "the newest of 2025, although daily ran out"


def test_days_are_calendar_days_in_the_timezone_across_the_autumn_dst_change() -> None:
    # Europe/Berlin, 2026-10-25: 03:00 CEST becomes 02:00 CET (01:00 UTC); that day has 25 hours.
    stamps = ["2026-10-24T21:30:00Z", "2026-10-24T22:30:00Z", "2026-10-25T22:30:00Z", "2026-10-25T23:30:00Z"]
    berlin = run(stamps, keep_daily=2, timezone="Europe/Berlin")
    # local: 23:30 Oct 24 | 00:30 Oct 25 | 23:30 Oct 25 | 00:30 Oct 26
    assert kept(berlin) == names("2026-10-25T23:30:00Z", "2026-10-25T22:30:00Z")
    utc = run(stamps, keep_daily=2)
    assert kept(utc) == names("2026-10-25T23:30:00Z", "2026-10-24T22:30:00Z")


def test_the_hour_repeated_when_clocks_go_back_is_two_hourly_buckets() -> None:
    # 00:30 UTC is 02:30 CEST and 01:30 UTC is 02:30 CET: the same wall-clock hour, two real hours.
    stamps = ["2026-10-25T00:10:00Z", "2026-10-25T00:30:00Z", "2026-10-25T01:10:00Z", "2026-10-25T01:30:00Z"]
    decision = run(stamps, keep_hourly=2, timezone="Europe/Berlin")
    assert kept(decision) == names("2026-10-25T01:30:00Z", "2026-10-25T00:30:00Z")


def test_the_short_spring_day_is_one_daily_bucket() -> None:
    # Europe/Berlin, 2026-03-29 has 23 hours: 00:30 CET and 23:30 CEST are the same day.
    stamps = ["2026-03-28T23:30:00Z", "2026-03-29T21:30:00Z"]
    assert kept(run(stamps, keep_daily=1, timezone="Europe/Berlin")) == names("2026-03-29T21:30:00Z")
    assert kept(run(stamps, keep_daily=1, keep_last=1)) == names("2026-03-29T21:30:00Z")
    assert kept(run(stamps, keep_daily=2)) == names(*stamps)


def test_iso_week_53_spans_the_year_end_and_years_split_it() -> None:
    # 2026-12-28 (Monday) to 2027-01-03 (Sunday) is ISO week 2026-W53; 2027-01-04 begins 2027-W01.
    stamps = ["2026-12-28T12:00:00Z", "2026-12-31T12:00:00Z", "2027-01-01T12:00:00Z", "2027-01-03T12:00:00Z",
              "2027-01-04T12:00:00Z"]
    assert datetime(2027, 1, 3).isocalendar()[:2] == (2026, 53)
    weekly = run(stamps, keep_weekly=2)
    assert kept(weekly) == names("2027-01-04T12:00:00Z", "2027-01-03T12:00:00Z")
    yearly = run(stamps, keep_yearly=2)
    assert kept(yearly) == names("2027-01-04T12:00:00Z", "2026-12-31T12:00:00Z")
    monthly = run(stamps, keep_monthly=5)
    assert kept(monthly) == names("2027-01-04T12:00:00Z", "2026-12-31T12:00:00Z", "2026-12-28T12:00:00Z")


def test_the_year_ends_at_local_midnight() -> None:
    # 2027-01-01T03:00Z is 22:00 on New Year's Eve in New York.
    stamps = ["2026-12-31T12:00:00Z", "2027-01-01T03:00:00Z"]
    assert kept(run(stamps, keep_yearly=1, timezone="America/New_York")) == names("2027-01-01T03:00:00Z")
    assert kept(run(stamps, keep_yearly=2, timezone="America/New_York")) == names(*stamps)  # oldest yearly
    assert run(stamps, keep_yearly=2).kept[name(stamps[0])] == ("yearly",)


def test_future_archives_are_kept_and_take_no_rules_place() -> None:
    stamps = ["2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", "2031-01-01T00:00:00Z"]
    decision = run(stamps, keep_last=1)
    assert decision.future == (name("2031-01-01T00:00:00Z"),)
    assert decision.kept == {name("2031-01-01T00:00:00Z"): ("future",),
                             name("2026-01-02T00:00:00Z"): ("last", "newest")}
    within = run(stamps, keep_within=Duration(timedelta(days=2).total_seconds()))
    assert name("2026-01-01T00:00:00Z") in within.kept, "keep_within counts from the newest archive not in the future"


def test_equal_timestamps_are_ordered_by_their_number() -> None:
    stamps = ["2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z#2", "2026-01-01T00:00:00Z#3"]
    assert kept(run(stamps, keep_last=1)) == names("2026-01-01T00:00:00Z#3")
    assert kept(run(stamps, keep_daily=1)) == names("2026-01-01T00:00:00Z#3")
    assert kept(run(list(reversed(stamps)), keep_last=2)) == names(*stamps[1:])


def test_keep_within_counts_from_the_newest_archive_not_from_now() -> None:
    stamps = ["2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z", "2026-01-04T00:00:00Z"]
    decision = run(stamps, now=datetime(2029, 1, 1, tzinfo=UTC), keep_within=Duration(2 * 86400.0))
    assert kept(decision) == names("2026-01-03T00:00:00Z", "2026-01-04T00:00:00Z"), "exactly 2 days before: out"


def test_what_is_never_removed() -> None:
    stamps = [f"2026-01-0{d}T00:00:00Z" for d in range(1, 8)]
    decision = decide(archives(*stamps), Retention(keep_last=1, min_keep=3), now=NOW, just_written=name(stamps[0]),
                      drilled=name(stamps[1]), protect={name(stamps[2])})
    assert decision.kept == {name(stamps[6]): ("last", "newest"), name(stamps[2]): ("another put's",),
                             name(stamps[1]): ("last drill",), name(stamps[0]): ("just written",)}
    floor = decide(archives(*stamps), Retention(keep_last=1, min_keep=3), now=NOW)
    assert floor.kept == {name(stamps[6]): ("last", "newest"), name(stamps[5]): ("min_keep",),
                          name(stamps[4]): ("min_keep",)}


@pytest.mark.parametrize(("backup", "message"), [
    ({"retention": {"min_keep": 2}}, "every keep_* is 0 and keep_within is unset"),
    ({"retention": {"keep_daily": 0}}, "every keep_* is 0"),
    ({"keep": 3, "retention": {"keep_last": 2}}, "keep: is shorthand for retention.keep_last"),
    ({"retention": {"keep_last": 1, "min_keep": 0}}, "min_keep: must be at least 1"),
    ({"retention": {"keep_daily": -1}}, "keep_daily: must be 0 or more"),
    ({"retention": {"keep_last": 1, "timezone": "Mars/Olympus"}}, "timezone: unknown time zone 'Mars/Olympus'"),
    ({"retention": {"keep_last": 1, "timezone": "../../etc/passwd"}}, "timezone: unknown time zone"),
    ({"retention": {"keep_last": 1, "keep_within": "soon"}}, "keep_within: expected a duration"),
    ({"retention": {"keep_lats": 1}}, "keep_last"),
])
def test_policies_that_are_refused(backup: dict[str, Any], message: str) -> None:
    with pytest.raises(ResourceError, match=None) as refused:
        parse_source({"backup": {"uri": "file:///r", **backup}})
    assert message in str(refused.value), refused.value


def test_keep_is_shorthand_for_keep_last() -> None:
    repo = parse_source({"backup": {"uri": "file:///r", "keep": 3}}).backup
    assert repo is not None and repo.policy == Retention(keep_last=3)
    both = parse_source({"backup": {"uri": "file:///r", "keep": 3, "retention": {"keep_daily": 7,
                                                                                  "keep_within": "7d"}}}).backup
    assert both is not None and both.policy == Retention(keep_last=3, keep_daily=7, keep_within=Duration(7 * 86400.0))
    none = parse_source({"backup": {"uri": "file:///r"}}).backup
    assert none is not None and none.policy is None


def test_the_created_at_of_a_name_belongs_to_its_series_only() -> None:
    assert archive_created("prod-20260101T010203Z-2.tar.gz.age", "prod") == datetime(2026, 1, 1, 1, 2, 3, tzinfo=UTC)
    assert archive_created("prod-eu-20260101T010203Z.tar.gz", "prod") is None
    assert archive_created("notes.txt", "prod") is None


# -- properties --------------------------------------------------------------------------------------

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu"]
moments = st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC))
policies = st.builds(
    Retention, keep_last=st.integers(0, 4), keep_hourly=st.integers(0, 4), keep_daily=st.integers(0, 4),
    keep_weekly=st.integers(0, 3), keep_monthly=st.integers(0, 3), keep_yearly=st.integers(0, 2),
    keep_within=st.one_of(st.none(), st.floats(1, 90 * 86400.0).map(Duration)), min_keep=st.integers(1, 5),
    timezone=st.sampled_from(ZONES),
).filter(lambda p: any(getattr(p, n) for n in Retention.COUNTS) or p.keep_within is not None)


@st.composite
def series(draw: st.DrawFn) -> list[Archive]:
    found: list[Archive] = []
    taken: dict[str, int] = {}
    for drawn in draw(st.lists(moments, min_size=1, max_size=40)):
        moment = drawn.replace(microsecond=0)
        stamp = compact_stamp(moment)
        taken[stamp] = taken.get(stamp, 0) + 1  # equal moments: `-2`, `-3`, … as unique_name gives them
        suffix = f"-{taken[stamp]}" if taken[stamp] > 1 else ""
        found.append(Archive(f"c-{stamp}{suffix}.tar.gz.age", moment))
    return found


@settings(max_examples=300, deadline=None)
@given(series(), policies, moments, st.data())
def test_the_never_removed_set_survives_and_a_second_pass_changes_nothing(
        items: list[Archive], policy: Retention, now: datetime, data: st.DataObject) -> None:
    just_written = data.draw(st.sampled_from([None, *(a.name for a in items)]))
    drilled = data.draw(st.sampled_from([None, *(a.name for a in items)]))
    first = decide(items, policy, now=now, just_written=just_written, drilled=drilled)
    assert set(first.kept) | set(first.removed) == {a.name for a in items}
    assert not set(first.kept) & set(first.removed)
    present = [a for a in items if a.created <= now]
    must = {a.name for a in items if a.created > now} | {just_written, drilled} - {None}
    if present:
        must.add(max(present, key=lambda a: (a.created, a.name.count("-"), a.name)).name)
    assert must <= set(first.kept)
    assert len(first.kept) >= min(policy.min_keep, len(items))
    rest = [a for a in items if a.name in first.kept]
    second = decide(rest, policy, now=now, just_written=just_written, drilled=drilled)
    assert second.removed == () and set(second.kept) == set(first.kept)


def test_what_a_commit_and_a_put_say_stays_short_however_many_are_removed() -> None:
    from k0sctl_resource.gitstore.pruning import LISTED, message_lines, metadata

    stamps = [(datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=h)).strftime("%Y-%m-%dT%H:%M:%SZ")
              for h in range(500)]
    decision = run(stamps, keep_last=2)
    lines = message_lines(decision)
    assert lines[0].startswith("retention: kept 2 archive(s) (last 2, newest 1), removed 498 from the tree")
    assert sum(1 for line in lines if line.startswith("removed ")) == LISTED
    assert lines[-1] == f"… and {498 - LISTED} more removed"
    meta = metadata(decision)
    assert meta["removed_archives"] == 498 and str(meta["removed"]).endswith(f"… and {498 - LISTED} more")
    assert message_lines(Decision()) == [] and metadata(Decision()) == {}
