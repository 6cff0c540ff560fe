"""Time zones by IANA name (`backup.retention.timezone`), from the system's tz database or `tzdata`."""

from __future__ import annotations

import zoneinfo

from k0sctl_resource.runtime.errors import ResourceError


def zone(name: str) -> zoneinfo.ZoneInfo:
    """The zone `name` (e.g. `Europe/Berlin`, `UTC`); ResourceError when there is none of that name."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise ResourceError(f"unknown time zone {name[:60]!r} (expected an IANA name such as "
                            "Europe/Berlin or UTC)") from None


def check_zone(name: str, path: str) -> None:
    try:
        zone(name)
    except ResourceError as exc:
        raise ResourceError(f"{path}: {exc.message}") from None
