"""The one gate every send passes: consent, suppression, quiet hours, frequency caps.

Every journey, every channel and every retry asks :func:`decide` before a message
leaves, so no path can skip a rule (the failure users report with Dittofeed's
never-built rate limiter and with per-journey caps in other tools). The rules
work in the customer's own time zone (rule 7 of the design): quiet hours are a
local clock range and caps count sends on the customer's local calendar days, so
a message at 23:30 in Shanghai counts on that Shanghai day whatever the UTC date.

The decision is a pure function of the request, the customer's consent and past
sends and the policy: the caller loads those from the store in the same
transaction that records the outcome, which makes the check and the count one
atomic step.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "ConsentState",
    "Decision",
    "FrequencyCap",
    "GuardrailPolicy",
    "PastSend",
    "QuietHours",
    "SendRequest",
    "decide",
    "decide_in_priority_order",
    "local_zone",
    "sends_counted_by",
]

Outcome = Literal["send", "defer", "suppress"]


@dataclass(frozen=True)
class QuietHours:
    """A local clock range when marketing must not arrive (may wrap past midnight)."""

    start: time = time(22, 0)
    end: time = time(8, 0)

    def contains(self, moment: time) -> bool:
        """Is ``moment`` quiet? ``start`` is quiet, ``end`` is allowed again."""
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end

    def next_allowed(self, local: datetime) -> datetime:
        """The first allowed local instant at or after ``local`` (aware, customer's zone)."""
        if not self.contains(local.timetz().replace(tzinfo=None)):
            return local
        day = local.date() if local.time() < self.end else local.date() + timedelta(days=1)
        naive = datetime.combine(day, self.end)
        return naive.replace(tzinfo=local.tzinfo)


@dataclass(frozen=True)
class FrequencyCap:
    """At most ``limit`` sends in ``days`` local calendar days (today and the days before).

    ``channel`` ``None`` counts every channel together (the cross-channel cap).
    """

    limit: int
    days: int
    channel: str | None = None

    def describe(self) -> str:
        where = self.channel or "all channels"
        return f"{self.limit} per {self.days} day{'s' if self.days != 1 else ''} on {where}"


@dataclass(frozen=True)
class GuardrailPolicy:
    quiet_hours: QuietHours | None = QuietHours()
    caps: tuple[FrequencyCap, ...] = (FrequencyCap(2, 7), FrequencyCap(1, 1, "sms"))
    transactional_exempt: bool = True
    require_opt_in: frozenset[str] = frozenset()
    default_timezone: str = "Asia/Shanghai"


@dataclass(frozen=True)
class SendRequest:
    customer_id: str
    channel: str
    at: datetime
    """When the send is due (aware)."""
    timezone: str | None = None
    """The customer's IANA zone; the policy's default when unknown or invalid."""
    transactional: bool = False
    quiet_hours: Literal["defer", "drop"] = "defer"
    priority: int = 50


@dataclass(frozen=True)
class PastSend:
    """A send that counts toward caps (delivered or on its way), at its send time."""

    channel: str
    at: datetime
    transactional: bool = False


@dataclass(frozen=True)
class ConsentState:
    suppressed: bool = False
    """On the global suppression list (hard bounce, complaint, legal): nothing is sent."""
    opted_out: frozenset[str] = frozenset()
    opted_in: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    reason: str = ""
    send_at: datetime | None = None
    """For ``defer``: when to ask again (aware UTC)."""
    details: dict[str, str] = field(default_factory=dict)


def local_zone(name: str | None, default: str) -> ZoneInfo:
    """The customer's zone, falling back to the default for missing or unknown names."""
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return ZoneInfo(default)


def decide(
    request: SendRequest,
    consent: ConsentState,
    history: Iterable[PastSend],
    policy: GuardrailPolicy,
) -> Decision:
    """Send now, defer to a later instant, or suppress, with the reason."""
    if consent.suppressed:
        return Decision("suppress", "suppression_list")
    exempt = request.transactional and policy.transactional_exempt
    if not request.transactional:
        if request.channel in consent.opted_out:
            return Decision("suppress", "unsubscribed", details={"channel": request.channel})
        if request.channel in policy.require_opt_in and request.channel not in consent.opted_in:
            return Decision("suppress", "no_opt_in", details={"channel": request.channel})
    if exempt:
        return Decision("send")
    zone = local_zone(request.timezone, policy.default_timezone)
    local = request.at.astimezone(zone)
    quiet = policy.quiet_hours
    if quiet is not None and quiet.contains(local.time()):
        details = {"local_time": local.strftime("%Y-%m-%d %H:%M %Z")}
        if request.quiet_hours == "drop":
            return Decision("suppress", "quiet_hours", details=details)
        resume = quiet.next_allowed(local)
        return Decision(
            "defer", "quiet_hours", send_at=resume.astimezone(request.at.tzinfo), details=details
        )
    past = [send for send in history if not send.transactional]
    for cap in policy.caps:
        counted = sends_counted_by(cap, past, local.date(), zone)
        if counted >= cap.limit and (cap.channel is None or cap.channel == request.channel):
            return Decision(
                "suppress",
                "frequency_cap",
                details={"cap": cap.describe(), "counted": str(counted)},
            )
    return Decision("send")


def sends_counted_by(
    cap: FrequencyCap, history: Sequence[PastSend], today: date, zone: ZoneInfo
) -> int:
    """How many of ``history`` fall in the cap's local calendar days ending ``today``."""
    first = today - timedelta(days=cap.days - 1)
    return sum(
        1
        for send in history
        if (cap.channel is None or send.channel == cap.channel)
        and first <= send.at.astimezone(zone).date() <= today
    )


def decide_in_priority_order(
    requests: Sequence[SendRequest],
    consent: ConsentState,
    history: Sequence[PastSend],
    policy: GuardrailPolicy,
) -> list[Decision]:
    """Decide one customer's competing sends together: the higher priority takes a capped
    slot first, and each send let through counts against the ones after it.

    Decisions come back in the order of ``requests``.
    """
    taken = list(history)
    decisions: dict[int, Decision] = {}
    ranked = sorted(range(len(requests)), key=lambda index: (-requests[index].priority, index))
    for index in ranked:
        request = requests[index]
        decision = decide(request, consent, taken, policy)
        decisions[index] = decision
        if decision.outcome == "send":
            taken.append(PastSend(request.channel, request.at, request.transactional))
    return [decisions[index] for index in range(len(requests))]
