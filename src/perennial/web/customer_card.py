"""A customer's 360 as people read it: labelled, grouped and formatted in their language.

The API's :class:`~perennial.api.customer_views.Customer360` holds machine values
(ISO instants, raw floats, feature column names). Here each feature gets its
label from :mod:`perennial.features.labels` and a format chosen by the feature
registry's unit (money, share, days, counts, local time), as
:mod:`perennial.lifecycle.profile_card` does for the CLI, but with the
dashboard's number formats (万/亿 in Chinese). A feature the registry does not
know (a later model's output) is still shown, under "Other", by its column name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from perennial.api.customer_views import CustomerDetails, FeatureValue
from perennial.features.labels import Language, feature_label
from perennial.features.registry import Feature
from perennial.features.snapshot import SECTIONS
from perennial.web.formatting import Formatter

__all__ = [
    "KEY_FEATURES",
    "SECTION_KEYS",
    "Fact",
    "FactSection",
    "detail_facts",
    "feature_sections",
    "format_feature",
    "key_facts",
]

KEY_FEATURES = (
    "monetary_total",
    "frequency_orders",
    "monetary_mean",
    "recency_days",
    "last_order_at",
    "expected_next_order_at",
    "own_median_interval_days",
    "days_since_last_login",
    "tenure_days",
    "favourite_category",
)
"""What an agent or operator needs first, in this order (when the profile has them)."""

SECTION_KEYS = {
    "Customer": "section.customer",
    "Purchases": "section.purchases",
    "Purchase rhythm": "section.purchase_rhythm",
    "Activity": "section.activity",
    "Trends": "section.trends",
}
"""Label keys of the feature registry's sections; ``section.other`` for the rest."""

_HIDDEN = frozenset({"customer_id", "as_of"})
"""Shown elsewhere on the page."""
_REGISTRY: dict[str, Feature] = {f.name: f for s in SECTIONS for f in s.features}
_MISSING = "—"


@dataclass(frozen=True, slots=True)
class Fact:
    name: str
    label: str
    value: str


@dataclass(frozen=True, slots=True)
class FactSection:
    key: str
    """The section's label key (``section.purchases``)."""
    facts: tuple[Fact, ...]


def _language(fmt: Formatter) -> Language:
    return "zh" if fmt.language == "zh-CN" else "en"


def _label(name: str, fmt: Formatter) -> str:
    label = feature_label(name)
    return label.text(_language(fmt)) if label else name


def format_feature(
    name: str, value: FeatureValue, fmt: Formatter, currency: str, yes_no: tuple[str, str]
) -> str:
    """``value`` of feature ``name`` by its registry unit: local time, money, share, days, count."""
    if value is None:
        return _MISSING
    if isinstance(value, bool):
        return yes_no[0] if value else yes_no[1]
    feature = _REGISTRY.get(name)
    unit = feature.unit if feature else ""
    if isinstance(value, str):
        if unit == "instant":
            return _instant(value, fmt)
        return value
    if unit == "currency":
        return fmt.money(value, currency, compact=False)
    if unit == "ratio 0-1":
        return fmt.percent(value)
    if isinstance(value, int):
        return fmt.count(value, compact=False)
    return fmt.count(round(value, 1 if unit == "days" else 2), compact=False)


def _instant(text: str, fmt: Formatter) -> str:
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        return text
    return fmt.datetime(instant) if instant.tzinfo else text


def _fact(
    name: str, value: FeatureValue, fmt: Formatter, currency: str, yes_no: tuple[str, str]
) -> Fact:
    return Fact(name, _label(name, fmt), format_feature(name, value, fmt, currency, yes_no))


def key_facts(
    features: Mapping[str, FeatureValue], fmt: Formatter, currency: str, yes_no: tuple[str, str]
) -> list[Fact]:
    """The :data:`KEY_FEATURES` the profile has, labelled and formatted."""
    return [
        _fact(name, features[name], fmt, currency, yes_no)
        for name in KEY_FEATURES
        if name in features
    ]


def feature_sections(
    features: Mapping[str, FeatureValue], fmt: Formatter, currency: str, yes_no: tuple[str, str]
) -> list[FactSection]:
    """Every feature, grouped as the registry groups them, unknown ones last under "Other"."""
    sections = []
    placed: set[str] = set(_HIDDEN)
    for section in SECTIONS:
        names = [f.name for f in section.features if f.name in features and f.name not in placed]
        placed.update(names)
        facts = tuple(_fact(name, features[name], fmt, currency, yes_no) for name in names)
        if facts:
            sections.append(FactSection(SECTION_KEYS.get(section.title, "section.other"), facts))
    others = tuple(
        _fact(name, value, fmt, currency, yes_no)
        for name, value in features.items()
        if name not in placed
    )
    if others:
        sections.append(FactSection("section.other", others))
    return sections


def detail_facts(details: CustomerDetails, fmt: Formatter, t: Callable[..., str]) -> list[Fact]:
    """The customer record's own fields, labelled by ``t`` (the page's label catalogue)."""
    consent = details.consent
    states = {True: t("consent.yes"), False: t("consent.no"), None: _MISSING}
    channels = ", ".join(
        f"{t(f'consent.{channel}')}: {states[getattr(consent, channel)]}"
        for channel in ("sms", "email", "push", "wechat")
    )
    values = {
        "created_at": fmt.datetime(details.created_at) if details.created_at else _MISSING,
        "birthday": fmt.date(details.birthday) if details.birthday else _MISSING,
        "gender": details.gender or _MISSING,
        "region": details.region or _MISSING,
        "acquisition_channel": details.acquisition_channel or _MISSING,
        "timezone": details.timezone or _MISSING,
        "consent": channels,
    }
    return [Fact(name, t(f"detail.{name}"), value) for name, value in values.items()]
