"""Events around orders: the visit that led to it, the coupon, what went wrong after.

Most orders are preceded within minutes by a product page view and an
add-to-cart (and sometimes a login); coupon orders are accompanied by a
``coupon_redeemed`` event; complaints and refund requests follow days later; a
few customers answer an NPS survey, less kindly when something went wrong or
when they are about to leave.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from perennial.demo.events import EventBatch, EventType, within_life
from perennial.demo.fixed_width import join_columns
from perennial.demo.incidents import COMPLAINT_REASONS, REFUND_REASONS, Incidents
from perennial.demo.population import ORDER_CHANNELS, Population
from perennial.demo.purchases import PurchaseHistory
from perennial.demo.sessions import login_properties

__all__ = ["OrderContext", "incident_events", "order_events", "survey_answers"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

_MINUTE = 1.0 / 1440.0
_SECOND = _MINUTE / 60.0
_VIEW_BEFORE_ORDER = 0.8
_CART_BEFORE_ORDER = 0.85
_LOGIN_BEFORE_ORDER = 0.25
_SURVEY_RATE = 0.03
_SURVEY_CHURN_HORIZON_DAYS = 60.0


@dataclass(frozen=True)
class OrderContext:
    """The written orders of a block, as the events about them need them.

    ``first_products`` is the product of each order's first line, ``coupon_codes``
    the coupon used (null when none).
    """

    history: PurchaseHistory
    order_ids: pa.Array
    first_products: pa.Array
    coupon_codes: pa.Array
    channels: IntArray  # index into ``ORDER_CHANNELS``


def order_events(
    rng: np.random.Generator,
    population: Population,
    orders: OrderContext,
    limit_days: FloatArray,
) -> EventBatch:
    """Login, page view and add-to-cart before online orders; coupon redemption with any.

    Orders placed in a store leave no trace online apart from the coupon.
    """
    history = orders.history
    size = history.size
    signup = population.signup_days[history.customer]
    online = orders.channels != ORDER_CHANNELS.index("store")
    viewed = online & (rng.random(size) < _VIEW_BEFORE_ORDER)
    carted = online & (rng.random(size) < _CART_BEFORE_ORDER)
    logged_in = online & (rng.random(size) < _LOGIN_BEFORE_ORDER)
    couponed = np.asarray(pc.is_valid(orders.coupon_codes).to_numpy(zero_copy_only=False))
    coupon_days = history.days + 2.0 * _SECOND
    couponed &= within_life(history.customer, coupon_days, limit_days)

    def before(mean_minutes: float, least_minutes: float, chosen: BoolArray) -> FloatArray:
        minutes = least_minutes + rng.exponential(mean_minutes, int(chosen.sum()))
        return np.maximum(history.days[chosen] - minutes * _MINUTE, signup[chosen])

    return EventBatch.concat(
        [
            EventBatch(
                customer=history.customer[logged_in],
                days=before(10.0, 15.0, logged_in),
                kind=np.full(int(logged_in.sum()), EventType.LOGIN),
                properties=login_properties(population, history.customer[logged_in]),
            ),
            EventBatch(
                customer=history.customer[viewed],
                days=before(10.0, 3.0, viewed),
                kind=np.full(int(viewed.sum()), EventType.PAGE_VIEW),
                properties=join_columns(
                    '{"page":"/p/', orders.first_products.filter(pa.array(viewed)), '"}'
                ),
            ),
            EventBatch(
                customer=history.customer[carted],
                days=before(2.0, 1.0, carted),
                kind=np.full(int(carted.sum()), EventType.ADD_TO_CART),
                properties=join_columns(
                    '{"product_id":"',
                    orders.first_products.filter(pa.array(carted)),
                    '","quantity":1}',
                ),
            ),
            EventBatch(
                customer=history.customer[couponed],
                days=coupon_days[couponed],
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
    limit_days: FloatArray,
) -> EventBatch:
    """NPS answers a few days after some orders: 0-10, lower after trouble or before leaving."""
    history = orders.history
    days = history.days + rng.uniform(1.0, 3.0, history.size)
    asked = (rng.random(history.size) < _SURVEY_RATE) & within_life(
        history.customer, days, limit_days
    )
    days = days[asked]
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
