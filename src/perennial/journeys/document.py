"""The journey document: one YAML/JSON file per journey, validated whole by a schema.

A journey is a trigger, entry rules and a set of named steps joined by ``next``
edges (``then``/``else`` for branches, ``on_event``/``on_timeout`` for waits on an
event, one edge per variant for splits). The schema checks each key's type and
range; :mod:`perennial.journeys.graph` then checks the shape (reachable, no
dangling edge, loops only through a wait, every path ends) and
:mod:`perennial.journeys.loading` the expressions inside. Unknown keys are errors:
a misspelt ``timeout`` must not silently mean "wait forever".
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import time, timedelta
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    HttpUrl,
    PlainSerializer,
    model_validator,
)

from perennial.journeys.durations import format_duration, parse_duration

__all__ = [
    "CHANNELS",
    "LOCALES",
    "Action",
    "BranchStep",
    "CouponStep",
    "DateTrigger",
    "Duration",
    "EntryRules",
    "EventTrigger",
    "ExitStep",
    "Goal",
    "InactivityTrigger",
    "Journey",
    "LocalizedText",
    "ManualTrigger",
    "Message",
    "PredictionTrigger",
    "ScheduleTrigger",
    "SegmentTrigger",
    "SendStep",
    "SplitStep",
    "SplitVariant",
    "StageChangeTrigger",
    "Step",
    "TagStep",
    "TaskStep",
    "Trigger",
    "UpdateAttributeStep",
    "WaitForEventStep",
    "WaitStep",
    "WebhookStep",
    "templates_in",
]

CHANNELS = ("email", "sms", "app_push", "wechat_work", "wechat_official")
"""Message channels a send step may name (adapters live in :mod:`perennial.channels`)."""

LOCALES = ("zh-CN", "en")

Name = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_\-]{0,99}$")]
"""Journey and step names: lower-case, digits, ``_`` and ``-`` (they go into keys and URLs)."""

Duration = Annotated[
    timedelta,
    BeforeValidator(lambda value: parse_duration(value) if isinstance(value, str) else value),
    PlainSerializer(format_duration, return_type=str),
]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
Locale = Literal["zh-CN", "en"]
LocalizedText = str | dict[Locale, Annotated[str, Field(min_length=1, max_length=100_000)]]
"""One text for every locale, or one per locale (``{zh-CN: ..., en: ...}``)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# -- triggers ---------------------------------------------------------------------------


class EventTrigger(_Strict):
    """Enter when the customer does ``event`` (optionally only events matching ``where``)."""

    type: Literal["event"]
    event: str = Field(min_length=1, max_length=100)
    where: str | None = Field(default=None, max_length=4000)


class SegmentTrigger(_Strict):
    """Enter when the customer enters (or exits) a segment."""

    type: Literal["segment_enter", "segment_exit"]
    segment: str = Field(min_length=1, max_length=100)


class StageChangeTrigger(_Strict):
    """Enter when the lifecycle stage changes (from any stage when ``from`` is absent)."""

    type: Literal["stage_change"]
    from_stage: str | None = Field(default=None, alias="from", max_length=100)
    to_stage: str | None = Field(default=None, alias="to", max_length=100)

    @model_validator(mode="after")
    def _names_a_stage(self) -> StageChangeTrigger:
        if self.from_stage is None and self.to_stage is None:
            raise ValueError("name the stage left ('from'), the stage entered ('to'), or both")
        if self.from_stage is not None and self.from_stage == self.to_stage:
            raise ValueError("'from' and 'to' are the same stage: that change never happens")
        return self


class DateTrigger(_Strict):
    """Enter every year on a date field's day (birthday, anniversary), at a local time."""

    type: Literal["date"]
    field: str = Field(min_length=1, max_length=100)
    offset_days: int = Field(default=0, ge=-60, le=60)
    at: time = time(9, 0)


class ScheduleTrigger(_Strict):
    """Enter a segment's members (everyone without one) on a cron schedule, in local time."""

    type: Literal["schedule"]
    cron: str = Field(min_length=1, max_length=200)
    segment: str | None = Field(default=None, max_length=100)


class InactivityTrigger(_Strict):
    """Enter when the customer has not done ``event`` for ``days`` days."""

    type: Literal["inactivity"]
    event: str = Field(min_length=1, max_length=100)
    days: int = Field(ge=1, le=3650)


class PredictionTrigger(_Strict):
    """Enter when a prediction field crosses a threshold (e.g. churn probability above 0.6,
    days until the expected next order below 3)."""

    type: Literal["prediction"]
    field: str = Field(min_length=1, max_length=100)
    crosses: Literal["above", "below"]
    threshold: float


class ManualTrigger(_Strict):
    """Enter only customers enrolled by the API or CLI (a list upload)."""

    type: Literal["manual"]


Trigger = Annotated[
    EventTrigger
    | SegmentTrigger
    | StageChangeTrigger
    | DateTrigger
    | ScheduleTrigger
    | InactivityTrigger
    | PredictionTrigger
    | ManualTrigger,
    Field(discriminator="type"),
]

# -- steps -------------------------------------------------------------------------------


class Message(_Strict):
    """A message's parts; each is a Jinja template rendered in a sandbox."""

    subject: LocalizedText | None = None
    text: LocalizedText
    html: LocalizedText | None = None


class WaitStep(_Strict):
    """Wait a duration, or until a local time of day (on allowed weekdays), or until a date
    field's day at a local time."""

    type: Literal["wait"]
    duration: Duration | None = None
    until_time: time | None = None
    weekdays: tuple[Weekday, ...] | None = Field(default=None, min_length=1)
    until_field: str | None = Field(default=None, max_length=100)
    next: Name

    @model_validator(mode="after")
    def _one_way_to_wait(self) -> WaitStep:
        chosen = [self.duration is not None, self.until_time is not None, self.until_field]
        if sum(bool(way) for way in chosen) != 1:
            raise ValueError("give exactly one of 'duration', 'until_time' or 'until_field'")
        if self.weekdays is not None and self.until_time is None:
            raise ValueError("'weekdays' goes with 'until_time'")
        return self


class WaitForEventStep(_Strict):
    """Wait until the customer does ``event`` (two exits: it happened, or the time ran out)."""

    type: Literal["wait_for_event"]
    event: str = Field(min_length=1, max_length=100)
    where: str | None = Field(default=None, max_length=4000)
    timeout: Duration
    on_event: Name
    on_timeout: Name


class BranchStep(_Strict):
    """Go to ``then`` when the condition (segment language) holds, else to ``else``."""

    type: Literal["branch"]
    condition: str = Field(min_length=1, max_length=8000)
    then: Name
    otherwise: Name = Field(alias="else")


class SplitVariant(_Strict):
    name: Name
    weight: float = Field(gt=0, le=1000)
    next: Name


class SplitStep(_Strict):
    """A/B/n split, deterministic by hashing customer and journey (sticky on re-entry)."""

    type: Literal["split"]
    variants: tuple[SplitVariant, ...] = Field(min_length=2, max_length=26)

    @model_validator(mode="after")
    def _distinct_names(self) -> SplitStep:
        names = [variant.name for variant in self.variants]
        if len(set(names)) != len(names):
            raise ValueError(f"variant names repeat: {', '.join(names)}")
        return self


class SendStep(_Strict):
    """Send a message on a channel, through the guardrails."""

    type: Literal["send"]
    channel: Literal["email", "sms", "app_push", "wechat_work", "wechat_official"]
    message: Message
    transactional: bool = False
    next: Name


class CouponStep(_Strict):
    """Take one unused code from a coupon pool for the customer (``coupon_code`` in later
    messages)."""

    type: Literal["coupon"]
    pool: str = Field(min_length=1, max_length=100)
    next: Name


class TaskStep(_Strict):
    """Create a customer-service task (e.g. a call-back due within 24 h) for a team."""

    type: Literal["task"]
    team: str = Field(min_length=1, max_length=100)
    title: LocalizedText
    priority: Literal["low", "normal", "high", "urgent"] = "normal"
    due_in: Duration
    next: Name


class TagStep(_Strict):
    """Add and/or remove a manual tag."""

    type: Literal["tag"]
    add: str | None = Field(default=None, max_length=100)
    remove: str | None = Field(default=None, max_length=100)
    next: Name

    @model_validator(mode="after")
    def _does_something(self) -> TagStep:
        if self.add is None and self.remove is None:
            raise ValueError("give 'add', 'remove' or both")
        return self


class WebhookStep(_Strict):
    """POST a JSON body (values may be templates) to a URL, signed with HMAC."""

    type: Literal["webhook"]
    url: HttpUrl
    body: dict[str, str | int | float | bool | None] = Field(default_factory=dict)
    next: Name


class UpdateAttributeStep(_Strict):
    """Set a customer attribute (a value or a template)."""

    type: Literal["update_attribute"]
    field: str = Field(min_length=1, max_length=100)
    value: str | int | float | bool | None
    next: Name


class ExitStep(_Strict):
    type: Literal["exit"]


Action = SendStep | CouponStep | TaskStep | TagStep | WebhookStep | UpdateAttributeStep
Step = Annotated[
    WaitStep
    | WaitForEventStep
    | BranchStep
    | SplitStep
    | SendStep
    | CouponStep
    | TaskStep
    | TagStep
    | WebhookStep
    | UpdateAttributeStep
    | ExitStep,
    Field(discriminator="type"),
]

# -- the journey --------------------------------------------------------------------------


class EntryRules(_Strict):
    """Who may enter, and how often.

    ``re_entry``: ``never`` (once per customer, ever), ``after_exit`` (again once the
    previous run ended), ``after_days`` (again ``re_entry_days`` after the previous
    entry), ``every`` (every trigger occurrence, up to ``max_concurrent`` runs at once).
    """

    re_entry: Literal["never", "after_exit", "after_days", "every"] = "after_exit"
    re_entry_days: int | None = Field(default=None, ge=1, le=3650)
    max_concurrent: int = Field(default=1, ge=1, le=100)
    limit: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _days_with_after_days(self) -> EntryRules:
        if (self.re_entry == "after_days") != (self.re_entry_days is not None):
            raise ValueError("'re_entry_days' is needed with, and only with, re_entry: after_days")
        if self.re_entry != "every" and self.max_concurrent != 1:
            raise ValueError("'max_concurrent' above 1 needs re_entry: every")
        return self


class Goal(_Strict):
    """The run ends (converted) when the customer does ``event`` while in the journey."""

    event: str = Field(min_length=1, max_length=100)
    where: str | None = Field(default=None, max_length=4000)


class Journey(_Strict):
    """One journey document (the version number is given by the store on save)."""

    journey: Name
    title: str = Field(default="", max_length=200)
    description: str = Field(default="", max_length=4000)
    category: Literal["marketing", "transactional"] = "marketing"
    priority: int = Field(default=50, ge=0, le=100)
    quiet_hours: Literal["defer", "drop"] = "defer"
    holdout_percent: float = Field(default=0.0, ge=0.0, le=50.0)
    trigger: Trigger
    entry: EntryRules = EntryRules()
    goal: Goal | None = None
    start: Name
    steps: dict[Name, Step] = Field(min_length=1, max_length=200)


def templates_in(step: Step) -> Iterator[tuple[str, LocalizedText, bool]]:
    """Each template a step renders: (key path below the step, text, rendered as HTML)."""
    match step:
        case SendStep(message=message):
            for part in ("subject", "text", "html"):
                text = getattr(message, part)
                if text is not None:
                    yield f"message.{part}", text, part == "html"
        case TaskStep(title=title):
            yield "title", title, False
        case WebhookStep(body=body):
            for key, value in body.items():
                if isinstance(value, str):
                    yield f"body.{key}", value, False
        case UpdateAttributeStep(value=str() as value):
            yield "value", value, False
