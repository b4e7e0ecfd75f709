"""Events around orders: the visit that led to it, the coupon, what went wrong after.

Most orders are preceded within minutes by a product page view and an
add-to-cart (and sometimes a login); coupon orders are accompanied by a
``coupon_redeemed`` event; complaints and refund requests follow days later; a
few customers answer an NPS survey, less kindly when something went wrong or
when they are about to leave.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from perennial.demo.events import EventBatch, EventType
from perennial.demo.fixed_width import join_columns
from perennial.demo.incidents import COMPLAINT_REASONS, REFUND_REASONS, Incidents
from perennial.demo.population import Population
from perennial.demo.purchases import PurchaseHistory
from perennial.demo.sessions import login_properties

__all__ = ["OrderContext", "incident_events", "order_events", "survey_answers"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

_MINUTE = 1.0 / 1440.0
_SECOND = _MINUTE / 60.0
_CART_BEFORE_ORDER = 0.85
_LOGIN_BEFORE_ORDER = 0.3
_SURVEY_RATE = 0.03
_SURVEY_CHURN_HORIZON_DAYS = 60.0


class OrderContext:
    """The written orders of a block, as the events about them need them."""

    def __init__(
        self,
        history: PurchaseHistory,
        order_ids: pa.Array,
        first_products: pa.Array,
        coupon_codes: pa.Array,
    ) -> None:
        self.history = history
        self.order_ids = order_ids
        self.first_products = first_products
        self.coupon_codes = coupon_codes


def order_events(
    rng: np.random.Generator, population: Population, orders: OrderContext
) -> EventBatch:
    """Page view, add-to-cart and login before each order; coupon redemption with it."""
    history = orders.history
    size = history.size
    signup = population.signup_days[history.customer]
    carted = rng.random(size) < _CART_BEFORE_ORDER
    logged_in = rng.random(size) < _LOGIN_BEFORE_ORDER
    couponed = np.asarray(pc.is_valid(orders.coupon_codes).to_numpy(zero_copy_only=False))

    def before(minutes: FloatArray, chosen: BoolArray) -> FloatArray:
        return np.maximum(history.days[chosen] - minutes * _MINUTE, signup[chosen])

    everyone = np.ones(size, dtype=np.bool_)
    cart_picks = pa.array(carted)
    return EventBatch.concat(
        [
            EventBatch(
                customer=history.customer[logged_in],
                days=before(15.0 + rng.exponential(10.0, size)[logged_in], logged_in),
                kind=np.full(int(logged_in.sum()), EventType.LOGIN),
                properties=login_properties(population, history.customer[logged_in]),
            ),
            EventBatch(
                customer=history.customer,
                days=before(3.0 + rng.exponential(10.0, size), everyone),
                kind=np.full(size, EventType.PAGE_VIEW),
                properties=join_columns('{"page":"/p/', orders.first_products, '"}'),
            ),
            EventBatch(
                customer=history.customer[carted],
                days=before(1.0 + rng.exponential(2.0, size)[carted], carted),
                kind=np.full(int(carted.sum()), EventType.ADD_TO_CART),
                properties=join_columns(
                    '{"product_id":"', orders.first_products.filter(cart_picks), '","quantity":1}'
                ),
            ),
            EventBatch(
                customer=history.customer[couponed],
                days=history.days[couponed] + 2.0 * _SECOND,
                kind=np.full(int(couponed.sum()), EventType.COUPON_REDEEMED),
                properties=join_columns(
                    '{"coupon_code":"',
                    orders.coupon_codes.filter(pa.array(couponed)),
                    '","order_id":"',
                    orders.order_ids.filter(pa.array(couponed)),
                    '"}',
                ),
            ),
        ]
    )


def incident_events(orders: OrderContext, incidents: Incidents) -> EventBatch:
    """A ``complaint`` or ``refund_request`` event for each incident that was kept."""
    batches = []
    for kind, days, reasons, vocabulary in (
        (EventType.COMPLAINT, incidents.complaint_days, incidents.complaint_reason,
         COMPLAINT_REASONS),
        (EventType.REFUND_REQUEST, incidents.refund_days, incidents.refund_reason,
         REFUND_REASONS),
    ):  # fmt: skip
        happened = ~np.isnan(days)
        picks = pa.array(happened)
        batches.append(
            EventBatch(
                customer=orders.history.customer[happened],
                days=days[happened],
                kind=np.full(int(happened.sum()), kind),
                properties=join_columns(
                    '{"order_id":"',
                    orders.order_ids.filter(picks),
                    '","reason":"',
                    pa.array(vocabulary).take(pa.array(reasons[happened])),
                    '"}',
                ),
            )
        )
    return EventBatch.concat(batches)


def survey_answers(
    rng: np.random.Generator,
    orders: OrderContext,
    incidents: Incidents,
    churn_days: FloatArray,
) -> EventBatch:
    """NPS answers a few days after some orders: 0-10, lower after trouble or before leaving."""
    history = orders.history
    asked = rng.random(history.size) < _SURVEY_RATE
    days = history.days[asked] + rng.uniform(1.0, 3.0, int(asked.sum()))
    troubled = ~np.isnan(incidents.complaint_days[asked])
    leaving = churn_days[history.customer[asked]] - days < _SURVEY_CHURN_HORIZON_DAYS
    score = rng.normal(8.3, 1.6, days.shape[0]) - 4.0 * troubled - 2.0 * leaving
    score_text = pc.cast(pa.array(np.clip(np.rint(score), 0, 10).astype(np.int64)), pa.string())
    return EventBatch(
        customer=history.customer[asked],
        days=days,
        kind=np.full(days.shape[0], EventType.SURVEY_ANSWER),
        properties=join_columns('{"survey":"nps","score":', score_text, "}"),
    )
