"""What the stage history says: stages per day, flows between two days, time in stage.

Everything here reads the stored ``stage_history`` and ``stage_transitions`` of
one stage model (written by :func:`~perennial.lifecycle.backfill.backfill`) as
Ibis expressions, so it runs where the history lives; results are small. A
flow's ``from_stage`` is :data:`NEW` for customers not yet known on the first
day, and a customer no stage rule matched counts as :data:`UNMATCHED`: neither
can be a stage key (keys are lower-case names). :func:`lifecycle_report` puts it
together for ``perennial lifecycle report``: where customers stand on a day and
how they moved to get there, as fresh as the last backfill.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import ibis  # type: ignore[import-untyped]
import ibis.expr.types as ir  # type: ignore[import-untyped]
import pyarrow as pa

from perennial.errors import PerennialError
from perennial.lifecycle.history import STAGE_HISTORY_TABLE, STAGE_TRANSITIONS_TABLE, history_table
from perennial.lifecycle.profiles import StageCount, stage_distribution
from perennial.lifecycle.stage_model import StageModel
from perennial.store.backends import Backend
from perennial.store.warehouse import Snapshot

__all__ = [
    "NEW",
    "REPORT_WINDOW_DAYS",
    "UNMATCHED",
    "Flow",
    "HistoryMissingError",
    "LifecycleReport",
    "daily_distribution",
    "flow_matrix",
    "history_days",
    "lifecycle_report",
    "median_days_in_stage",
    "stages_on",
    "top_movers",
]

NEW = "(new)"
"""``from_stage`` of customers who were not known on the first day of a flow."""

UNMATCHED = "(no stage)"
"""The stage of customers no rule of the model matched (a model without ``otherwise``)."""

REPORT_WINDOW_DAYS = 30
"""The report's flows cover this many days before its day."""


class HistoryMissingError(PerennialError):
    """The stage history of a model does not cover a requested day."""

    def __init__(self, model: str, day: date | None, covered: tuple[date, date] | None) -> None:
        self.model = model
        self.day = day
        on = f" on {day}" if day else ""
        span = f"it covers {covered[0]} to {covered[1]}" if covered else "it has no days yet"
        super().__init__(
            f"no stage history of model {model!r}{on}: {span}; build it with "
            "`perennial lifecycle backfill --from DAY --to DAY --model FILE`"
        )


@dataclass(frozen=True)
class Flow:
    """``customers`` who were in ``from_stage`` on the first day and ``to_stage`` on the last."""

    from_stage: str
    to_stage: str
    customers: int


def history_days(backend: Backend, snapshot: Snapshot, model: str) -> tuple[date, date] | None:
    """The first and last day of the model's stored history; None without any."""
    table = history_table(backend, snapshot, STAGE_HISTORY_TABLE, model)
    span = backend.to_pyarrow(table.aggregate(first=table.day.min(), last=table.day.max()))
    first, last = span.column("first")[0].as_py(), span.column("last")[0].as_py()
    return None if first is None else (first, last)


def stages_on(backend: Backend, snapshot: Snapshot, model: str, day: date) -> pa.Table:
    """Every customer's ``stage`` on ``day``; :class:`HistoryMissingError` when it is not stored."""
    table = _day(backend, snapshot, model, day)
    rows = backend.to_pyarrow(table.select("customer_id", "stage"))
    if rows.num_rows == 0:
        raise HistoryMissingError(model, day, history_days(backend, snapshot, model))
    return rows


def daily_distribution(
    backend: Backend, snapshot: Snapshot, model: str, start: date, end: date
) -> pa.Table:
    """Customers per ``day`` and ``stage`` from ``start`` to ``end``, by day then stage rank."""
    table = history_table(backend, snapshot, STAGE_HISTORY_TABLE, model)
    table = table.filter(table.day.between(start, end))
    counts = table.group_by("day", "stage", "stage_rank").aggregate(customers=table.count())
    return backend.to_pyarrow(counts.order_by(["day", "stage_rank"]).drop("stage_rank"))


def flow_matrix(
    backend: Backend, snapshot: Snapshot, model: str, start: date, end: date
) -> list[Flow]:
    """How many customers went from each stage on ``start`` to each stage on ``end``.

    Customers known by ``end`` but not on ``start`` come from :data:`NEW`. Both days
    must be in the history (:class:`HistoryMissingError` otherwise). Largest first.
    """
    for day in (start, end):
        if not _has_day(backend, snapshot, model, day):
            raise HistoryMissingError(model, day, history_days(backend, snapshot, model))
    before = _day(backend, snapshot, model, start)
    before = before.select(start_customer_id=before.customer_id, from_stage=before.stage)
    after = _day(backend, snapshot, model, end)
    joined = after.left_join(before, after.customer_id == before.start_customer_id)
    known = joined.start_customer_id.notnull()
    flows = joined.select(
        from_stage=ibis.ifelse(known, joined.from_stage.fill_null(UNMATCHED), NEW),
        to_stage=joined.stage.fill_null(UNMATCHED),
    )
    counts = backend.to_pyarrow(
        flows.group_by("from_stage", "to_stage").aggregate(customers=flows.count())
    )
    result = [Flow(**row) for row in counts.to_pylist()]
    return sorted(result, key=lambda f: (-f.customers, f.from_stage, f.to_stage))


def top_movers(flows: list[Flow], limit: int = 5) -> list[Flow]:
    """The largest flows between different stages (arrivals of new customers included)."""
    moves = [flow for flow in flows if flow.from_stage != flow.to_stage]
    return sorted(moves, key=lambda f: (-f.customers, f.from_stage, f.to_stage))[:limit]


def median_days_in_stage(backend: Backend, snapshot: Snapshot, model: str) -> dict[str, float]:
    """Median days a customer stays in each stage once entered, from the transitions.

    A stay starts on the day of a transition into the stage and lasts until the
    customer's next transition, or to the end of the history (counting the last
    day), so stays still running are cut short: the median is a lower bound for
    stages people stay in long. Stays begun before the history starts are not
    seen and not counted. Assumes the history has no gaps between its days.
    """
    span = history_days(backend, snapshot, model)
    if span is None:
        return {}
    moves = history_table(backend, snapshot, STAGE_TRANSITIONS_TABLE, model)
    moves = moves.filter(moves.to_stage.notnull())
    following = ibis.window(group_by=moves.customer_id, order_by=moves.day)
    left_on = moves.day.lead().over(following)
    end = ibis.literal(span[1], type="date")
    stays = moves.select(
        stage=moves.to_stage,
        days=ibis.coalesce(
            left_on.delta(moves.day, unit="day"), end.delta(moves.day, unit="day") + 1
        ),
    )
    medians = backend.to_pyarrow(
        stays.group_by("stage").aggregate(median_days=stays.days.cast("float64").median())
    )
    return {row["stage"]: row["median_days"] for row in medians.sort_by("stage").to_pylist()}


@dataclass(frozen=True)
class LifecycleReport:
    """Stages on ``day``, flows from ``flows_since`` to ``day`` and the largest moves."""

    model: str
    day: date
    distribution: list[StageCount]
    flows_since: date
    """``day`` minus the window, or the history's first day when it starts later."""
    flows: list[Flow]
    top_movers: list[Flow]
    median_days_in_stage: dict[str, float]


def lifecycle_report(
    backend: Backend,
    snapshot: Snapshot,
    model: StageModel,
    day: date | None = None,
    *,
    window_days: int = REPORT_WINDOW_DAYS,
    movers: int = 5,
) -> LifecycleReport:
    """The report of ``model`` on ``day`` (default: the last day of its history).

    Raises :class:`HistoryMissingError` when the history does not hold ``day``.
    """
    covered = history_days(backend, snapshot, model.name)
    if covered is None:
        raise HistoryMissingError(model.name, day, None)
    day = day or covered[1]
    distribution = stage_distribution(stages_on(backend, snapshot, model.name, day), model)
    since = max(day - timedelta(days=window_days), covered[0])
    flows = flow_matrix(backend, snapshot, model.name, since, day)
    return LifecycleReport(
        model=model.name,
        day=day,
        distribution=distribution,
        flows_since=since,
        flows=flows,
        top_movers=top_movers(flows, movers),
        median_days_in_stage=median_days_in_stage(backend, snapshot, model.name),
    )


def _day(backend: Backend, snapshot: Snapshot, model: str, day: date) -> ir.Table:
    table = history_table(backend, snapshot, STAGE_HISTORY_TABLE, model)
    return table.filter(table.day == ibis.literal(day, type="date"))


def _has_day(backend: Backend, snapshot: Snapshot, model: str, day: date) -> bool:
    table = _day(backend, snapshot, model, day)
    return bool(backend.to_pyarrow(table.select("customer_id").limit(1)).num_rows)
