"""The paper's diagnostics on CDNOW: the calibration histogram, conditional expectations of
weeks 40-78 by calibration frequency, tracking totals and the spend-frequency correlation."""

from __future__ import annotations

import numpy as np
import pytest

from perennial.models.bgnbd import BgNbdModel
from perennial.models.btyd_checks import (
    conditional_expectations_by_frequency,
    expected_cumulative_repeat_purchases,
    frequency_histogram,
    holdout_purchases,
    holdout_table,
    spend_frequency_correlation,
)
from perennial.models.btyd_data import BtydInputError, BtydSummary
from perennial.models.pareto_nbd import ParetoNbdModel
from tests.models.cdnow import HOLDOUT_WEEKS

ACTUAL_HISTOGRAM = [1_411, 439, 214, 100, 62, 38, 29, 64]
"""Customers with 0, 1, ..., 6, 7+ repeat purchases in calibration (FHL 2005, Figure 2)."""


@pytest.fixture(scope="module")
def holdout(cdnow_calibration: BtydSummary, cdnow_whole_period: BtydSummary) -> np.ndarray:
    return holdout_purchases(cdnow_calibration, cdnow_whole_period)


def test_bgnbd_calibration_histogram_fits_cdnow(
    cdnow_bgnbd: BgNbdModel, cdnow_calibration: BtydSummary
) -> None:
    histogram = frequency_histogram(cdnow_bgnbd, cdnow_calibration)
    assert [b.label for b in histogram.bins] == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert [b.actual_customers for b in histogram.bins] == ACTUAL_HISTOGRAM
    expected = [b.expected_customers for b in histogram.bins]
    assert sum(expected) == pytest.approx(2_357)
    for bin_, actual in zip(histogram.bins, ACTUAL_HISTOGRAM, strict=True):
        assert abs(bin_.expected_customers - actual) < max(25.0, 0.1 * actual), bin_.label
    observed = np.array(ACTUAL_HISTOGRAM, dtype=float)
    assert histogram.chi_square == pytest.approx(np.sum((observed - expected) ** 2 / expected))
    assert histogram.degrees_of_freedom == 3  # 8 bins - 1 - 4 parameters
    assert histogram.chi_square < 7.81  # the 5 % critical value: no evidence of misfit
    assert histogram.p_value > 0.05


def test_expected_counts_are_the_sum_of_each_customers_probability(
    cdnow_bgnbd: BgNbdModel, cdnow_calibration: BtydSummary
) -> None:
    histogram = frequency_histogram(cdnow_bgnbd, cdnow_calibration, max_frequency=5)
    for n in range(5):
        per_customer = cdnow_bgnbd.probability_of_purchases(n, cdnow_calibration.T)
        assert histogram.bins[n].expected_customers == pytest.approx(per_customer.sum())
    assert histogram.bins[-1].label == "5+"
    table = histogram.to_arrow()
    assert table.column("repeat_purchases").to_pylist()[-1] == "5+"


def test_pareto_nbd_histogram_is_computed_the_same_way(
    cdnow_pareto_nbd: ParetoNbdModel, cdnow_calibration: BtydSummary
) -> None:
    histogram = frequency_histogram(cdnow_pareto_nbd, cdnow_calibration)
    assert sum(b.expected_customers for b in histogram.bins) == pytest.approx(2_357)
    assert histogram.bins[0].expected_customers == pytest.approx(1_411, rel=0.05)


def test_too_few_bins_for_the_parameters_are_refused(
    cdnow_bgnbd: BgNbdModel, cdnow_calibration: BtydSummary
) -> None:
    with pytest.raises(ValueError, match="at least 5"):
        frequency_histogram(cdnow_bgnbd, cdnow_calibration, max_frequency=4)


def test_the_holdout_holds_the_published_1882_repeat_purchases(holdout: np.ndarray) -> None:
    assert holdout.sum() == 1_882
    assert holdout.min() >= 0


@pytest.mark.parametrize("fixture", ["cdnow_bgnbd", "cdnow_pareto_nbd"])
def test_conditional_expectations_by_frequency_follow_the_holdout(
    fixture: str,
    request: pytest.FixtureRequest,
    cdnow_calibration: BtydSummary,
    holdout: np.ndarray,
) -> None:
    model = request.getfixturevalue(fixture)
    groups = conditional_expectations_by_frequency(model, cdnow_calibration, holdout, HOLDOUT_WEEKS)
    assert [g.label for g in groups] == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert [g.customers for g in groups] == ACTUAL_HISTOGRAM
    assert sum(g.actual_purchases for g in groups) == 1_882
    for group in groups:
        # FHL 2005, Figure 5: the models track the holdout means, erring most at x = 1, 2
        assert abs(group.predicted_mean - group.actual_mean) <= max(0.15, 0.3 * group.actual_mean)
    means = [g.predicted_mean for g in groups]
    assert means == sorted(means)  # more calibration purchases, more expected


def test_conditional_expectations_are_group_means_of_equation_10(
    cdnow_bgnbd: BgNbdModel, cdnow_calibration: BtydSummary, holdout: np.ndarray
) -> None:
    groups = conditional_expectations_by_frequency(cdnow_bgnbd, cdnow_calibration, holdout, 39.0)
    per_customer = cdnow_bgnbd.conditional_expected_purchases(cdnow_calibration, 39.0)
    for group in groups:
        x = group.calibration_frequency
        members = (
            cdnow_calibration.frequency >= x
            if group.open_ended
            else cdnow_calibration.frequency == x
        )
        assert group.predicted_mean == pytest.approx(per_customer[members].mean())
        assert group.actual_mean == pytest.approx(holdout[members].mean())


def test_the_holdout_table_is_ready_for_a_report(
    cdnow_bgnbd: BgNbdModel, cdnow_calibration: BtydSummary, holdout: np.ndarray
) -> None:
    groups = conditional_expectations_by_frequency(cdnow_bgnbd, cdnow_calibration, holdout, 39.0)
    table = holdout_table(groups)
    assert table.column_names == [
        "calibration_frequency",
        "customers",
        "actual_purchases",
        "predicted_purchases",
        "actual_mean",
        "predicted_mean",
    ]
    assert table.num_rows == 8
    assert table.column("actual_purchases").to_numpy().sum() == 1_882
    predicted_total = table.column("predicted_purchases").to_numpy().sum()
    assert predicted_total == pytest.approx(1_882, rel=0.15)


def test_tracking_totals_match_calibration_and_forecast_the_holdout(
    cdnow_bgnbd: BgNbdModel, cdnow_calibration: BtydSummary
) -> None:
    at_end, through_holdout = expected_cumulative_repeat_purchases(
        cdnow_bgnbd, cdnow_calibration, [0.0, HOLDOUT_WEEKS]
    )
    assert at_end == pytest.approx(2_457, rel=0.03)
    assert through_holdout - at_end == pytest.approx(1_882, rel=0.15)
    before = expected_cumulative_repeat_purchases(cdnow_bgnbd, cdnow_calibration, [-100.0])
    assert before[0] == 0.0  # nobody had been a customer 100 weeks before the end


def test_spend_and_frequency_are_nearly_independent_in_cdnow(
    cdnow_calibration: BtydSummary,
) -> None:
    assert spend_frequency_correlation(cdnow_calibration) == pytest.approx(0.11, abs=0.01)


def test_holdout_purchases_need_every_calibration_customer_with_no_fewer_purchases() -> None:
    calibration = BtydSummary.from_arrays([1, 2], [1.0, 2.0], [3.0, 3.0], customer_id=["a", "b"])
    fewer = BtydSummary.from_arrays([1, 1], [1.0, 2.0], [5.0, 5.0], customer_id=["b", "a"])
    with pytest.raises(BtydInputError, match="fewer purchases") as caught:
        holdout_purchases(calibration, fewer)
    assert caught.value.customer_id == "b"
    missing = BtydSummary.from_arrays([3], [4.0], [5.0], customer_id=["a"])
    with pytest.raises(BtydInputError, match="not in the whole-period") as caught:
        holdout_purchases(calibration, missing)
    assert caught.value.customer_id == "b"
    reordered = BtydSummary.from_arrays(
        [4, 1, 2], [4.0, 1.0, 2.0], [5.0, 5.0, 5.0], customer_id=["b", "c", "a"]
    )
    assert holdout_purchases(calibration, reordered).tolist() == [1.0, 2.0]


def test_holdout_counts_must_line_up_with_the_calibration_customers(
    cdnow_bgnbd: BgNbdModel, cdnow_calibration: BtydSummary
) -> None:
    with pytest.raises(ValueError, match="one holdout count per calibration customer"):
        conditional_expectations_by_frequency(cdnow_bgnbd, cdnow_calibration, [1.0, 2.0], 39.0)
