"""The board's KPI cards: the API's numbers, formatted for the room, with the change and its tone.

Each card is one field of ``GET /v1/lifecycle/kpis`` (the same
:class:`~perennial.api.routes.lifecycle.KpisView`), so the board and the API
cannot disagree. The change against the previous period is shown as an arrow and
a relative change (counts, money) or percentage points (the repurchase rate);
its tone says whether the move is good news: up is good for everything except
dormant and churned customers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from perennial.api.routes.lifecycle import KpiCard, KpisView, StageKpiCard
from perennial.web.formatting import Formatter
from perennial.web.stage_display import StageStyles

__all__ = ["CARD_KEYS", "Direction", "KpiCardView", "Tone", "kpi_cards"]

Direction = Literal["up", "down", "flat", "none"]
Tone = Literal["good", "bad", "neutral"]
Kind = Literal["count", "money", "rate"]
Translate = Callable[..., str]

CARD_KEYS = (
    "customers",
    "active",
    "new",
    "dormant",
    "churned",
    "revenue",
    "repurchase_rate",
)
"""The cards in board order (each a field of ``KpisView``)."""

_UP_IS_BAD = frozenset({"dormant", "churned"})
_ARROWS: dict[Direction, str] = {"up": "▲", "down": "▼", "flat": "■", "none": ""}
_MISSING = "—"


@dataclass(frozen=True, slots=True)
class KpiCardView:
    key: str
    label: str
    value: str
    """The formatted value (``—`` when the measure has no value)."""
    change: str | None
    """Relative change (``+12.3%``) or, for the rate, percentage points."""
    delta: str | None
    """The absolute change, formatted like the value (``+1,234``); none for the rate."""
    previous: str | None
    direction: Direction
    arrow: str
    tone: Tone
    stages: str | None
    """For stage cards: the stages counted, in the viewer's language."""


def kpi_cards(
    view: KpisView, fmt: Formatter, t: Translate, styles: StageStyles
) -> list[KpiCardView]:
    """One card per :data:`CARD_KEYS`, in that order."""
    currency = view.currency or "CNY"
    cards = []
    for key in CARD_KEYS:
        card: KpiCard = getattr(view, key)
        kind: Kind = (
            "money" if key == "revenue" else "rate" if key == "repurchase_rate" else "count"
        )
        cards.append(_card(key, card, kind, fmt, t, styles, currency))
    return cards


def _card(
    key: str,
    card: KpiCard,
    kind: Kind,
    fmt: Formatter,
    t: Translate,
    styles: StageStyles,
    currency: str,
) -> KpiCardView:
    direction = _direction(card.change)
    stages = None
    if isinstance(card, StageKpiCard):
        counted = styles.ordered(card.stages)
        stages = " · ".join(styles.label(stage) for stage in counted) or t("board.no_stage_role")
    return KpiCardView(
        key=key,
        label=t(f"kpi.{key}"),
        value=_value(card.value, kind, fmt, currency),
        change=_change(card, kind, fmt, t),
        delta=_delta(card.change, kind, fmt, currency),
        previous=None if card.previous is None else _value(card.previous, kind, fmt, currency),
        direction=direction,
        arrow=_ARROWS[direction],
        tone=_tone(key, direction),
        stages=stages,
    )


def _value(value: float | None, kind: Kind, fmt: Formatter, currency: str) -> str:
    if value is None:
        return _MISSING
    if kind == "money":
        return fmt.money(value, currency)
    if kind == "rate":
        return fmt.percent(value)
    return fmt.count(value)


def _delta(change: float | None, kind: Kind, fmt: Formatter, currency: str) -> str | None:
    """The absolute change; none for the rate, whose change is already in points."""
    if change is None or kind == "rate":
        return None
    sign = "+" if change > 0 else "-" if change < 0 else ""
    return sign + _value(abs(change), kind, fmt, currency)


def _change(card: KpiCard, kind: Kind, fmt: Formatter, t: Translate) -> str | None:
    if card.change is None:
        return None
    if kind == "rate":
        return t("board.points", points=fmt.change(card.change).removesuffix("%"))
    if card.change_ratio is None:
        return None
    return fmt.change(card.change_ratio)


def _direction(change: float | None) -> Direction:
    if change is None:
        return "none"
    if change > 0:
        return "up"
    return "down" if change < 0 else "flat"


def _tone(key: str, direction: Direction) -> Tone:
    if direction in ("flat", "none"):
        return "neutral"
    good = direction == "up"
    if key in _UP_IS_BAD:
        good = not good
    return "good" if good else "bad"
