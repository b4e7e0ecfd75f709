"""The managed segment behind an inactivity, prediction or date trigger (see
:mod:`perennial.journeys.scheduled` for why a segment keeps these conditions): its name,
its condition, and when a date trigger's run starts."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from perennial.journeys.document import DateTrigger, InactivityTrigger, PredictionTrigger, Trigger

__all__ = [
    "SEGMENT_KEPT_TRIGGERS",
    "date_trigger_start",
    "trigger_condition",
    "trigger_segment_name",
]

SEGMENT_KEPT_TRIGGERS = (InactivityTrigger, PredictionTrigger, DateTrigger)
"""Triggers whose condition a managed segment keeps."""

_PREFIX = "journey-"


def trigger_segment_name(journey: str) -> str:
    """The managed segment of ``journey``'s trigger (a valid segment name, at most 100)."""
    name = f"{_PREFIX}{journey}"
    if len(name) <= 100:
        return name
    digest = hashlib.sha256(journey.encode()).hexdigest()[:8]
    return f"{name[:91]}-{digest}"


def trigger_condition(trigger: Trigger) -> str | None:
    """The segment-language condition that becomes true when ``trigger`` fires, for the
    triggers a managed segment keeps; None for the others."""
    match trigger:
        case InactivityTrigger(event=event, days=days):
            # Did it once (a customer who never logged in is not "inactive" at login), and
            # not in the window.
            return f"did {event} and did not {event} in last {days} days"
        case PredictionTrigger(field=field, crosses=crosses, threshold=threshold):
            return f"{field} {'>' if crosses == 'above' else '<'} {threshold!r}"
        case DateTrigger(field=field, offset_days=offset):
            return f"days_to_anniversary({field}) == {-offset}"
    return None


def date_trigger_start(trigger: DateTrigger, entered: datetime, zone: ZoneInfo) -> datetime:
    """When a date trigger's run starts: its local time ``at`` on the day it entered (at
    once if that time has passed: the day is still the day)."""
    local = entered.astimezone(zone)
    start = datetime.combine(local.date(), trigger.at, tzinfo=zone)
    return max(start, entered).astimezone(UTC)  # stored as UTC, as every instant is
