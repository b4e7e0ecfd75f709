"""Behaviour features: event counts over 1/7/30/90-day windows and what they signal.

All read events with ``ts < as_of``, attributed to customers as described in
:mod:`perennial.features.history`. Windows are half-open, ``[as_of - n d,
as_of)``, in 24-hour days: an event exactly ``n`` days before ``as_of`` is
inside the ``n``-day window.
"""

from __future__ import annotations

import ibis  # type: ignore[import-untyped]
import ibis.expr.datatypes as dt  # type: ignore[import-untyped]
import ibis.expr.types as ir  # type: ignore[import-untyped]

from perennial.features.history import History
from perennial.features.registry import Feature, FeatureKind, Section, event_window_name
from perennial.features.trends import TREND_DAYS, login_trend

__all__ = [
    "ACTIVITY_WINDOWS",
    "COUNTED_EVENTS",
    "FIRST_EVENT",
    "HELP_SEARCH_EVENT",
    "HELP_SEARCH_TERMS",
    "PROPERTIES_READ",
    "RECENT_DAYS",
    "SECTION",
    "event_rows",
    "help_search",
]

ACTIVITY_WINDOWS = (1, 7, 30, 90)
"""Days in each ``<events>_<n>d`` window; every window ends at ``as_of``."""

COUNTED_EVENTS: dict[str, str] = {
    "login": "logins",
    "page_view": "page_views",
    "add_to_cart": "add_to_carts",
    "search": "searches",
    "coupon_redeemed": "coupon_redemptions",
    "complaint": "complaints",
    "refund_request": "refund_requests",
}
"""Event type -> the plural that names its window counts (``logins_30d``)."""

HELP_SEARCH_TERMS = (
    "cancel",
    "unsubscribe",
    "export",
    "delete account",
    "delete my account",
    "注销",
    "退订",
    "导出",
)
"""Searches for these (case-insensitive, anywhere in the query) look for a way out."""

HELP_SEARCH_EVENT = "search"
"""The event type whose ``properties.query`` the help searches read."""

PROPERTIES_READ = (HELP_SEARCH_EVENT,)
"""The event types whose ``properties`` any feature reads (the help searches): the
bucketed computation keeps only theirs (:mod:`perennial.features.buckets`)."""

RECENT_DAYS = max(*ACTIVITY_WINDOWS, 2 * TREND_DAYS)
"""The longest window any activity count reads (the help searches' 90 days included)."""

_LAST_LOGIN = "_last_login_at"
_TREND_BEFORE = "_logins_trend_before"

FIRST_EVENT = "_first_event_at"
"""Hidden column: the customer's first event of any type, for ``first_seen_at``."""

_QUERY = r'"query":"((?:[^"\\]|\\.)*)"'
"""``properties.query`` in the stored JSON (ingest writes compact JSON, keys sorted)."""


def _count_feature(event_type: str, plural: str, days: int) -> Feature:
    return Feature(
        event_window_name(plural, days),
        f"`{event_type}` events in the last {days} d.",
        "events",
        f"[as_of - {days} d, as_of)",
        FeatureKind.COUNT,
        0,
    )


SECTION = Section(
    title="Activity",
    introduction=(
        "From `events` before `as_of`. Events without a `customer_id` count for the "
        "customer their `anonymous_id` was linked to by an earlier event carrying both "
        "ids (see Identity above). A customer without events has zero counts and null "
        "ratios."
    ),
    features=(
        *(
            _count_feature(event_type, plural, days)
            for event_type, plural in COUNTED_EVENTS.items()
            for days in ACTIVITY_WINDOWS
        ),
        Feature(
            "days_since_last_login",
            "Days from the last `login` event to `as_of`; null if the customer never logged in.",
            "days",
            "all history",
            FeatureKind.NUMBER,
        ),
        Feature(
            "browse_without_cart_ratio_30d",
            "1 - add_to_carts_30d / page_views_30d, clipped to [0, 1]: the share of "
            "browsing that put nothing in the cart; null without page views.",
            "ratio 0-1",
            "[as_of - 30 d, as_of)",
            FeatureKind.NUMBER,
        ),
        Feature(
            "help_searches_90d",
            "`search` events whose `properties.query` mentions "
            + ", ".join(f"'{term}'" for term in HELP_SEARCH_TERMS)
            + " (case-insensitive): looking for the exit.",
            "events",
            "[as_of - 90 d, as_of)",
            FeatureKind.COUNT,
            0,
        ),
    ),
)


def help_search(properties: ir.StringValue) -> ir.BooleanValue:
    """True when the JSON ``properties`` has a ``query`` mentioning a help-search term."""
    query = properties.re_extract(_QUERY, 1).lower()
    matches = [query.contains(term) for term in HELP_SEARCH_TERMS]
    found = matches[0]
    for match in matches[1:]:
        found |= match
    return found.fill_null(False)


def event_rows(history: History) -> ir.Table:
    """Every activity feature and the login trend, one row per customer with events.

    Only the last :data:`RECENT_DAYS` feed the window counts, so the events are read
    twice: every event once, reduced per customer to the two lifetime facts (first
    event, last login), and the recent ones reduced per customer and event type, a
    handful of conditional counts each, then pivoted into the named columns. Grouping
    every event by customer and type costs several times the cheap per-customer pass
    (most events are older than the windows), and computing each named count over the
    event rows directly costs a filter per count per event.
    """
    events = history.events
    lifetime = events.group_by("customer_id").aggregate(
        **{FIRST_EVENT: events.ts.min(), _LAST_LOGIN: events.ts.max(where=_is_login(events))}
    )
    recent = events.filter(events.ts >= history.days_ago(RECENT_DAYS))
    search = recent.event_type == HELP_SEARCH_EVENT
    # The regular expression runs on search events only (CASE evaluates lazily).
    is_help = ibis.ifelse(search, help_search(recent.properties), False)
    per_type = recent.group_by("customer_id", "event_type").aggregate(
        **{
            _window_column(days): recent.count(where=history.within(recent.ts, days))
            for days in ACTIVITY_WINDOWS
        },
        _trend_before=recent.count(where=history.within(recent.ts, TREND_DAYS, skip=TREND_DAYS)),
        _help_90d=recent.count(where=search & history.within(recent.ts, 90) & is_help),
    )
    pivoted = per_type.group_by("customer_id").aggregate(**_pivot(per_type))
    joined = lifetime.left_join(pivoted, lifetime.customer_id == pivoted.customer_id)
    counts = [name for name in pivoted.columns if name not in ("customer_id", _TREND_BEFORE)]
    return joined.select(
        lifetime.customer_id,
        *[pivoted[name].fill_null(0).name(name) for name in counts if _is_count(name)],
        days_since_last_login=history.days_since(lifetime[_LAST_LOGIN]),
        browse_without_cart_ratio_30d=pivoted.browse_without_cart_ratio_30d,
        logins_trend_30d=login_trend(
            pivoted[event_window_name("logins", TREND_DAYS)].fill_null(0),
            pivoted[_TREND_BEFORE].fill_null(0),
        ),
        **{FIRST_EVENT: lifetime[FIRST_EVENT]},
    )


def _pivot(per_type: ir.Table) -> dict[str, ir.Value]:
    """The named columns from the per-type rows (sums over a customer's few rows)."""
    columns: dict[str, ir.Value] = {}
    for event_type, plural in COUNTED_EVENTS.items():
        of_type = per_type.event_type == event_type
        for days in ACTIVITY_WINDOWS:
            count = per_type[_window_column(days)].sum(where=of_type).fill_null(0)
            columns[event_window_name(plural, days)] = count
    page_views = columns["page_views_30d"].cast(dt.float64)
    carts = columns["add_to_carts_30d"].cast(dt.float64)
    columns["browse_without_cart_ratio_30d"] = (1 - carts / page_views.nullif(0)).clip(0, 1)
    columns["help_searches_90d"] = per_type._help_90d.sum().fill_null(0)
    columns[_TREND_BEFORE] = per_type._trend_before.sum(where=_is_login(per_type)).fill_null(0)
    return columns


def _is_login(table: ir.Table) -> ir.BooleanValue:
    return table.event_type == "login"


def _is_count(name: str) -> bool:
    return name != "browse_without_cart_ratio_30d"


def _window_column(days: int) -> str:
    return f"_last_{days}d"
