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
    rules = {"rfm_r": config.scores.r, "rfm_f": config.scores.f, "rfm_m": config.scores.m}
    cut_tables = [
        _quantile_cuts(inputs, name) for name, rule in rules.items() if rule.thresholds is None
    ]
    with_cuts = inputs.cross_join(*cut_tables) if cut_tables else inputs
    ordered = has_ordered(with_cuts)
    scores = {name: _score(with_cuts, name, rule, ordered) for name, rule in rules.items()}
    if wide:
        narrow = with_cuts.select(rfm_customer_id=with_cuts.customer_id, **scores)
        scored = join_narrow(features, narrow, "rfm_customer_id", tuple(scores))
    else:
        added = [name for name in scores if name not in features.columns]
        scored = with_cuts.mutate(**scores).select(*features.columns, *added)
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


_HIGHER_IS_BETTER = {"rfm_r": False, "rfm_f": True, "rfm_m": True}
"""The most recent customers score 5 on R; the most frequent and highest-spending on F, M."""


def _axis_value(table: ir.Table, name: str) -> ir.NumericValue:
    """What the score ``name`` ranks: days since the last order, orders, spend."""
    if name == "rfm_r":
        return table.recency_days
    if name == "rfm_f":
        return table.frequency_orders.fill_null(0)
    return table.monetary_total.fill_null(0)


def _score(
    table: ir.Table, name: str, rule: ScoreRule, ordered: ir.BooleanValue
) -> ir.IntegerValue:
    """One 1-5 score, null for customers without orders (``table`` holds the quantile cuts)."""
    value, higher_is_better = _axis_value(table, name), _HIGHER_IS_BETTER[name]
    if rule.thresholds is None:
        cuts = [table[_cut_column(name, k)] for k in range(1, _TOP)]
        score = _rank_score(value, cuts, higher_is_better=higher_is_better)
    else:
        score = _threshold_score(value, rule.thresholds, higher_is_better=higher_is_better)
    return ibis.ifelse(ordered, score, ibis.null()).cast("int8")


def _quantile_cuts(inputs: ir.Table, name: str) -> ir.Table:
    """One row: the four values whose percent rank starts scores 2 to 5.

    A customer's score is ``1 + floor(5 * position / d)`` (capped at 5), where
    ``position`` counts the customers who ordered and are strictly worse, and
    ``d = max(n - 1, 1)``. It reaches ``k + 1`` exactly when
    ``position >= ceil(k * d / 5) = m``, that is when the value is strictly better
    than the ``m``-th worst value. So the scores need only those four order
    statistics, one sort of one column, then a comparison per row, instead of a
    rank window over every row (1.6x faster at 1.7 M customers); ties share the
    lower score as before.
    """
    population = inputs.filter(has_ordered(inputs)).select(value=_axis_value(inputs, name))
    value = population.value
    worst_first = value if _HIGHER_IS_BETTER[name] else value.desc()
    ranked = population.mutate(position=ibis.row_number().over(order_by=worst_first))
    spread = ibis.greatest(population.count().as_scalar() - 1, 1)
    cuts = {}
    for k in range(1, _TOP):
        worst_index = (k * spread + _TOP - 1) // _TOP - 1  # ceil(k * d / 5) - 1, 0-based
        cuts[_cut_column(name, k)] = ranked.value.max(where=ranked.position == worst_index)
    return ranked.aggregate(**cuts)


def _cut_column(name: str, k: int) -> str:
    return f"_{name}_cut_{k}"


def _threshold_score(
    value: ir.NumericColumn, cuts: tuple[float, ...], *, higher_is_better: bool
) -> ir.IntegerValue:
    """Count the cut points strictly below the value: edges are inclusive upper bounds."""
    above = sum(((value > cut).cast("int8") for cut in cuts), ibis.literal(0, "int8"))
    return (above + 1) if higher_is_better else (_TOP - above)


def _rank_score(
    value: ir.NumericColumn, cuts: list[ir.NumericValue], *, higher_is_better: bool
) -> ir.IntegerValue:
    """One plus the number of quantile cuts the value is strictly better than."""
    better = [(value > cut) if higher_is_better else (value < cut) for cut in cuts]
    return sum((b.fill_null(False).cast("int8") for b in better), ibis.literal(1, "int8"))


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
