"""The lifecycle board's answers, from the tables a refresh precomputed.

:class:`Board` is loaded once per serving-store file (a few thousand rows and
some numeric arrays) and answers in memory: the stage distribution per day, the
flows between any two days of the history, the KPI cards for any period length,
and the RFM grid. The definitions match :mod:`perennial.lifecycle.flows`
(``NEW``, ``UNMATCHED``, largest flows first), which the tests check by
computing the same answers from the warehouse.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from perennial.errors import PerennialError
from perennial.lifecycle.flows import Flow
from perennial.lifecycle.stage_model import KPI_ROLES, KpiRole
from perennial.serving.board_tables import EPOCH, FLOW_PREFIX, PURCHASE_PREFIX, epoch_day
from perennial.serving.packed import read_arrays

__all__ = [
    "Board",
    "BoardRangeError",
    "Kpi",
    "KpiReport",
    "RfmCell",
    "RfmSegmentCount",
    "StageInfo",
    "StageSeries",
    "load_board",
]


class BoardRangeError(PerennialError):
    """A requested day or period lies outside what the serving store holds."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class StageInfo:
    key: str
    label_en: str
    label_zh: str
    kpi: KpiRole | None


@dataclass(frozen=True, slots=True)
class StageSeries:
    stage: str
    customers: list[int]
    """One count per day of the distribution's ``days``."""


@dataclass(frozen=True, slots=True)
class Kpi:
    value: float | None
    previous: float | None
    stages: tuple[str, ...] = ()
    """For stage KPIs: the stages counted (empty: the model has none of this role)."""

    @property
    def change(self) -> float | None:
        if self.value is None or self.previous is None:
            return None
        return self.value - self.previous

    @property
    def change_ratio(self) -> float | None:
        change = self.change
        if change is None or not self.previous:
            return None
        return change / self.previous


@dataclass(frozen=True, slots=True)
class KpiReport:
    period: tuple[date, date]
    previous_period: tuple[date, date]
    customers: Kpi
    roles: dict[KpiRole, Kpi]
    revenue: Kpi
    repurchase_rate: Kpi


@dataclass(frozen=True, slots=True)
class RfmCell:
    r: int
    f: int
    customers: int
    revenue: float


@dataclass(frozen=True, slots=True)
class RfmSegmentCount:
    segment: str
    label_en: str
    label_zh: str
    customers: int
    revenue: float


@dataclass(frozen=True)
class Board:
    """Everything the board reads, as of one refresh."""

    model: str
    timezone: str
    as_of: date
    """The reference day: the last day of the stage history (the profiles' day without one)."""
    profiles_as_of: datetime
    profiles_day: date
    """The local day the profiles (RFM, tiers, stages of the 360) describe the end of."""
    refreshed_at: datetime
    history: tuple[date, date] | None
    main_currency: str | None
    stages: tuple[StageInfo, ...]
    stage_daily: dict[int, dict[str, int]]
    revenue_daily: dict[int, float]
    """Paid revenue per day in ``main_currency``."""
    rfm_cells: tuple[RfmCell, ...]
    rfm_segments: tuple[RfmSegmentCount, ...]
    flow_stages: tuple[str, ...]
    flows_arrays: dict[str, npt.NDArray[Any]]
    purchase_arrays: dict[str, npt.NDArray[Any]]

    def stage_labels(self) -> dict[str, tuple[str, str]]:
        """Stage key -> (English, Chinese) label."""
        return {stage.key: (stage.label_en, stage.label_zh) for stage in self.stages}

    def days(self, start: date, end: date) -> list[date]:
        """The stored days from ``start`` to ``end``, in order."""
        first, last = epoch_day(start), epoch_day(end)
        return [_day(d) for d in sorted(self.stage_daily) if first <= d <= last]

    def distribution(self, start: date, end: date) -> tuple[list[date], list[StageSeries]]:
        """Customers per stage on each stored day of the range: the model's stages in order,
        then any other key the history holds (e.g. ``(no stage)``)."""
        days = self.days(start, end)
        counts = [self.stage_daily[epoch_day(day)] for day in days]
        keys = [stage.key for stage in self.stages]
        keys += sorted({key for day in counts for key in day} - set(keys))
        return days, [StageSeries(key, [day.get(key, 0) for day in counts]) for key in keys]

    def flows(self, start: date, end: date) -> list[Flow]:
        """Customers from each stage on ``start`` to each stage on ``end``, largest first."""
        self._check_history_day("start", start)
        self._check_history_day("end", end)
        if end < start:
            raise BoardRangeError("end", f"end {end} is before start {start}")
        on_start = self.stage_daily.get(epoch_day(start), {})
        moved = self._moves(epoch_day(start), epoch_day(end))
        left = Counter[str]()
        for (from_stage, _), customers in moved.items():
            left[from_stage] += customers
        for stage, customers in on_start.items():
            stayed = customers - left[stage]
            if stayed:
                moved[(stage, stage)] = moved.get((stage, stage), 0) + stayed
        flows = [Flow(f, t, n) for (f, t), n in moved.items() if n]
        return sorted(flows, key=lambda flow: (-flow.customers, flow.from_stage, flow.to_stage))

    def kpis(self, period_days: int) -> KpiReport:
        """The KPI cards for the ``period_days`` days ending on :attr:`as_of`, and the period
        before (see docs/api.md for each definition)."""
        end = self.as_of
        start = end - timedelta(days=period_days - 1)
        previous_end = start - timedelta(days=1)
        previous_start = previous_end - timedelta(days=period_days - 1)
        now = self.stage_daily.get(epoch_day(end))
        before = self.stage_daily.get(epoch_day(previous_end))
        roles = {role: self._role(role, now, before) for role in KPI_ROLES}
        return KpiReport(
            period=(start, end),
            previous_period=(previous_start, previous_end),
            customers=Kpi(_total(now), _total(before)),
            roles=roles,
            revenue=Kpi(self._revenue(start, end), self._revenue(previous_start, previous_end)),
            repurchase_rate=Kpi(
                self._repurchase(start, end), self._repurchase(previous_start, previous_end)
            ),
        )

    def _role(
        self, role: KpiRole, now: dict[str, int] | None, before: dict[str, int] | None
    ) -> Kpi:
        keys = tuple(stage.key for stage in self.stages if stage.kpi == role)
        if not keys:
            return Kpi(None, None, keys)
        return Kpi(_sum_of(now, keys), _sum_of(before, keys), keys)

    def _revenue(self, start: date, end: date) -> float:
        first, last = epoch_day(start), epoch_day(end)
        return float(sum(v for day, v in self.revenue_daily.items() if first <= day <= last))

    def _repurchase(self, start: date, end: date) -> float | None:
        """Buyers with two or more paid orders in the period, as a share of its buyers."""
        days = self.purchase_arrays[f"{PURCHASE_PREFIX}day"]
        low = int(np.searchsorted(days, epoch_day(start), side="left"))
        high = int(np.searchsorted(days, epoch_day(end), side="right"))
        if high <= low:
            return None
        customers = self.purchase_arrays[f"{PURCHASE_PREFIX}customer"][low:high]
        orders = self.purchase_arrays[f"{PURCHASE_PREFIX}orders"][low:high]
        per_customer = np.bincount(customers, weights=orders)
        buyers = int(np.count_nonzero(per_customer))
        return int(np.count_nonzero(per_customer >= 2)) / buyers

    def _moves(self, start: int, end: int) -> dict[tuple[str, str], int]:
        """(stage on start, stage on end) of every customer with a transition in (start, end]."""
        arrays = self.flows_arrays
        in_range = (arrays[f"{FLOW_PREFIX}day"] > start) & (arrays[f"{FLOW_PREFIX}day"] <= end)
        rows = np.flatnonzero(in_range)
        if rows.size == 0:
            return {}
        customers = arrays[f"{FLOW_PREFIX}customer"][rows]
        starts = np.concatenate(([True], customers[1:] != customers[:-1]))
        ends = np.concatenate((customers[1:] != customers[:-1], [True]))
        from_codes = arrays[f"{FLOW_PREFIX}from_key"][rows[starts]].astype(np.int64)
        to_codes = arrays[f"{FLOW_PREFIX}to_key"][rows[ends]].astype(np.int64)
        width = len(self.flow_stages)
        pairs = np.bincount(from_codes * width + to_codes, minlength=width * width)
        return {
            (self.flow_stages[code // width], self.flow_stages[code % width]): int(pairs[code])
            for code in np.flatnonzero(pairs)
        }

    def _check_history_day(self, field: str, day: date) -> None:
        if self.history is None:
            raise BoardRangeError(
                field,
                f"stage model {self.model!r} has no stage history; build it with "
                "`perennial lifecycle backfill` and refresh the serving store",
            )
        first, last = self.history
        if not first <= day <= last:
            raise BoardRangeError(
                field, f"{day} is outside the stage history, which covers {first} to {last}"
            )


def load_board(connection: sqlite3.Connection) -> Board:
    """Read the board's tables and arrays from an open serving store."""
    meta = dict(connection.execute("SELECT key, value FROM meta").fetchall())
    history = (
        (date.fromisoformat(meta["history_first"]), date.fromisoformat(meta["history_last"]))
        if meta.get("history_first")
        else None
    )
    return Board(
        model=meta["model"],
        timezone=meta["timezone"],
        as_of=date.fromisoformat(meta["as_of"]),
        profiles_as_of=datetime.fromisoformat(meta["profiles_as_of"]),
        profiles_day=date.fromisoformat(meta["profiles_day"]),
        refreshed_at=datetime.fromisoformat(meta["refreshed_at"]),
        history=history,
        main_currency=meta.get("main_currency"),
        stages=tuple(
            StageInfo(key, label_en, label_zh, kpi)
            for key, label_en, label_zh, kpi in connection.execute(
                "SELECT key, label_en, label_zh, kpi FROM stages ORDER BY rank"
            )
        ),
        stage_daily=_stage_daily(connection),
        revenue_daily=dict(
            connection.execute(
                "SELECT day, revenue FROM revenue_daily WHERE currency = ?",
                (meta.get("main_currency"),),
            ).fetchall()
        ),
        rfm_cells=tuple(
            RfmCell(*row) for row in connection.execute("SELECT * FROM rfm_cells ORDER BY r, f")
        ),
        rfm_segments=tuple(
            RfmSegmentCount(*row)
            for row in connection.execute(
                "SELECT segment, label_en, label_zh, customers, revenue FROM rfm_segments "
                "ORDER BY position"
            )
        ),
        flow_stages=tuple(orjson.loads(meta["flow_stages"])),
        flows_arrays=read_arrays(connection, FLOW_PREFIX),
        purchase_arrays=read_arrays(connection, PURCHASE_PREFIX),
    )


def _stage_daily(connection: sqlite3.Connection) -> dict[int, dict[str, int]]:
    daily: dict[int, dict[str, int]] = {}
    for day, stage, customers in connection.execute(
        "SELECT day, stage, customers FROM stage_daily"
    ):
        daily.setdefault(day, {})[stage] = customers
    return daily


def _day(days: int) -> date:
    return EPOCH + timedelta(days=days)


def _total(counts: dict[str, int] | None) -> float | None:
    return None if counts is None else float(sum(counts.values()))


def _sum_of(counts: dict[str, int] | None, keys: tuple[str, ...]) -> float | None:
    return None if counts is None else float(sum(counts.get(key, 0) for key in keys))
