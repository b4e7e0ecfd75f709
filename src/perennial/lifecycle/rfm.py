"""RFM scores, codes and named segments as one Ibis expression over a features table.

Scores run from 1 to 5, 5 best: R for the most recent customers, F and M for
the most frequent and highest-spending. Quantile scores are computed only over
customers who have ordered, by percent rank, so equal values always get equal
scores (see ``docs/rfm.md``). The result is an expression, not data: it runs
unchanged on DuckDB and on Spark, wherever ``perennial.store`` executes it.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable
from functools import reduce

import ibis  # type: ignore[import-untyped]
import ibis.expr.types as ir  # type: ignore[import-untyped]

from perennial.lifecycle.narrow_join import is_wide, join_narrow
from perennial.lifecycle.rfm_config import RfmConfig, ScoreRule, default_rfm_config, load_rfm_config
from perennial.lifecycle.rfm_segments import SCORE_LEVELS, RfmSegment

__all__ = [
    "RFM_COLUMNS",
    "RFM_INPUT_COLUMNS",
    "RfmConfig",
    "has_ordered",
    "load_rfm_config",
    "score_rfm",
    "segment_grid",
]

RFM_INPUT_COLUMNS = ("customer_id", "recency_days", "frequency_orders", "monetary_total")
"""What :func:`score_rfm` reads: days since the last paid order (null if none), orders, spend."""

RFM_COLUMNS = ("rfm_r", "rfm_f", "rfm_m", "rfm_fm", "rfm_code", "rfm_segment")
"""What :func:`score_rfm` adds; scores are int8 and null for customers without orders."""

_TOP = SCORE_LEVELS[-1]


def has_ordered(features: ir.Table) -> ir.BooleanValue:
    """True for customers with at least one order: the population scores are ranked over."""
    return features.recency_days.notnull() & (features.frequency_orders.fill_null(0) > 0)


def score_rfm(features: ir.Table, config: RfmConfig | None = None) -> ir.Table:
    """Add R, F, M scores, the FM score, the code (``"545"``) and the segment key.

    ``features`` has one row per ``customer_id``. Customers without orders keep
    null scores and code and get the config's no-orders segment. Columns of the
    same names already in ``features`` are replaced, so re-scoring a profile
    table is safe.
    """
    config = config or default_rfm_config()
    _require_columns(features, RFM_INPUT_COLUMNS, "score_rfm")
    wide = is_wide(features)
    inputs = features.select(*RFM_INPUT_COLUMNS) if wide else features
    ordered = has_ordered(inputs)
    scores = {
        "rfm_r": _score(inputs.recency_days, config.scores.r, ordered, higher_is_better=False),
        "rfm_f": _score(
            inputs.frequency_orders.fill_null(0), config.scores.f, ordered, higher_is_better=True
        ),
        "rfm_m": _score(
            inputs.monetary_total.fill_null(0), config.scores.m, ordered, higher_is_better=True
        ),
    }
    if wide:
        narrow = inputs.select(rfm_customer_id=inputs.customer_id, **scores)
        scored = join_narrow(features, narrow, "rfm_customer_id", tuple(scores))
    else:
        scored = features.mutate(**scores)
    fm = ((scored.rfm_f + scored.rfm_m) // 2).cast("int8")  # rfm_segments.fm_score
    segment = ibis.cases(
        (~has_ordered(scored), config.no_orders.key),
        *((_in_segment(scored, fm, segment), key) for key, segment in config.segments.items()),
    )
    code = scored.rfm_r.cast("string") + scored.rfm_f.cast("string") + scored.rfm_m.cast("string")
    return scored.mutate(rfm_fm=fm, rfm_code=code, rfm_segment=segment)


def segment_grid(scored: ir.Table) -> ir.Table:
    """Customers per R x FM cell and segment, best cells first, for the RFM grid view.

    Input is the output of :func:`score_rfm`; customers without orders are left
    out. Only cells with customers appear: the view takes the full layout, empty
    cells included, from :func:`~perennial.lifecycle.rfm_segments.grid_cells`
    (kept out of the expression so it needs no in-memory table on any engine).
    A cell has one row per segment in it: one with the default grid, several
    when a config splits a cell by F or M.
    """
    _require_columns(scored, ("rfm_r", "rfm_fm", "rfm_segment"), "segment_grid")
    keys = ["rfm_r", "rfm_fm", "rfm_segment"]
    return (
        scored.filter(scored.rfm_r.notnull())
        .group_by(keys)
        .aggregate(customers=ibis._.count())
        .order_by([ibis.desc("rfm_r"), ibis.desc("rfm_fm"), "rfm_segment"])
    )


def _score(
    value: ir.NumericColumn, rule: ScoreRule, ordered: ir.BooleanValue, *, higher_is_better: bool
) -> ir.IntegerValue:
    """One 1-5 score, null for customers without orders."""
    if rule.thresholds is None:
        score = _quantile_score(value, ordered, higher_is_better=higher_is_better)
    else:
        score = _threshold_score(value, rule.thresholds, higher_is_better=higher_is_better)
    return ibis.ifelse(ordered, score, ibis.null()).cast("int8")


def _quantile_score(
    value: ir.NumericColumn, ordered: ir.BooleanValue, *, higher_is_better: bool
) -> ir.IntegerValue:
    """``1 + floor(5 * percent_rank)`` (capped at 5) within the customers who ordered.

    The percent rank is ``(rank - 1) / (n - 1)`` with the minimum rank for ties,
    so tied customers share the lower score. It is computed in integers so the
    bucket edges are exact on every engine; ``n = 1`` scores 1.
    """
    order = value if higher_is_better else value.desc()
    window = ibis.window(group_by=ordered, order_by=order)
    position = ibis.rank().over(window)  # 0-based: customers strictly worse
    population = ordered.count().over(ibis.window(group_by=ordered))
    bucket = (position * _TOP) // ibis.greatest(population - 1, 1)
    return ibis.least(bucket + 1, _TOP)


def _threshold_score(
    value: ir.NumericColumn, cuts: tuple[float, ...], *, higher_is_better: bool
) -> ir.IntegerValue:
    """Count the cut points strictly below the value: edges are inclusive upper bounds."""
    above = sum(((value > cut).cast("int8") for cut in cuts), ibis.literal(0, "int8"))
    return (above + 1) if higher_is_better else (_TOP - above)


def _in_segment(scored: ir.Table, fm: ir.IntegerValue, segment: RfmSegment) -> ir.BooleanValue:
    """The segment's box as a condition; full 1-5 ranges are left out of the expression."""
    conditions = [
        (score == low) if low == high else score.between(low, high)
        for score, (low, high) in (
            (scored.rfm_r, segment.r),
            (scored.rfm_f, segment.f),
            (scored.rfm_m, segment.m),
            (fm, segment.fm),
        )
        if (low, high) != (SCORE_LEVELS[0], _TOP)
    ]
    return reduce(operator.and_, conditions) if conditions else ibis.literal(True)


def _require_columns(table: ir.Table, names: Iterable[str], caller: str) -> None:
    missing = [name for name in names if name not in table.columns]
    if missing:
        raise ValueError(
            f"{caller} needs column(s) {', '.join(missing)}; "
            f"the table has {', '.join(table.columns)}"
        )
