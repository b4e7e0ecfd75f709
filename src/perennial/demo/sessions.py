"""Browsing sessions between orders: logins, page views, searches, abandoned carts.

A customer opens the app about ``engagement * (0.05 + 0.35 * lambda)`` times per
operational week while active, so frequent buyers browse more. In the weeks
before they leave, sessions thin out, carts stay empty (browse without cart) and
searches turn to the help pages: "how to cancel", "export my data".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from perennial.demo.calendar import DemandCalendar
from perennial.demo.catalog import (
    CATEGORIES,
    PRICE_LADDER_RUNGS,
    PRODUCT_IDS,
    SEARCH_TERM_OFFSETS,
    SEARCH_TERMS,
)
from perennial.demo.events import EventBatch, EventType, within_life
from perennial.demo.fixed_width import join_columns
from perennial.demo.population import Population

__all__ = [
    "HELP_QUERIES",
    "PLATFORMS",
    "browsing_sessions",
    "login_properties",
    "product_choice",
    "search_terms",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

HELP_QUERIES = (
    "how to cancel", "export my data", "如何注销账号", "如何导出数据", "取消自动续费",
    "delete account", "退订",
)  # fmt: skip
PLATFORMS = ("ios", "android", "web", "mini_program")
_PLATFORM_BY_ORDER_CHANNEL = np.array([0, 3, 2, 1])  # app, mini_program, web, store
_HELP_PAGES = ("/help/cancel-account", "/help/export-data", "/account/settings")

_BASE_SESSIONS_PER_WEEK = 0.05
_SESSIONS_PER_PURCHASE = 0.35
_LOGIN_SHARE = 0.6
_EXTRA_VIEWS = 0.4
_MINUTE = 1.0 / 1440.0


@dataclass(frozen=True)
class _Sessions:
    customer: IntArray
    days: FloatArray
    fading: BoolArray


def browsing_sessions(
    rng: np.random.Generator,
    population: Population,
    calendar: DemandCalendar,
    churn_days: FloatArray,
    limit_days: FloatArray,
) -> EventBatch:
    """Every browsing session of the block's customers, as events up to ``limit_days``."""
    sessions = _session_starts(rng, population, calendar, churn_days)
    size = sessions.customer.shape[0]
    fading = sessions.fading
    login = rng.random(size) < _LOGIN_SHARE
    views = 1 + rng.poisson(_EXTRA_VIEWS, size)
    searched = rng.random(size) < np.where(fading, 0.5, 0.2)
    help_search = searched & (rng.random(size) < np.where(fading, 0.6, 0.03))
    carted = rng.random(size) < np.where(fading, 0.03, 0.25)
    favourite = population.favourite_category[sessions.customer]

    view_session = np.repeat(np.arange(size), views)
    view_rank = np.arange(view_session.shape[0]) - np.repeat(np.cumsum(views) - views, views)
    view_days = sessions.days[view_session] + (view_rank + 1 + rng.random(view_rank.shape[0])) * (
        0.7 * _MINUTE
    )
    search_days = sessions.days + (0.3 + rng.exponential(0.5, size)) * _MINUTE
    cart_days = sessions.days + (views + 1.5) * _MINUTE

    def alive(chosen: IntArray, days: FloatArray) -> IntArray:
        keep = within_life(sessions.customer[chosen], days, limit_days)
        return chosen[keep]

    logins = alive(np.flatnonzero(login), sessions.days[login])
    viewed = np.flatnonzero(within_life(sessions.customer[view_session], view_days, limit_days))
    searches = alive(np.flatnonzero(searched), search_days[searched])
    carts = alive(np.flatnonzero(carted), cart_days[carted])
    view_owner = view_session[viewed]
    return EventBatch.concat(
        [
            EventBatch(
                customer=sessions.customer[logins],
                days=sessions.days[logins],
                kind=np.full(logins.shape[0], EventType.LOGIN),
                properties=login_properties(population, sessions.customer[logins]),
            ),
            EventBatch(
                customer=sessions.customer[view_owner],
                days=view_days[viewed],
                kind=np.full(viewed.shape[0], EventType.PAGE_VIEW),
                properties=_pages(rng, favourite[view_owner], fading[view_owner]),
            ),
            EventBatch(
                customer=sessions.customer[searches],
                days=search_days[searches],
                kind=np.full(searches.shape[0], EventType.SEARCH),
                properties=_queries(rng, favourite[searches], help_search[searches]),
            ),
            EventBatch(
                customer=sessions.customer[carts],
                days=cart_days[carts],
                kind=np.full(carts.shape[0], EventType.ADD_TO_CART),
                properties=join_columns(
                    '{"product_id":"', product_choice(rng, favourite[carts]), '","quantity":1}'
                ),
            ),
        ]
    )


def _session_starts(
    rng: np.random.Generator,
    population: Population,
    calendar: DemandCalendar,
    churn_days: FloatArray,
) -> _Sessions:
    """Poisson session times over each customer's active life, thinned while fading."""
    rate = population.engagement * (
        _BASE_SESSIONS_PER_WEEK + _SESSIONS_PER_PURCHASE * population.purchase_rate
    )
    first = calendar.to_operational(population.signup_days)
    last = calendar.to_operational(np.minimum(churn_days, calendar.days))
    counts = rng.poisson(rate * np.maximum(last - first, 0.0))
    customer = np.repeat(np.arange(population.size, dtype=np.int64), counts)
    weeks = first[customer] + rng.random(customer.shape[0]) * (last - first)[customer]
    days = calendar.to_calendar(weeks)

    fade_days = 7.0 * np.clip(2.0 / population.purchase_rate, 2.0, 8.0)[customer]
    progress = np.clip((days - (churn_days[customer] - fade_days)) / fade_days, 0.0, 1.0)
    kept = rng.random(customer.shape[0]) < 1.0 - 0.8 * progress
    return _Sessions(customer=customer[kept], days=days[kept], fading=progress[kept] > 0.0)


def login_properties(population: Population, customer: IntArray) -> pa.Array:
    """``{"platform": ...}``: each customer's device follows their usual order channel."""
    platform = _PLATFORM_BY_ORDER_CHANNEL[population.preferred_order_channel[customer]]
    ios_or_android = (population.first_number + customer) % 2
    platform = np.where(platform == 0, ios_or_android, platform)
    return join_columns('{"platform":"', pa.array(PLATFORMS).take(pa.array(platform)), '"}')


def product_choice(rng: np.random.Generator, favourite: IntArray) -> pa.Array:
    """A product id per row: from the favourite category seven times in ten."""
    size = favourite.shape[0]
    other = rng.integers(0, len(CATEGORIES), size)
    category = np.where(rng.random(size) < 0.7, favourite, other)
    rung = np.clip(
        np.rint(rng.normal(PRICE_LADDER_RUNGS / 2, 6.0, size)), 0, PRICE_LADDER_RUNGS - 1
    )
    return pa.array(PRODUCT_IDS).take(
        pa.array(category * PRICE_LADDER_RUNGS + rung.astype(np.int64))
    )


def search_terms(rng: np.random.Generator, category: IntArray) -> pa.Array:
    """A search term of each row's category."""
    start = SEARCH_TERM_OFFSETS[category]
    width = SEARCH_TERM_OFFSETS[category + 1] - start
    term = start + np.floor(rng.random(category.shape[0]) * width).astype(np.int64)
    return pa.array(SEARCH_TERMS).take(pa.array(term))


def _queries(rng: np.random.Generator, favourite: IntArray, help_search: BoolArray) -> pa.Array:
    size = favourite.shape[0]
    category = np.where(rng.random(size) < 0.6, favourite, rng.integers(0, len(CATEGORIES), size))
    product_terms = search_terms(rng, category)
    help_terms = pa.array(HELP_QUERIES).take(pa.array(rng.integers(0, len(HELP_QUERIES), size)))
    return join_columns(
        '{"query":"', pc.if_else(pa.array(help_search), help_terms, product_terms), '"}'
    )


def _pages(rng: np.random.Generator, favourite: IntArray, fading: BoolArray) -> pa.Array:
    """Category, product, home or (while fading) help pages."""
    size = favourite.shape[0]
    kind = rng.random(size)
    categories = pa.array([c.name for c in CATEGORIES]).take(pa.array(favourite))
    category_page = join_columns("/c/", categories)
    product_page = join_columns("/p/", product_choice(rng, favourite))
    help_page = pa.array(_HELP_PAGES).take(pa.array(rng.integers(0, len(_HELP_PAGES), size)))
    page = pc.if_else(pa.array(kind < 0.4), category_page, product_page)
    page = pc.if_else(pa.array(kind >= 0.85), pa.scalar("/"), page)
    page = pc.if_else(pa.array(fading & (kind < 0.3)), help_page, page)
    return join_columns('{"page":"', page, '"}')
