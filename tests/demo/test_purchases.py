"""The purchase process on hand-made populations with known answers."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import numpy as np

from perennial.demo.calendar import DemandCalendar
from perennial.demo.population import LatentParameters, Population, draw_population
from perennial.demo.purchases import simulate_purchases

CALENDAR = DemandCalendar.build(date(2024, 1, 1), date(2025, 12, 31))
COUNT = 20_000


def _population(rate: float, dropout: float, rhythm: float = 1.0) -> Population:
    drawn = draw_population(np.random.default_rng(5), CALENDAR, 1, COUNT, LatentParameters())
    return replace(
        drawn,
        signup_days=np.zeros(COUNT),
        first_order_days=np.zeros(COUNT),
        purchase_rate=np.full(COUNT, rate),
        dropout_probability=np.full(COUNT, dropout),
        rhythm_shape=np.full(COUNT, rhythm),
    )


def test_without_dropout_repeat_purchases_are_poisson_in_operational_weeks() -> None:
    history = simulate_purchases(np.random.default_rng(1), _population(0.5, 0.0), CALENDAR)
    repeats = np.bincount(history.customer, minlength=COUNT) - 1
    expected = 0.5 * CALENDAR.end_weeks

    assert abs(repeats.mean() - expected) < 0.02 * expected
    assert abs(repeats.var() / repeats.mean() - 1.0) < 0.1  # Poisson: variance = mean
    assert np.isinf(history.dropout_days).all()


def test_a_rhythm_makes_gaps_regular_without_changing_the_rate() -> None:
    history = simulate_purchases(np.random.default_rng(2), _population(0.5, 0.0, 5.0), CALENDAR)
    repeats = np.bincount(history.customer, minlength=COUNT) - 1

    assert abs(repeats.mean() - 0.5 * CALENDAR.end_weeks) < 0.03 * repeats.mean()
    assert repeats.var() < 0.5 * repeats.mean()


def test_customers_drop_out_after_a_geometric_number_of_repeat_purchases() -> None:
    """BG/NBD: the first order never ends a life; each repeat does so with probability p."""
    history = simulate_purchases(np.random.default_rng(3), _population(5.0, 0.25), CALENDAR)
    repeats = np.bincount(history.customer, minlength=COUNT) - 1

    assert abs(repeats.mean() - 1 / 0.25) < 0.1
    assert (repeats >= 1).all()
    assert np.isfinite(history.dropout_days).mean() > 0.99


def test_dropout_comes_after_the_last_purchase_and_before_the_next() -> None:
    population = _population(1.0, 0.5)
    history = simulate_purchases(np.random.default_rng(4), population, CALENDAR)
    last = np.zeros(COUNT)
    np.maximum.at(last, history.customer, history.days)
    left = np.isfinite(history.dropout_days)

    assert (history.dropout_days[left] > last[left]).all()
    assert np.all(np.diff(np.floor(history.days * 86_400)) >= 0)  # sorted to the second
    assert history.first_order.sum() == COUNT
