"""How stages look on every page: their label in the viewer's language, a colour and an order.

A stage model lists its stages in evaluation order (the first rule that matches
wins), which is not the order of a customer's life: seed000 tests "churned"
before "dormant" and ends with the catch-all "growth". Charts and legends show
stages in life order instead, derived from the board role each stage counts
toward: stages without a role (prospects) first, then new, active, dormant and
churned; within one role the later (more general) rule first, so the catch-all
"growth" comes before "mature". Colours follow the role too (new blue, active
green, dormant amber, churned red), so the same stage has the same colour on the
board, in the lists and on a customer's 360.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from perennial.lifecycle.flows import NEW, UNMATCHED
from perennial.lifecycle.stage_model import KpiRole

__all__ = ["StageDescription", "StageStyle", "StageStyles", "stage_styles"]

_ROLE_ORDER: tuple[KpiRole | None, ...] = (None, "new", "active", "dormant", "churned")
_PALETTES: dict[KpiRole | None, tuple[str, ...]] = {
    None: ("#7b61b8", "#a48fd6", "#5e4a96"),
    "new": ("#2f6fde", "#5b8ff0", "#1f4fa8"),
    "active": ("#127c5b", "#46b38a", "#0b5a42", "#7fd0ae"),
    "dormant": ("#d99100", "#f0b94a", "#a86f00"),
    "churned": ("#c0392b", "#e2776c", "#8e2a20"),
}
_SPECIAL_COLOURS = {UNMATCHED: "#9aa5b1", NEW: "#8fb8f2"}
_OTHER_COLOUR = "#616e7c"


class StageDescription(Protocol):
    """A stage as the serving store and the API describe it."""

    @property
    def key(self) -> str: ...

    @property
    def label_en(self) -> str: ...

    @property
    def label_zh(self) -> str: ...

    @property
    def kpi(self) -> KpiRole | None: ...


@dataclass(frozen=True, slots=True)
class StageStyle:
    key: str
    label: str
    colour: str
    order: int


class StageStyles:
    """The styles of a model's stages in one language, plus the flows' ``(new)`` and
    ``(no stage)``; an unknown key gets its own text and a neutral grey."""

    def __init__(self, styles: Iterable[StageStyle], specials: dict[str, str]) -> None:
        self._styles = {style.key: style for style in styles}
        self._specials = specials

    def __getitem__(self, key: str | None) -> StageStyle:
        if key is None:
            key = UNMATCHED
        known = self._styles.get(key)
        if known is not None:
            return known
        label = self._specials.get(key, key)
        colour = _SPECIAL_COLOURS.get(key, _OTHER_COLOUR)
        return StageStyle(key, label, colour, len(self._styles) + (key == UNMATCHED))

    def label(self, key: str | None) -> str:
        return self[key].label

    def ordered(self, keys: Iterable[str]) -> list[str]:
        """``keys`` in life order; ``(new)`` first, unknown keys and ``(no stage)`` last."""
        return sorted(keys, key=lambda key: (key != NEW, self[key].order, key))

    @property
    def stages(self) -> list[StageStyle]:
        """The model's stages in life order."""
        return sorted(self._styles.values(), key=lambda style: style.order)


def stage_styles(
    stages: Sequence[StageDescription], language: str, *, new_label: str, unmatched_label: str
) -> StageStyles:
    """Labels, colours and life order of ``stages`` (given in evaluation order)."""
    ranked = sorted(
        enumerate(stages),
        key=lambda item: (_ROLE_ORDER.index(item[1].kpi), -item[0]),
    )
    used: dict[KpiRole | None, int] = {}
    styles = []
    for order, (_, stage) in enumerate(ranked):
        palette = _PALETTES[stage.kpi]
        shade = used.get(stage.kpi, 0)
        used[stage.kpi] = shade + 1
        label = stage.label_zh if language == "zh-CN" else stage.label_en
        styles.append(StageStyle(stage.key, label, palette[shade % len(palette)], order))
    return StageStyles(styles, {NEW: new_label, UNMATCHED: unmatched_label})
