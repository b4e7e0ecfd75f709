"""A customer's journey history for the 360: what each journey did to them, newest first.

The entries are :meth:`JourneyService.timeline` (the journey log: entries, messages
sent, deferred, suppressed and failed, tasks, coupons, conversions, ends) with the
channel of each message and the reason in words. The log names the channel only for
a message that went out; for the others it is the channel of the send step in the
version the run followed, read from that version's document. A provider's error
text can quote the address it refused, so for a viewer who sees contacts masked,
e-mail addresses and phone numbers in it are masked the way the 360 masks them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from perennial.access.masking import mask_email, mask_phone
from perennial.journeys.document import Journey, SendStep, WebhookStep
from perennial.journeys.repository import UnknownJourney
from perennial.journeys.service import JourneyService
from perennial.web.formatting import Formatter
from perennial.web.i18n import CATALOGUE

__all__ = ["MESSAGE_OUTCOMES", "JourneyEntry", "journey_history", "mask_contacts"]

MESSAGE_OUTCOMES = frozenset({"sent", "deferred", "suppressed", "dead"})
"""Log entries about one message (they have a channel)."""
_REASONED = frozenset({"deferred", "suppressed"})
_FREE_TEXT = frozenset({"dead", "failed"})
_BAD = frozenset({"suppressed", "dead", "failed"})
_GOOD = frozenset({"sent", "converted", "completed"})
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"\+?\d[\d \-]{6,}\d")


@dataclass(frozen=True, slots=True)
class JourneyEntry:
    at: datetime
    time: str
    journey: str
    version: int
    step: str | None
    what: str
    what_label: str
    channel: str | None
    channel_label: str | None
    detail: str | None
    """The reason in words (suppressed, deferred), the error (a failed delivery or run), the
    coupon code or the goal event; ``None`` when the entry needs none."""
    tone: str
    """``good``, ``bad`` or ``neutral``: how the entry is coloured."""


def mask_contacts(text: str) -> str:
    """``text`` with every e-mail address and phone number in it masked."""
    text = _EMAIL.sub(lambda found: mask_email(found.group()), text)
    return _PHONE.sub(lambda found: mask_phone(found.group()), text)


def journey_history(
    service: JourneyService, customer_id: str, fmt: Formatter, *, masked: bool
) -> list[JourneyEntry]:
    """The customer's journey log as the 360 lists it (newest first, at most 200 entries)."""
    documents: dict[tuple[str, int], Journey | None] = {}

    def channel_of(item: dict[str, Any]) -> str | None:
        if item["what"] == "sent" and item["detail"]:
            return str(item["detail"])
        key = (item["journey"], int(item["version"]))
        if key not in documents:
            try:
                documents[key] = service.document(*key)
            except UnknownJourney:
                documents[key] = None
        document = documents[key]
        step = document.steps.get(item["step"] or "") if document else None
        if isinstance(step, SendStep):
            return step.channel
        return "webhook" if isinstance(step, WebhookStep) else None

    label = _labeller(fmt.language)
    entries = []
    for item in service.timeline(customer_id):
        what = str(item["what"])
        channel = channel_of(item) if what in MESSAGE_OUTCOMES else None
        entries.append(
            JourneyEntry(
                at=item["at"],
                time=fmt.datetime(item["at"]),
                journey=str(item["journey"]),
                version=int(item["version"]),
                step=item["step"],
                what=what,
                what_label=label(f"journeys.what.{what}", what),
                channel=channel,
                channel_label=label(f"journeys.channel.{channel}", channel) if channel else None,
                detail=_detail(what, item["detail"], label, masked=masked),
                tone="bad" if what in _BAD else "good" if what in _GOOD else "neutral",
            )
        )
    return entries


def _labeller(language: str) -> Callable[[str, str], str]:
    labels = CATALOGUE[language]
    return lambda key, fallback: labels.get(key, fallback)


def _detail(
    what: str, detail: object, label: Callable[[str, str], str], *, masked: bool
) -> str | None:
    if detail is None or detail == "" or what in ("sent", "task", "entered", "holdout"):
        return None
    text = str(detail)
    if what in _REASONED:
        return label(f"journeys.reason.{text}", text)
    if what in _FREE_TEXT and masked:
        return mask_contacts(text)
    return text
