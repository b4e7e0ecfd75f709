"""When a wait step ends, in the customer's own time zone."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from perennial.journeys.document import WaitStep

__all__ = ["wait_ends"]

_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def wait_ends(
    step: WaitStep, now: datetime, zone: ZoneInfo, profile: Mapping[str, Any]
) -> datetime:
    """The instant the wait is over (``now`` when it is already over), in UTC: the
    operational store keeps instants so (SQLite drops an offset; a Shanghai 09:00 read
    back as 09:00 UTC would end the wait eight hours late)."""
    return _local_end(step, now, zone, profile).astimezone(UTC)


def _local_end(
    step: WaitStep, now: datetime, zone: ZoneInfo, profile: Mapping[str, Any]
) -> datetime:
    if step.duration is not None:
        return now + step.duration
    local = now.astimezone(zone)
    if step.until_time is not None:
        allowed = set(step.weekdays or _WEEKDAYS)
        for days in range(8):
            day = local.date() + timedelta(days=days)
            candidate = datetime.combine(day, step.until_time, tzinfo=zone)
            if candidate >= local and _WEEKDAYS[day.weekday()] in allowed:
                return candidate
        raise AssertionError("a week always holds an allowed weekday")  # pragma: no cover
    value = profile.get(step.until_field or "")
    if isinstance(value, datetime):
        return max(now, value)
    if isinstance(value, date):
        return max(now, datetime.combine(value, datetime.min.time(), tzinfo=zone))
    return now
