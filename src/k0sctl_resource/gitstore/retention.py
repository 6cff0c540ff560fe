"""Which archives a retention policy keeps: restic's `forget` rules over (archive name, Created-At).

Pure: names and moments in, a decision out; nothing here runs git or reads a clock.

- The archives are ordered newest first by their recorded Created-At (equal moments by the `-2`, `-3`, …
  of their names). Each rule walks that order on its own and keeps the newest archive of each new
  bucket while its count lasts: `keep_last` one archive per bucket, `keep_hourly`/`daily`/`weekly`/
  `monthly`/`yearly` calendar buckets in `timezone` (an hour is a real hour: the hour repeated when the
  clocks go back is two buckets; a day is a calendar day, 23 or 25 hours long on DST days; weeks are ISO
  weeks, Monday to Sunday, so the last days of December may be week 1 or 53). When a rule still has
  counts left at the oldest archive, the oldest is kept too ("oldest daily"): the longest history the
  counts allow.
- The rules are ORed: an archive is kept when any rule keeps it, and counts in every rule it matches.
- `keep_within`: every archive created less than that long before the newest one (not before now, so a
  backup job that stopped does not empty the branch).
- Never removed: the archive the put just wrote, the newest one, the one the last passed drill restored,
  any dated after `now` (another clock ran ahead; it takes no rule's place), and the newest others while
  fewer than `min_keep` would remain.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from k0sctl_resource.config.models import Retention
from k0sctl_resource.config.zones import zone
from k0sctl_resource.gitstore.commit_format import archive_order
from k0sctl_resource.runtime.errors import ResourceError

NEWEST, JUST_WRITTEN, DRILLED, FUTURE, MIN_KEEP, WITHIN = (
    "newest", "just written", "last drill", "future", "min_keep", "within")


@dataclass(frozen=True)
class Archive:
    name: str
    created: datetime  # aware: the Created-At of its record


@dataclass(frozen=True)
class Decision:
    """What a policy does to a list of archives: every kept one with the rules that keep it (newest first),
    the removed ones (newest first), and those dated in the future."""

    kept: dict[str, tuple[str, ...]] = field(default_factory=dict)
    removed: tuple[str, ...] = ()
    future: tuple[str, ...] = ()

    def by_rule(self) -> dict[str, int]:
        """How many archives each rule keeps (an archive counts in every rule that keeps it)."""
        counts: dict[str, int] = {}
        for rules in self.kept.values():
            for rule in rules:
                name = rule.removeprefix("oldest ")
                counts[name] = counts.get(name, 0) + 1
        return counts


def _local(tz: Any) -> Callable[[Archive], datetime]:
    return lambda a: a.created.astimezone(tz)


def _buckets(tz: Any) -> list[tuple[str, str, Callable[[Archive, int], object]]]:
    """(rule, policy field, bucket of an archive at position i): restic's rules, finest first."""
    local = _local(tz)

    def hour(a: Archive, _i: int) -> object:
        t = local(a)
        return (t.year, t.month, t.day, t.hour, t.fold)

    return [
        ("last", "keep_last", lambda _a, i: i),
        ("hourly", "keep_hourly", hour),
        ("daily", "keep_daily", lambda a, _i: local(a).date()),
        ("weekly", "keep_weekly", lambda a, _i: local(a).isocalendar()[:2]),
        ("monthly", "keep_monthly", lambda a, _i: (local(a).year, local(a).month)),
        ("yearly", "keep_yearly", lambda a, _i: local(a).year),
    ]


def newest_first(archives: Collection[Archive]) -> list[Archive]:
    return sorted(archives, key=lambda a: (a.created, archive_order(a.name)), reverse=True)


def decide(archives: Sequence[Archive], policy: Retention, *, now: datetime, just_written: str | None = None,
           drilled: str | None = None, protect: Collection[str] = ()) -> Decision:
    """Apply `policy` to `archives` (one series: one cluster's archives) as of `now`.

    `just_written`: the archive the put adds; `drilled`: the one the last passed drill restored;
    `protect`: others never to remove (archives another put added while this one ran)."""
    if not any(getattr(policy, name) for name in Retention.COUNTS) and policy.keep_within is None:
        raise ResourceError("backup.retention: a policy that keeps nothing is refused")
    if len({a.name for a in archives}) != len(archives):
        raise ResourceError("internal error: an archive name appears twice in the retention input")
    future = newest_first([a for a in archives if a.created > now])
    series = newest_first([a for a in archives if a.created <= now])
    reasons: dict[str, list[str]] = {a.name: [] for a in [*future, *series]}
    for a in future:
        reasons[a.name].append(FUTURE)
    for rule, count_of, bucket in _buckets(zone(policy.timezone)):
        left: int = getattr(policy, count_of)
        last: object = None
        for i, a in enumerate(series):
            if left <= 0:
                break
            value = bucket(a, i)
            if i == 0 or value != last:
                reasons[a.name].append(rule)
            elif i == len(series) - 1:
                reasons[a.name].append(f"oldest {rule}")
            else:
                continue
            last, left = value, left - 1
    if series and policy.keep_within is not None:
        cutoff = series[0].created - timedelta(seconds=policy.keep_within)
        for a in series:
            if a.created > cutoff:
                reasons[a.name].append(WITHIN)
    if series:
        reasons[series[0].name].append(NEWEST)
    for name, why in ((just_written, JUST_WRITTEN), (drilled, DRILLED), *((p, "another put's") for p in protect)):
        if name in reasons and why not in reasons[name]:
            reasons[name].append(why)
    missing = policy.min_keep - sum(1 for r in reasons.values() if r)
    for a in series:
        if missing <= 0:
            break
        if not reasons[a.name]:
            reasons[a.name].append(MIN_KEEP)
            missing -= 1
    ordered = [*future, *series]
    return Decision(kept={a.name: tuple(reasons[a.name]) for a in ordered if reasons[a.name]},
                    removed=tuple(a.name for a in ordered if not reasons[a.name]),
                    future=tuple(a.name for a in future))
