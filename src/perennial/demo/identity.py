"""Anonymous visits before sign-up, and the ``identify`` event that ties them to a customer.

A share of customers (more of those who came from ads and social media) browse
as anonymous visitors, known only by a device id, in the days before they
register; at sign-up an ``identify`` event carries both ids, and usually the
e-mail and phone they gave, so identity resolution can stitch the trail together.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from perennial.demo.catalog import CATEGORIES
from perennial.demo.events import ANONYMOUS, EventBatch, EventType
from perennial.demo.fixed_width import hex_digits, join_columns, mix_bits, strings_from_bytes
from perennial.demo.population import Population

__all__ = ["anonymous_ids", "identity_trails"]

IntArray = npt.NDArray[np.int64]

# Share of customers with an anonymous trail, by acquisition channel.
_TRAIL_SHARE = np.array([0.3, 0.5, 0.45, 0.25, 0.05, 0.15])
_LANDING_PAGES = ("/", "/landing/new-customer", "/landing/618", "/landing/double-11", "/app")
_MEAN_DAYS_BEFORE_SIGNUP = 1.5
_MINUTE = 1.0 / 1440.0


def anonymous_ids(numbers: IntArray) -> pa.Array:
    """Device ids such as ``anon-3f9a0c21d7``, unique per customer number."""
    body = hex_digits(mix_bits(numbers, 40, 0x1F2E3D4C5B), 10)
    prefix = np.broadcast_to(np.frombuffer(b"anon-", dtype=np.uint8), (numbers.shape[0], 5))
    return strings_from_bytes(np.hstack([prefix, body]))


def identity_trails(
    rng: np.random.Generator, population: Population, emails: pa.Array, phones: pa.Array
) -> EventBatch:
    """Anonymous page views before sign-up and one ``identify`` event at sign-up.

    ``emails`` and ``phones`` are the block's customer contacts as written to the
    customers file (null when unknown); the identify event repeats them as given.
    """
    with_trail = np.flatnonzero(
        rng.random(population.size) < _TRAIL_SHARE[population.acquisition_channel]
    )
    device = anonymous_ids(population.numbers[with_trail])
    signup = population.signup_days[with_trail]

    views = 1 + rng.poisson(2.5, with_trail.shape[0])
    owner = np.repeat(np.arange(with_trail.shape[0]), views)
    before = _MINUTE + rng.exponential(_MEAN_DAYS_BEFORE_SIGNUP, owner.shape[0])
    view_days = signup[owner] - before
    # Visitors who registered right after the period began browsed within it.
    early = view_days < 0.0
    view_days[early] = rng.random(int(early.sum())) * signup[owner][early]
    pages = _view_pages(rng, population.favourite_category[with_trail][owner])
    anonymous_views = EventBatch(
        customer=np.full(owner.shape[0], ANONYMOUS),
        days=view_days,
        kind=np.full(owner.shape[0], EventType.PAGE_VIEW),
        properties=join_columns('{"page":"', pages, '"}'),
        anonymous_id=device.take(pa.array(owner)),
    )
    identify = EventBatch(
        customer=with_trail,
        days=signup,
        kind=np.full(with_trail.shape[0], EventType.IDENTIFY),
        properties=_contact_properties(
            emails.take(pa.array(with_trail)), phones.take(pa.array(with_trail))
        ),
        anonymous_id=device,
    )
    return EventBatch.concat([anonymous_views, identify])


def _view_pages(rng: np.random.Generator, favourite: IntArray) -> pa.Array:
    size = favourite.shape[0]
    landing = pa.array(_LANDING_PAGES).take(pa.array(rng.integers(0, len(_LANDING_PAGES), size)))
    category = join_columns("/c/", pa.array([c.name for c in CATEGORIES]).take(pa.array(favourite)))
    return pc.if_else(pa.array(rng.random(size) < 0.5), landing, category)


def _contact_properties(emails: pa.Array, phones: pa.Array) -> pa.Array:
    """``{"email": ..., "phone": ...}`` with the unknown ones left out."""
    email = pc.fill_null(join_columns('"email":"', emails, '"'), "")
    phone = pc.fill_null(join_columns('"phone":"', phones, '"'), "")
    both = pc.and_(pc.is_valid(emails), pc.is_valid(phones))
    separator = pc.if_else(both, ",", "")
    return join_columns("{", email, separator, phone, "}")
