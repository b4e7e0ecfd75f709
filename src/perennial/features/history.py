"""The store as it was known at ``as_of``: the only rows any feature may read.

Every feature is computed from these relations (DESIGN.md rule 1, point in
time): orders with ``placed_at < as_of``, order lines of paid orders before
``as_of``, events with ``ts < as_of`` and customer records created before
``as_of`` (or undated). Nothing at or after ``as_of`` reaches a feature, so a
snapshot as of a past date is what a scorer would have seen that day.

Anonymous events are attributed point in time too: an ``anonymous_id`` belongs
to the customer of the earliest event before ``as_of`` that carries both that
``anonymous_id`` and a ``customer_id`` (a login or an ``identify`` event). The
``identities`` table is not used here: it holds today's identity graph without
the time each link became known, so it would let a login after ``as_of`` claim
anonymous browsing before it. Links made only through a phone or e-mail (an
``identify`` event without a customer id) are therefore not followed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import available_timezones

import ibis  # type: ignore[import-untyped]
import ibis.expr.datatypes as dt  # type: ignore[import-untyped]
import ibis.expr.types as ir  # type: ignore[import-untyped]
from ibis import _

from perennial.features.registry import DAY_MICROSECONDS
from perennial.schema.tables import OrderStatus
from perennial.store.backends import Backend, as_nullable
from perennial.store.warehouse import Snapshot

__all__ = [
    "History",
    "anonymous_links",
    "days_between",
    "load_history",
    "resolved_events",
]


@dataclass(frozen=True)
class History:
    """Point-in-time views of the canonical tables, with local purchase days.

    ``orders`` has every order before ``as_of`` (any status) with ``paid`` (bool),
    ``amount`` (decimal, as stored) and ``local_day`` (the calendar day in ``timezone``).
    ``purchase_lines`` has the lines of paid orders with the order's customer and
    local day. ``events`` has ``customer_id`` resolved (anonymous events of unknown
    visitors are dropped).
    """

    as_of: datetime
    timezone: str
    customers: ir.Table
    orders: ir.Table
    purchase_lines: ir.Table
    events: ir.Table
    as_of_scalar: ir.TimestampScalar | None = None
    """When set, every expression reads the as-of from it (a value of a one-row table)
    instead of the literal ``as_of``, so one compiled query serves any as-of: the
    backfill's per-day query. ``as_of`` is then only the first day's."""
    epoch_microseconds: Callable[[ir.TimestampValue], ir.IntegerValue] | None = None
    """The engine's cheap, exact epoch microseconds (:meth:`Backend.epoch_microseconds`);
    without it, day counts use Ibis's portable but slow ``delta``."""

    @property
    def as_of_value(self) -> ir.TimestampScalar:
        if self.as_of_scalar is not None:
            return self.as_of_scalar
        return _utc_literal(self.as_of)

    def days_ago(self, days: int) -> ir.TimestampScalar:
        """The instant ``days`` 24-hour days before ``as_of``: the start of a window."""
        if self.as_of_scalar is not None:  # seconds, not days: no calendar arithmetic
            return self.as_of_scalar - ibis.interval(days * 86_400, unit="s")
        return _utc_literal(self.as_of - timedelta(days=days))

    def within(self, instant: ir.TimestampValue, days: int, *, skip: int = 0) -> ir.BooleanValue:
        """``instant`` lies in ``[as_of - (skip + days) d, as_of - skip d)``.

        ``skip=0`` is the last ``days`` days; ``skip=30, days=30`` the 30 days before
        those. Rows are already before ``as_of``, so the upper edge matters only
        when ``skip > 0``.
        """
        inside = instant >= self.days_ago(skip + days)
        if skip:
            inside &= instant < self.days_ago(skip)
        return inside

    def days_since(self, instant: ir.TimestampValue) -> ir.FloatingValue:
        """Float days from ``instant`` to ``as_of``."""
        return self.days_between(self.as_of_value, instant)

    def days_between(
        self, later: ir.TimestampValue, earlier: ir.TimestampValue
    ) -> ir.FloatingValue:
        """``later - earlier`` in float days of 24 hours, exact to the microsecond."""
        if self.epoch_microseconds is None:
            return days_between(later, earlier)
        micros = self.epoch_microseconds(later) - self.epoch_microseconds(earlier)
        return micros.cast(dt.float64) / DAY_MICROSECONDS


def load_history(
    backend: Backend,
    snapshot: Snapshot,
    as_of: datetime,
    *,
    timezone: str,
    as_of_scalar: ir.TimestampScalar | None = None,
) -> History:
    """Read ``snapshot`` as known at ``as_of``; local days are calendar days in ``timezone``.

    With ``as_of_scalar`` (see :attr:`History.as_of_scalar`) the cut-off is that
    expression and ``as_of`` only a representative value. Raises ``ValueError``
    for a naive ``as_of`` (an instant needs a zone) or an unknown IANA time zone.
    """
    if as_of.tzinfo is None or as_of.utcoffset() is None:
        raise ValueError(f"as_of must carry a time zone, got naive {as_of.isoformat()}")
    if timezone not in available_timezones():
        raise ValueError(f"unknown IANA time zone {timezone!r}")
    as_of = as_of.astimezone(UTC)
    cutoff = as_of_scalar if as_of_scalar is not None else _utc_literal(as_of)

    customers = backend.table("customers", snapshot)
    customers = customers.filter(customers.created_at.isnull() | (customers.created_at < cutoff))

    raw_orders = backend.table("orders", snapshot)
    raw_orders = raw_orders.filter(raw_orders.placed_at < cutoff)
    orders = raw_orders.select(
        "order_id",
        "customer_id",
        "placed_at",
        "status",
        "coupon_code",
        "amount",
        paid=raw_orders.status == OrderStatus.PAID.value,
        local_day=backend.local_wall_clock(raw_orders.placed_at, timezone).date(),
    )

    items = backend.table("order_items", snapshot)
    items = items.filter(items.placed_at < cutoff)
    paid = orders.filter(orders.paid)
    purchase_lines = items.join(paid, items.order_id == paid.order_id).select(
        paid.customer_id, items.category, items.quantity, paid.local_day
    )

    events = _resolve_events(backend.table("events", snapshot), cutoff)
    return History(
        as_of,
        timezone,
        customers,
        orders,
        purchase_lines,
        events,
        as_of_scalar,
        backend.epoch_microseconds,
    )


def days_between(later: ir.TimestampValue, earlier: ir.TimestampValue) -> ir.FloatingValue:
    """``later - earlier`` in float days of 24 hours, exact to the microsecond."""
    return later.delta(earlier, unit="microsecond").cast(dt.float64) / DAY_MICROSECONDS


def resolved_events(
    backend: Backend, snapshot: Snapshot, cutoff: datetime, links: ir.Table | None = None
) -> ir.Table:
    """Events before ``cutoff`` with their customer resolved, as features see them.

    Columns ``customer_id, event_type, ts, properties`` (JSON text); anonymous events
    of visitors never linked to a customer are left out. ``links`` (what
    :func:`anonymous_links` computes, already materialised) spares every query on the
    result the scan that finds them.
    """
    events = backend.table("events", snapshot)
    return _resolve_events(events, _utc_literal(cutoff.astimezone(UTC)), links)


def anonymous_links(backend: Backend, snapshot: Snapshot, cutoff: datetime) -> ir.Table:
    """``linked_anonymous_id, linked_customer_id, linked_at``: each visitor's first known
    customer, and when the two were first seen together (ties: the smallest customer id).

    The earliest pair of a set of event files is the earlier of the earliest pairs of its
    parts, so the links of appended files merge into those of the files before them
    (:mod:`perennial.segments.frame` keeps them so between warehouse versions)."""
    events = backend.table("events", snapshot)
    return _first_links(events, _utc_literal(cutoff.astimezone(UTC)))


def _first_links(events: ir.Table, cutoff: ir.TimestampScalar) -> ir.Table:
    both = events.filter(
        events.ts < cutoff, events.customer_id.notnull(), events.anonymous_id.notnull()
    )
    pairs = both.group_by("anonymous_id", "customer_id").aggregate(linked_at=both.ts.min())
    earliest = ibis.window(
        group_by=pairs.anonymous_id, order_by=[pairs.linked_at, pairs.customer_id]
    )
    return (
        pairs.mutate(link_rank=ibis.row_number().over(earliest))
        .filter(_.link_rank == 0)
        .select(
            linked_anonymous_id=_.anonymous_id,
            linked_customer_id=_.customer_id,
            linked_at=_.linked_at,
        )
    )


def _resolve_events(
    events: ir.Table, cutoff: ir.TimestampScalar, links: ir.Table | None = None
) -> ir.Table:
    """Events before the cutoff, anonymous ones attributed through point-in-time links.

    Events that name their customer pass as they are; only the anonymous ones are
    joined to the links (distinct id pairs, so the ranking stays small). Each part
    filters the stored table itself: a shared "events before the cutoff" would be
    a common subexpression, which the engine materialises, every column of every
    event, before reading it three times.
    """

    def before(*conditions: ir.BooleanValue) -> ir.Table:
        return events.filter(events.ts < cutoff, *conditions)

    first_links = _first_links(events, cutoff) if links is None else links
    anonymous = before(events.customer_id.isnull())
    joined = anonymous.join(first_links, anonymous.anonymous_id == first_links.linked_anonymous_id)
    attributed = _event_rows(joined, joined.linked_customer_id)
    named = before(events.customer_id.notnull())
    return _event_rows(named, named.customer_id).union(attributed, distinct=False)


def _event_rows(events: ir.Table, customer_id: ir.StringValue) -> ir.Table:
    """The columns features read, typed alike (nullable) so the two parts can be unioned."""
    return events.select(
        customer_id=as_nullable(customer_id, dt.string),
        event_type=as_nullable(events.event_type, dt.string),
        ts=as_nullable(events.ts, dt.Timestamp(timezone="UTC", scale=6)),
        properties=as_nullable(events.properties, dt.string),
    )


def _utc_literal(instant: datetime) -> ir.TimestampScalar:
    return ibis.literal(instant.astimezone(UTC), type=dt.Timestamp(timezone="UTC"))
