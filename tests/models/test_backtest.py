"""The backtest: metrics against hand-computed answers, baselines pointing the right way,
leakage and missing outcomes refused, and a whole run on a small demo and on CDNOW."""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from perennial.config import Settings
from perennial.models.backtest import (
    BacktestError,
    BacktestPlan,
    BtydFits,
    StoreBacktest,
    align_summary,
    backtest_store,
    brier,
    calibration_bins,
    cdnow_plan,
    clv_backtest,
    demo_plan,
    lift_at,
    pr_auc,
    predicted_holdout_spend,
    require_outcomes_before,
    roc_auc,
    top_fraction_mean,
)
from perennial.models.backtest_baselines import (
    bgnbd_no_purchase_probability,
    dropout_score,
    expected_purchases_score,
    lifecycle_stage_score,
    recency_score,
    spend_of,
)
from perennial.models.bgnbd import BgNbdModel
from perennial.models.btyd_data import BtydSummary
from perennial.models.churn_config import parse_churn_config
from perennial.models.clv import DAYS_PER_MONTH, customer_lifetime_value
from perennial.models.gamma_gamma import GammaGammaModel
from perennial.models.pareto_nbd import ParetoNbdModel
from perennial.store.backends import open_backend
from perennial.store.warehouse import Warehouse
from tests.models.demo_store import churn_demo

CDNOW_BGNBD = BgNbdModel(r=0.243, alpha=4.414, a=0.793, b=2.426)
"""The published CDNOW estimates (Fader, Hardie & Lee 2005)."""

# ---------------------------------------------------------------- metrics by hand


def test_auc_is_one_for_a_perfect_ranking_zero_for_its_inverse_and_a_half_for_a_constant() -> None:
    churned = [False, False, True, True]

    assert roc_auc([0.1, 0.2, 0.8, 0.9], churned) == 1.0
    assert roc_auc([0.9, 0.8, 0.2, 0.1], churned) == 0.0
    assert roc_auc([0.5, 0.5, 0.5, 0.5], churned) == 0.5


def test_auc_counts_the_pairs_ranked_right() -> None:
    # Pairs (churned, retained): (0.35 > 0.1), (0.35 < 0.4), (0.8 > 0.1), (0.8 > 0.4): 3 of 4.
    assert roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)


def test_pr_auc_is_one_for_a_perfect_ranking_and_the_base_rate_for_a_constant() -> None:
    churned = [True, False, False, False, True]

    assert pr_auc([0.9, 0.1, 0.2, 0.3, 0.8], churned) == 1.0
    assert pr_auc([0.5] * 5, churned) == pytest.approx(0.4)


def test_lift_of_a_perfect_ranking_is_one_over_the_base_rate() -> None:
    churned = np.zeros(20, dtype=bool)
    churned[:4] = True
    score = np.where(churned, 1.0, 0.0) + np.linspace(0, 0.1, 20)

    assert lift_at(score, churned, 0.1) == pytest.approx(1 / 0.2)
    assert lift_at(-score, churned, 0.1) == 0.0


def test_lift_shares_the_tied_group_at_the_edge_pro_rata() -> None:
    # Top 30 % of 10 is 3 customers: the 5 (churned) and two thirds of the three 4s
    # (one churned): (1 + 2/3) / 3 churned among the top, over a base rate of 2/10.
    score = [5, 4, 4, 4, 1, 1, 1, 1, 1, 1]
    churned = [1, 1, 0, 0, 0, 0, 0, 0, 0, 0]

    assert lift_at(score, churned, 0.3) == pytest.approx((5 / 9) / 0.2)
    assert lift_at([7] * 10, churned, 0.3) == pytest.approx(1.0)


def test_brier_is_the_mean_squared_error_and_the_base_rate_scores_p_times_one_minus_p() -> None:
    assert brier([0.1, 0.9, 0.5], [0, 1, 1]) == pytest.approx((0.01 + 0.01 + 0.25) / 3)
    churned = [1, 0, 0, 0]
    assert brier([0.25] * 4, churned) == pytest.approx(0.25 * 0.75)


def test_calibration_bins_are_equal_count_groups_of_the_prediction_lowest_first() -> None:
    bins = calibration_bins([0.4, 0.1, 0.3, 0.2], [1, 0, 1, 0], bins=2)

    assert [(b.customers, b.mean_predicted, b.observed_rate) for b in bins] == [
        (2, pytest.approx(0.15), 0.0),
        (2, pytest.approx(0.35), 1.0),
    ]


@given(
    st.lists(st.integers(0, 5), min_size=2, max_size=40),
    st.lists(st.booleans(), min_size=2, max_size=40),
)
def test_a_ranking_and_its_reverse_split_the_auc_and_the_whole_top_is_the_mean(
    scores: list[int], outcome: list[bool]
) -> None:
    n = min(len(scores), len(outcome))
    score, churned = np.array(scores[:n], dtype=float), np.array(outcome[:n])
    if churned.all() or not churned.any():
        return
    assert roc_auc(score, churned) + roc_auc(-score, churned) == pytest.approx(1.0)
    assert top_fraction_mean(score, churned, 1.0) == pytest.approx(churned.mean())
    assert 0.0 <= lift_at(score, churned, 0.1) <= 1.0 / churned.mean() + 1e-9


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: roc_auc([0.1, float("nan")], [0, 1]), "position 1 is nan"),
        (lambda: roc_auc([0.1, 0.2], [1, 1]), "both outcomes"),
        (lambda: roc_auc([0.1, 0.2, 0.3], [0, 1]), "one length"),
        (lambda: roc_auc([0.1, 0.2], [0, 2]), "true/false"),
        (lambda: brier([0.1, 1.2], [0, 1]), r"\[0, 1\]"),
        (lambda: calibration_bins([0.1, 0.2], [0, 1], bins=3), "into 3 bins"),
        (lambda: top_fraction_mean([1.0], [1.0], 0.0), "fraction"),
        (lambda: lift_at([], [], 0.1), "no customers"),
    ],
)
def test_bad_scores_are_refused_saying_why(call: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


# ---------------------------------------------------------------- baselines point to risk


def test_the_recency_rule_scores_longer_silence_higher_and_never_ordered_highest() -> None:
    rows = pa.table({"recency_days": pa.array([3.0, 40.0, None, 10.0])})

    score = recency_score(rows)

    assert list(np.argsort(score)) == [0, 3, 1, 2]
    assert score[2] == 41.0


def test_the_lifecycle_rule_ranks_churned_over_dormant_over_new_over_growing_over_mature() -> None:
    order = ["mature", "growth", "introduction", "dormant", "churned"]
    stages = pa.table({"customer_id": [f"c{i}" for i in range(5)], "stage": order})

    score = lifecycle_stage_score(stages, ["c4", "c3", "c2", "c1", "c0"])

    assert list(score) == sorted(score, reverse=True)
    assert len(set(score)) == 5


def test_the_lifecycle_rule_refuses_an_unranked_stage_and_a_customer_without_one() -> None:
    stages = pa.table({"customer_id": ["a", "b"], "stage": ["vip", "growth"]})

    with pytest.raises(KeyError, match="'vip'"):
        lifecycle_stage_score(stages, ["a"])
    with pytest.raises(KeyError, match="'z'"):
        lifecycle_stage_score(stages, ["b", "z"])


def _active_and_silent() -> BtydSummary:
    """Two customers with 5 repeat purchases over 30 weeks: the last one just now, or at week 2."""
    return BtydSummary.from_arrays([5, 5], [30, 2], [30, 30], customer_id=["active", "silent"])


def test_btyd_scores_rate_the_long_silent_customer_riskier() -> None:
    summary = _active_and_silent()
    pareto = ParetoNbdModel(r=0.553, alpha=10.58, s=0.606, beta=11.67)

    for score in (
        expected_purchases_score(CDNOW_BGNBD, summary, 13.0),
        expected_purchases_score(pareto, summary, 13.0),
        bgnbd_no_purchase_probability(CDNOW_BGNBD, summary, 13.0),
        dropout_score(CDNOW_BGNBD, summary),
    ):
        assert score[1] > score[0]


def test_no_purchase_probability_of_a_new_customer_is_bgnbd_p_of_zero_purchases() -> None:
    horizons = np.array([1.0, 13.0, 39.0])
    new = BtydSummary.from_arrays([0, 0, 0], [0, 0, 0], [0, 0, 0])

    ours = [bgnbd_no_purchase_probability(CDNOW_BGNBD, new, t)[0] for t in horizons]

    # Equation (8) with n = 0 is the same event for a customer who just made a first purchase.
    assert ours == pytest.approx(CDNOW_BGNBD.probability_of_purchases(0, horizons))


def test_one_minus_p_alive_cannot_tell_one_time_buyers_apart() -> None:
    summary = BtydSummary.from_arrays([0, 0, 3], [0, 0, 5], [1, 60, 60])

    score = dropout_score(CDNOW_BGNBD, summary)

    assert list(score[:2]) == [0.0, 0.0]
    assert score[2] > 0


def test_spend_is_aligned_to_the_customers_asked_for_with_zero_for_the_silent() -> None:
    spend = pa.table({"customer_id": ["b", "a"], "spend": [5.0, 2.5]})

    assert list(spend_of(spend, ["a", "c", "b"])) == [2.5, 0.0, 5.0]


# ---------------------------------------------------------------- honesty checks


def test_a_model_validated_on_outcomes_after_the_cutoff_is_refused() -> None:
    cutoff = datetime(2025, 10, 1, tzinfo=UTC)
    honest = {"cutoffs": {"validation": (cutoff - timedelta(days=90)).isoformat()}}
    leaky = {"cutoffs": {"validation": (cutoff - timedelta(days=89)).isoformat()}}

    require_outcomes_before(honest, 90, cutoff)
    with pytest.raises(BacktestError, match="leaked"):
        require_outcomes_before(leaky, 90, cutoff)
    with pytest.raises(BacktestError, match="no validation cut-off"):
        require_outcomes_before({}, 90, cutoff)


def test_summary_rows_follow_the_scored_customers_and_a_missing_one_is_named() -> None:
    summary = BtydSummary.from_arrays([1, 2], [1, 2], [3, 3], customer_id=["a", "b"])

    assert list(align_summary(summary, ["b", "a"]).frequency) == [2.0, 1.0]
    with pytest.raises(BacktestError, match="'z'"):
        align_summary(summary, ["a", "z"])


def test_a_plan_refuses_a_naive_cutoff_and_a_churn_horizon_past_its_window() -> None:
    plan = demo_plan("demo")

    with pytest.raises(ValueError, match="time zone"):
        dataclasses.replace(plan, cutoff=datetime(2025, 10, 1))
    with pytest.raises(ValueError, match="past the plan's 30-day"):
        dataclasses.replace(plan, horizon_days=30)


def test_clv_deciles_totals_errors_and_top_decile_share_by_hand() -> None:
    predicted = np.arange(1.0, 21.0)
    actual = 2 * predicted
    naive = np.full(20, 10.0)

    clv = clv_backtest(predicted, actual, naive, horizon_days=90)

    assert [d.customers for d in clv.deciles] == [2] * 10
    assert clv.deciles[-1].predicted_spend == 19 + 20
    assert clv.deciles[-1].actual_spend == 78
    assert (clv.predicted_total, clv.actual_total, clv.baseline_total) == (210, 420, 200)
    assert clv.model_mae == pytest.approx(10.5)
    assert clv.baseline_mae == pytest.approx(np.abs(naive - actual).mean())
    assert clv.model_top_decile_share == pytest.approx(78 / 420)
    assert clv.baseline_top_decile_share == pytest.approx(0.1)  # all tied: a tenth of it
    with pytest.raises(ValueError, match="nobody spent"):
        clv_backtest(predicted, np.zeros(20), naive, horizon_days=90)


def test_predicted_value_is_undiscounted_clv_over_the_same_horizon(
    cdnow_calibration: BtydSummary,
    cdnow_bgnbd: BgNbdModel,
    cdnow_pareto_nbd: ParetoNbdModel,
    cdnow_gamma_gamma: GammaGammaModel,
) -> None:
    fits = BtydFits(cdnow_calibration, cdnow_bgnbd, cdnow_pareto_nbd, cdnow_gamma_gamma, 7.0)

    ours = predicted_holdout_spend(fits, 3 * DAYS_PER_MONTH)
    clv = customer_lifetime_value(
        cdnow_bgnbd, cdnow_gamma_gamma, cdnow_calibration, horizon_months=3, annual_discount_rate=0
    )

    assert ours == pytest.approx(clv, rel=1e-9)


# ---------------------------------------------------------------- whole runs


def _numbers(value: object, path: str = "result") -> list[tuple[str, float]]:
    """Every float inside a result, with where it sits."""
    if isinstance(value, float):
        return [(path, value)]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        found = []
        for item in dataclasses.fields(value):
            found += _numbers(getattr(value, item.name), f"{path}.{item.name}")
        return found
    if isinstance(value, tuple | list):
        return [n for i, v in enumerate(value) for n in _numbers(v, f"{path}[{i}]")]
    if isinstance(value, dict):
        return [n for k, v in value.items() for n in _numbers(v, f"{path}[{k}]")]
    return []


@pytest.fixture(scope="module")
def demo_backtest(tmp_path_factory: pytest.TempPathFactory) -> StoreBacktest:
    """The 1,000-customer demo at 2025-10-01 with a lighter churn split (two training cut-offs)."""
    demo = churn_demo(tmp_path_factory)
    light = parse_churn_config({"training": {"train_cutoffs": 2}})
    plan = dataclasses.replace(demo_plan("a small demo"), churn_configs=(light,))
    with open_backend(demo.settings) as backend:
        snapshot = Warehouse(demo.settings.warehouse).snapshot()
        return backtest_store(backend, snapshot, plan, ground_truth=demo.ground_truth())


@pytest.mark.slow
def test_a_demo_backtest_scores_ours_and_every_baseline_on_the_same_customers(
    demo_backtest: StoreBacktest,
) -> None:
    (churn,) = demo_backtest.churn
    keys = [score.key for score in churn.scores]

    assert keys == [
        "ours",
        "recency",
        "lifecycle",
        "bgnbd_expected",
        "pareto_expected",
        "bgnbd_no_purchase",
        "bgnbd_dropout",
    ]
    assert 0 < churn.churned < churn.customers <= demo_backtest.customers
    assert churn.model is not None and churn.model_note.startswith("trained on cut-offs")
    for score in churn.scores:
        assert (
            (score.brier is not None)
            == bool(score.calibration)
            == (score.key in ("ours", "bgnbd_no_purchase"))
        )
        assert sum(b.customers for b in score.calibration) in (0, churn.customers)
        assert score.latent_auc is not None
    assert churn.latent_dropped is not None and 0 < churn.latent_dropped < churn.customers


@pytest.mark.slow
def test_a_demo_backtest_ranks_churners_far_better_than_a_coin(
    demo_backtest: StoreBacktest,
) -> None:
    (churn,) = demo_backtest.churn

    for score in churn.scores:
        if score.key != "bgnbd_dropout":
            assert score.auc > 0.7, score.key
    assert churn.model is not None
    assert churn.model.brier is not None
    assert churn.model.brier < churn.base_rate * (1 - churn.base_rate)


@pytest.mark.slow
def test_a_demo_backtest_adds_up_and_every_number_is_finite(
    demo_backtest: StoreBacktest,
) -> None:
    clv = demo_backtest.clv

    assert sum(d.customers for d in clv.deciles) == clv.customers == demo_backtest.customers
    assert sum(d.actual_spend for d in clv.deciles) == pytest.approx(clv.actual_total)
    for check in demo_backtest.btyd:
        assert sum(g.customers for g in check.groups) == demo_backtest.customers
        assert check.actual_total > 0 and check.predicted_total > 0
    assert demo_backtest.next_order.repeat_customers > 0
    numbers = _numbers(demo_backtest)
    assert len(numbers) > 100
    assert [where for where, value in numbers if not math.isfinite(value)] == []


def test_a_store_without_the_whole_outcome_window_is_refused(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    demo = churn_demo(tmp_path_factory)
    plan = demo_plan("too late", cutoff=demo.dataset.end - timedelta(days=30))

    with open_backend(demo.settings) as backend, pytest.raises(BacktestError, match="ends on"):
        backtest_store(backend, Warehouse(demo.settings.warehouse).snapshot(), plan)


@pytest.mark.slow
def test_cdnow_measures_churn_over_the_holdout_without_our_model_and_over_two_months_with_it(
    cdnow_settings: Settings, cdnow_calibration: BtydSummary, cdnow_whole_period: BtydSummary
) -> None:
    plan: BacktestPlan = cdnow_plan("the CDNOW sample")
    with open_backend(cdnow_settings) as backend:
        snapshot = Warehouse(cdnow_settings.warehouse).snapshot()
        result = backtest_store(backend, snapshot, plan)

    holdout, two_months = result.churn
    assert (holdout.horizon_days, two_months.horizon_days) == (273, 61)
    assert holdout.model is None and holdout.model_note.startswith("not trained: a 273-day horizon")
    assert two_months.model is not None
    assert result.customers == 2357
    assert result.btyd[0].actual_total == 1882  # the published holdout's repeat purchases
    # Holdout spend is the growth of repeat spend (frequency x mean) from T to the holdout's end.
    repeat_spend = [
        np.nansum(s.frequency * s.monetary_value) for s in (cdnow_calibration, cdnow_whole_period)
    ]
    assert result.clv.actual_total == pytest.approx(repeat_spend[1] - repeat_spend[0], rel=1e-9)
    assert [where for where, value in _numbers(result) if not math.isfinite(value)] == []
