"""The demand calendar: festivals, member day, night and day, and operational time."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from perennial.demo.calendar import DemandCalendar, Promotion, chronological_order

CALENDAR = DemandCalendar.build(date(2024, 1, 1), date(2025, 12, 31))


def _local_day_demand(day: date) -> float:
    """Demand over a local (UTC+8) day, relative to an average day."""
    start = ((day - CALENDAR.start).days * 24) - 8
    return float(CALENDAR.hourly_demand[start : start + 24].mean())


def test_a_latent_rate_of_one_a_week_is_one_purchase_per_calendar_week_on_average() -> None:
    assert CALENDAR.end_weeks == pytest.approx(CALENDAR.days / 7)
    assert CALENDAR.hourly_demand.mean() == pytest.approx(1.0)


def test_singles_day_and_618_peak_and_the_spring_festival_dips() -> None:
    ordinary = _local_day_demand(date(2025, 3, 12))

    assert _local_day_demand(date(2024, 11, 11)) > 3 * ordinary
    assert _local_day_demand(date(2025, 6, 18)) > 2.5 * ordinary
    assert _local_day_demand(date(2025, 1, 30)) < 0.6 * ordinary  # Spring Festival 2025
    assert _local_day_demand(date(2025, 3, 8)) > 1.5 * _local_day_demand(date(2025, 3, 7))


def test_evenings_in_shanghai_beat_nights() -> None:
    hours = CALENDAR.hourly_demand[: 7 * 24].reshape(7, 24)
    utc_noon_is_8_pm_local = hours[:, 12].mean()
    utc_8_pm_is_4_am_local = hours[:, 20].mean()

    assert utc_noon_is_8_pm_local > 5 * utc_8_pm_is_4_am_local


def test_operational_time_round_trips() -> None:
    days = np.random.default_rng(1).uniform(0, CALENDAR.days, 1_000)

    assert np.allclose(CALENDAR.to_calendar(CALENDAR.to_operational(days)), days)


def test_promotions_follow_the_local_date() -> None:
    # 2024-11-10T16:30Z is 00:30 on 11 November in Shanghai.
    utc_day = (date(2024, 11, 10) - CALENDAR.start).days
    codes = CALENDAR.promotion(
        np.array([utc_day + 16.5 / 24, (date(2024, 3, 12) - CALENDAR.start).days])
    )

    assert codes.tolist() == [Promotion.SINGLES_DAY, Promotion.NONE]


def test_sign_ups_follow_growth_and_promotions() -> None:
    signups = CALENDAR.sample_signups(np.random.default_rng(3), 200_000)
    per_day = np.bincount(signups.astype(np.int64), minlength=int(CALENDAR.days))

    assert signups.min() >= 0 and signups.max() < CALENDAR.days
    assert per_day[-60:].mean() > per_day[:60].mean()
    assert per_day[(date(2024, 11, 11) - CALENDAR.start).days] > 2 * per_day[:60].mean()


def test_chronological_order_sorts_to_the_second_and_keeps_ties_in_place() -> None:
    days = np.array([2.0, 1.0, 2.0 + 0.1 / 86_400, 0.5, 1.0])

    assert chronological_order(days).tolist() == [3, 1, 4, 0, 2]
