"""One block of customers simulated end to end, from latent traits to output tables.

Blocks keep memory bounded: each holds a fixed number of customers and every
order, item and event they produce. A block draws from its own random streams
(one per stage, keyed by seed, block and stage), so its output depends only on
the seed and its position, never on what other blocks did.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from perennial.demo.baskets import Baskets, draw_baskets, product_ids
from perennial.demo.behaviour import OrderContext, incident_events, order_events, survey_answers
from perennial.demo.calendar import DemandCalendar
from perennial.demo.catalog import CATEGORIES, COUPONS
from perennial.demo.customers import customer_records
from perennial.demo.education import learning_journeys
from perennial.demo.events import EventBatch, json_lines
from perennial.demo.fixed_width import decimal_column, prefixed_ids
from perennial.demo.ground_truth import ground_truth_table
from perennial.demo.identity import identity_trails
from perennial.demo.incidents import Incidents, churn_days, draw_incidents
from perennial.demo.population import ORDER_CHANNELS, LatentParameters, draw_population
from perennial.demo.purchases import PurchaseHistory, simulate_purchases
from perennial.demo.sessions import browsing_sessions
from perennial.demo.spend import NO_COUPON, OrderValues, draw_order_values
from perennial.schema.tables import AMOUNT_TYPE, TABLES, OrderStatus

__all__ = ["IDS_PER_BLOCK", "BlockOutput", "simulate_block"]

IntArray = npt.NDArray[np.int64]

_STAGES = (
    "population", "purchases", "incidents", "spend", "baskets", "sessions", "orders",
    "surveys", "customers", "identity", "education",
)  # fmt: skip
_ORDER_ID_WIDTH = 10
_ITEM_ID_WIDTH = 11
_EVENT_ID_WIDTH = 11
_TIMESTAMP = pa.timestamp("us", tz="UTC")


IDS_PER_BLOCK = 100_000_000
"""Order, item and event numbers of block ``b`` start at ``b * IDS_PER_BLOCK + 1``.

Blocks run in parallel, so one cannot wait for the previous block's counts:
each block numbers within its own range, and ids stay unique and stable.
"""


@dataclass(frozen=True)
class BlockOutput:
    """Everything one block writes; tables have the canonical columns of their files."""

    customers: pa.Table
    orders: pa.Table
    order_items: pa.Table
    events: pa.Table
    identity_lines: pa.Array
    education_lines: pa.Array
    ground_truth: pa.Table


def simulate_block(
    seed: int,
    block: int,
    first_customer: int,
    size: int,
    calendar: DemandCalendar,
    customer_id_width: int,
) -> BlockOutput:
    """Simulate ``size`` customers numbered from ``first_customer`` (1-based)."""
    streams = {
        stage: np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(block, index)))
        for index, stage in enumerate(_STAGES)
    }
    parameters = LatentParameters()
    population = draw_population(streams["population"], calendar, first_customer, size, parameters)
    customer_ids = prefixed_ids("C", population.numbers, customer_id_width)

    history = simulate_purchases(streams["purchases"], population, calendar)
    incidents = draw_incidents(streams["incidents"], population, history)
    churn = churn_days(history, incidents, calendar.days)
    kept = history.days <= churn[history.customer]
    history, incidents = history.select(kept), incidents.select(kept)
    limit = np.minimum(churn, np.nextafter(calendar.days, 0.0))  # last instant of activity
    incidents = incidents.censor(limit[history.customer])
    values = draw_order_values(streams["spend"], population, history, calendar, parameters)
    baskets = draw_baskets(streams["baskets"], population, history, values)
    first_number = block * IDS_PER_BLOCK + 1
    orders = _orders_table(
        history, incidents, values, baskets, customer_ids, calendar, first_number
    )
    items = _items_table(baskets, orders, first_number)

    context = OrderContext(
        history=history,
        order_ids=orders.column("order_id").combine_chunks(),
        first_products=items.column("product_id")
        .combine_chunks()
        .take(pa.array(_first_lines(baskets.order, history.size))),
        coupon_codes=orders.column("coupon_code").combine_chunks(),
        channels=values.channel,
    )
    behaviour = EventBatch.concat(
        [
            browsing_sessions(streams["sessions"], population, calendar, churn, limit),
            order_events(streams["orders"], population, context, limit),
            incident_events(context, incidents),
            survey_answers(streams["surveys"], context, incidents, churn, limit),
        ]
    )
    customers = customer_records(streams["customers"], population, calendar, customer_ids)
    identity = identity_trails(
        streams["identity"],
        population,
        customers.column("email").combine_chunks(),
        customers.column("phone").combine_chunks(),
    )
    education, education_status = learning_journeys(streams["education"], population, limit)

    next_event = first_number
    tables = []
    for batch in (behaviour, identity, education):
        ordered = batch.chronological()
        seconds = calendar.epoch_seconds(ordered.days)
        numbers = _numbers(next_event, ordered.size, first_number)
        next_event += ordered.size
        event_ids = prefixed_ids("E", numbers, _EVENT_ID_WIDTH)
        tables.append((ordered.to_table(event_ids, customer_ids, seconds * 1_000_000), seconds))

    return BlockOutput(
        customers=customers,
        orders=orders,
        order_items=items,
        events=tables[0][0],
        identity_lines=json_lines(*tables[1]),
        education_lines=json_lines(*tables[2]),
        ground_truth=ground_truth_table(
            population, calendar, customer_ids, churn, education_status
        ),
    )


def _orders_table(
    history: PurchaseHistory,
    incidents: Incidents,
    values: OrderValues,
    baskets: Baskets,
    customer_ids: pa.Array,
    calendar: DemandCalendar,
    first_number: int,
) -> pa.Table:
    """The canonical ``orders`` rows; amount = the lines' gross value less the coupon."""
    units, gross_cents = baskets.per_order(history.size)
    order_numbers = _numbers(first_number, history.size)
    coupon_codes = pa.array([c.code for c in COUPONS]).take(
        pa.array(values.coupon, mask=values.coupon == NO_COUPON)
    )
    status = np.where(incidents.refunded, 1, 0)
    status = np.where(incidents.cancelled, 2, status)
    return pa.Table.from_arrays(
        [
            prefixed_ids("O", order_numbers, _ORDER_ID_WIDTH),
            customer_ids.take(pa.array(history.customer)),
            pa.array(calendar.epoch_seconds(history.days) * 1_000_000, _TIMESTAMP),
            decimal_column(gross_cents - values.discount_cents, AMOUNT_TYPE),
            pa.array(np.full(history.size, "CNY")),
            pa.array([s.value for s in OrderStatus]).take(pa.array(status)),
            pa.array(units),
            coupon_codes,
            pa.array(ORDER_CHANNELS).take(pa.array(values.channel)),
        ],
        schema=TABLES["orders"].arrow_schema(with_lineage=False),
    )


def _items_table(baskets: Baskets, orders: pa.Table, first_number: int) -> pa.Table:
    """The canonical ``order_items`` rows, lines in the order of their orders."""
    item_numbers = _numbers(first_number, baskets.size)
    line_orders = pa.array(baskets.order)
    return pa.Table.from_arrays(
        [
            prefixed_ids("I", item_numbers, _ITEM_ID_WIDTH),
            orders.column("order_id").combine_chunks().take(line_orders),
            orders.column("placed_at").combine_chunks().take(line_orders),
            product_ids(baskets),
            pa.array([c.name for c in CATEGORIES]).take(pa.array(baskets.category)),
            pa.array(baskets.quantity),
            decimal_column(baskets.unit_cents, AMOUNT_TYPE),
        ],
        schema=TABLES["order_items"].arrow_schema(with_lineage=False),
    )


def _numbers(first: int, count: int, block_first: int | None = None) -> IntArray:
    """``count`` consecutive id numbers from ``first``, within the block's id range."""
    block_first = first if block_first is None else block_first
    if first + count > block_first + IDS_PER_BLOCK:
        raise OverflowError(f"a block produced more than {IDS_PER_BLOCK} ids of one kind")
    return np.arange(first, first + count, dtype=np.int64)


def _first_lines(line_orders: IntArray, orders: int) -> IntArray:
    """Position of each order's first line (lines are grouped by order)."""
    counts = np.bincount(line_orders, minlength=orders)
    return np.cumsum(counts) - counts
