"""The shop's demand calendar: when people buy, browse and sign up.

Demand is an hourly multiplier on a customer's latent purchase rate: Chinese New
Year empties the shops, the 6.18 and 11.11 festivals spike them, the 8th of each
month is member day, evenings beat nights. Calendar effects follow the business's
clock (Asia/Shanghai, UTC+8); simulated times are days since ``start`` 00:00 UTC.

Customers live in *operational time*: weeks of average demand. A purchase rate of
one a week means one purchase per operational week, so the same gap falls in a few
calendar hours on 11.11 and in a longer stretch over the New Year holiday.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import numpy as np
import numpy.typing as npt

__all__ = ["DemandCalendar", "Promotion", "chronological_order"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_LOCAL_OFFSET_HOURS = 8  # Asia/Shanghai has no daylight saving time
_HOURS_PER_WEEK = 168.0

# Spring Festival (New Year's day of the lunar calendar).
_SPRING_FESTIVAL = {
    2019: date(2019, 2, 5),
    2020: date(2020, 1, 25),
    2021: date(2021, 2, 12),
    2022: date(2022, 2, 1),
    2023: date(2023, 1, 22),
    2024: date(2024, 2, 10),
    2025: date(2025, 1, 29),
    2026: date(2026, 2, 17),
    2027: date(2027, 2, 6),
    2028: date(2028, 1, 26),
    2029: date(2029, 2, 13),
    2030: date(2030, 2, 3),
}

# Relative demand by local hour of day: a lunch bump and an evening peak.
_HOUR_PROFILE = np.array(
    [0.35, 0.2, 0.12, 0.08, 0.07, 0.1, 0.25, 0.55, 0.8, 0.95, 1.05, 1.15,
     1.35, 1.25, 1.05, 1.0, 1.0, 1.05, 1.15, 1.4, 1.65, 1.75, 1.45, 0.85],
)  # fmt: skip
_WEEKDAY_PROFILE = np.array([0.95, 0.95, 0.95, 0.95, 1.0, 1.1, 1.15])  # Monday first


class Promotion:
    """Codes for the promotion running on a local day (see ``DemandCalendar.promotion``)."""

    NONE = 0
    MEMBER_DAY = 1
    MID_YEAR = 2  # 6.18
    SINGLES_DAY = 3  # 11.11 and its pre-sale
    NEW_YEAR = 4  # stocking up before the Spring Festival


@dataclass(frozen=True)
class DemandCalendar:
    """Hourly demand from ``start`` 00:00 UTC to the end of ``end`` (UTC), and its integral.

    ``operational_weeks[h]`` is the demand accumulated before hour ``h``, normalised
    so that its average over the period is one per hour: a latent rate ``lambda``
    per week then yields ``lambda`` purchases per calendar week on average.
    """

    start: date
    end: date
    hourly_demand: FloatArray
    operational_weeks: FloatArray
    signup_weight: FloatArray
    promotion_by_local_day: IntArray

    @classmethod
    def build(cls, start: date, end: date) -> DemandCalendar:
        days = (end - start).days + 1
        hours = np.arange(days * 24)
        local_hours = hours + _LOCAL_OFFSET_HOURS
        local_day = local_hours // 24  # index into local dates starting at ``start``
        dates = np.datetime64(start, "D") + np.arange(days + 1)
        day_demand, promotions = _daily_demand(dates)
        demand = day_demand[local_day] * _HOUR_PROFILE[local_hours % 24]
        singles_midnight = (promotions[local_day] == Promotion.SINGLES_DAY) & (
            _day_of_month(dates)[local_day] == 11
        )
        demand[singles_midnight & (local_hours % 24 < 2)] *= 3.0  # the 00:00 rush
        demand /= demand.mean()
        operational = np.concatenate(([0.0], np.cumsum(demand))) / _HOURS_PER_WEEK
        growth = 1.0 + 0.4 * hours / hours.size  # the business keeps growing
        return cls(
            start=start,
            end=end,
            hourly_demand=demand,
            operational_weeks=operational,
            signup_weight=demand * growth,
            promotion_by_local_day=promotions,
        )

    @property
    def days(self) -> float:
        """Length of the period in days; simulated times lie in ``[0, days)``."""
        return int(self.hourly_demand.shape[0]) / 24.0

    @property
    def origin(self) -> datetime:
        """The instant simulated time 0 stands for: ``start`` at 00:00 UTC."""
        return datetime(self.start.year, self.start.month, self.start.day, tzinfo=UTC)

    @property
    def end_weeks(self) -> float:
        """Operational weeks in the whole period."""
        return float(self.operational_weeks[-1])

    def to_operational(self, days: FloatArray) -> FloatArray:
        """Calendar days since the origin to operational weeks."""
        grid = np.arange(self.operational_weeks.shape[0], dtype=np.float64)
        return np.interp(days * 24.0, grid, self.operational_weeks)

    def to_calendar(self, weeks: FloatArray) -> FloatArray:
        """Operational weeks to calendar days since the origin (the inverse map)."""
        grid = np.arange(self.operational_weeks.shape[0], dtype=np.float64)
        return np.interp(weeks, self.operational_weeks, grid) / 24.0

    def epoch_seconds(self, days: FloatArray) -> IntArray:
        """Simulated times to whole seconds since the Unix epoch (UTC), rounding down."""
        origin = int(self.origin.timestamp())
        return origin + np.floor(days * 86_400.0).astype(np.int64)

    def sample_signups(self, rng: np.random.Generator, count: int) -> FloatArray:
        """Sign-up times in days: more during promotions and as the business grows."""
        cumulative = np.concatenate(([0.0], np.cumsum(self.signup_weight)))
        targets = rng.random(count) * cumulative[-1]
        hour = np.searchsorted(cumulative, targets, side="right") - 1
        within = (targets - cumulative[hour]) / self.signup_weight[hour]
        return np.asarray((hour + within) / 24.0, dtype=np.float64)

    def promotion(self, days: FloatArray) -> IntArray:
        """The ``Promotion`` code running at each time, by the local (UTC+8) day."""
        local_day = np.floor(days + _LOCAL_OFFSET_HOURS / 24.0).astype(np.int64)
        clipped = np.clip(local_day, 0, self.promotion_by_local_day.shape[0] - 1)
        return self.promotion_by_local_day[clipped]


def chronological_order(days: FloatArray) -> IntArray:
    """Positions that sort non-negative times to the second, ties in their original order.

    Sorting unique integer keys (seconds, then position) is faster than a stable
    sort of floats and gives the same permutation on every machine.
    """
    seconds = np.floor(days * 86_400.0).astype(np.int64)
    position_bits = max(int(days.shape[0]).bit_length(), 1)
    if days.shape[0] and int(seconds.max()).bit_length() + position_bits > 62:
        return np.argsort(days, kind="stable").astype(np.int64)
    keys = np.sort((seconds << position_bits) | np.arange(days.shape[0], dtype=np.int64))
    return np.asarray(keys & ((1 << position_bits) - 1), dtype=np.int64)


def _day_of_month(dates: npt.NDArray[np.datetime64]) -> IntArray:
    return np.asarray((dates - dates.astype("datetime64[M]")).astype(np.int64) + 1, np.int64)


def _daily_demand(dates: npt.NDArray[np.datetime64]) -> tuple[FloatArray, IntArray]:
    """Demand multiplier and promotion code for each local date."""
    day = _day_of_month(dates)
    month = dates.astype("datetime64[M]").astype(np.int64) % 12 + 1
    weekday = (dates.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
    demand = _WEEKDAY_PROFILE[weekday].copy()
    promotion = np.zeros(dates.shape[0], dtype=np.int64)

    member_day = day == 8
    demand[member_day] *= 1.8
    promotion[member_day] = Promotion.MEMBER_DAY

    mid_year = (month == 6) & (day <= 18)
    demand[mid_year] *= np.where(day[mid_year] == 18, 3.0, 1.2)
    promotion[mid_year] = Promotion.MID_YEAR

    singles = ((month == 10) & (day >= 20)) | ((month == 11) & (day <= 11))
    demand[singles] *= np.where(day[singles] == 11, 4.0, 1.25)
    promotion[singles] = Promotion.SINGLES_DAY
    demand[(month == 12) & (day == 12)] *= 1.6

    day_numbers = dates.astype(np.int64)
    for festival in _SPRING_FESTIVAL.values():
        offset = day_numbers - np.datetime64(festival, "D").astype(np.int64)
        stocking_up = (offset >= -12) & (offset < -4)
        demand[stocking_up] *= 1.2
        promotion[stocking_up] = Promotion.NEW_YEAR
        demand[(offset >= -3) & (offset <= 7)] *= 0.45  # shops and couriers rest
    return demand, promotion
