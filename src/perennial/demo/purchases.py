"""When each customer buys, and when they quietly leave (the BG/NBD story).

After the first order, repeat purchases arrive with gaps of mean ``1 / lambda``
operational weeks: exponential gaps (a Poisson process) for irregular buyers,
gamma gaps with shape 2-6 for customers on a category rhythm. After every repeat
purchase the customer drops out with probability ``p`` (BG/NBD, Fader, Hardie
and Lee 2005), and stops being active somewhere before the purchase that would
have come next.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from perennial.demo.calendar import DemandCalendar, chronological_order
from perennial.demo.population import Population

__all__ = ["PurchaseHistory", "simulate_purchases"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class PurchaseHistory:
    """Orders of one block, sorted by time, and the BG/NBD dropout of each customer.

    ``customer`` indexes the block's ``Population``; times are days since the
    period's start. ``dropout_days`` is ``inf`` for customers still active after
    their last simulated purchase.
    """

    customer: IntArray
    days: FloatArray
    first_order: BoolArray
    dropout_days: FloatArray

    @property
    def size(self) -> int:
        return int(self.customer.shape[0])

    def select(self, keep: BoolArray) -> PurchaseHistory:
        """The orders where ``keep`` is true (dropout times unchanged)."""
        return PurchaseHistory(
            customer=self.customer[keep],
            days=self.days[keep],
            first_order=self.first_order[keep],
            dropout_days=self.dropout_days,
        )


def simulate_purchases(
    rng: np.random.Generator, population: Population, calendar: DemandCalendar
) -> PurchaseHistory:
    """Simulate every order of the block up to the end of the period.

    Vectorised over customers: each round advances every still-active customer by
    one purchase, so the number of rounds is the largest purchase count, not the
    number of orders.
    """
    end_weeks = calendar.end_weeks
    buyers = np.flatnonzero(population.first_order_days < calendar.days)
    position = calendar.to_operational(population.first_order_days[buyers])
    customers: list[IntArray] = [buyers]
    weeks: list[FloatArray] = [position]
    dropout_weeks = np.full(population.size, np.inf)

    active, position = buyers, position
    while active.size:
        nxt = position + _gap_weeks(rng, population, active)
        inside = nxt < end_weeks
        active, nxt = active[inside], nxt[inside]
        customers.append(active)
        weeks.append(nxt)
        drops = rng.random(active.size) < population.dropout_probability[active]
        leaving = active[drops]
        # Leave before the purchase that would have come next.
        dropout_weeks[leaving] = nxt[drops] + rng.uniform(0.2, 1.0, leaving.size) * _gap_weeks(
            rng, population, leaving
        )
        active, position = active[~drops], nxt[~drops]

    all_customers = np.concatenate(customers)
    all_days = calendar.to_calendar(np.concatenate(weeks))
    # The first order exactly as drawn; repeats never before it despite float round trips.
    all_days = np.maximum(all_days, population.first_order_days[all_customers])
    all_days[: buyers.shape[0]] = population.first_order_days[buyers]
    first = np.zeros(all_customers.shape[0], dtype=np.bool_)
    first[: buyers.shape[0]] = True
    order = chronological_order(all_days)
    dropout_days = np.full(population.size, np.inf)
    inside_period = dropout_weeks < end_weeks
    dropout_days[inside_period] = calendar.to_calendar(dropout_weeks[inside_period])
    return PurchaseHistory(
        customer=all_customers[order],
        days=all_days[order],
        first_order=first[order],
        dropout_days=dropout_days,
    )


def _gap_weeks(rng: np.random.Generator, population: Population, who: IntArray) -> FloatArray:
    """Inter-purchase gaps in operational weeks with mean ``1 / lambda``."""
    shape = population.rhythm_shape[who]
    return rng.gamma(shape, 1.0 / (shape * population.purchase_rate[who]))
