"""Next-order dates: the interval model, the store path, its edges, and the demo backtest."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special, stats

from perennial.config import Settings
from perennial.models import NextOrderConfig, backtest_next_orders, predict_next_orders
from perennial.models.interval_model import (
    IntervalPrior,
    IntervalStatistics,
    NextInterval,
    fit_prior,
    inverse_trigamma,
    posterior,
)
from perennial.models.next_order import (
    NEXT_ORDER_COLUMNS,
    NEXT_ORDER_SCHEMA,
    NextOrderPriors,
    predict_from_statistics,
)
from perennial.store.backends import open_backend
from perennial.store.warehouse import Warehouse
from tests.models.intervals_fixture import (
    AS_OF,
    AS_OF_DAY,
    DEMO_TIMEZONE,
    build_interval_store,
    demo_intervals,
    expected_purchase_days,
    statistics_from_days,
)

SMALL = NextOrderConfig(min_prior_customers=10, min_category_customers=10)


@pytest.fixture(scope="module")
def interval_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    home = tmp_path_factory.mktemp("next-order") / "home"
    settings_ = Settings(home=home)
    build_interval_store(settings_, home / "sources")
    return settings_


def _predict(
    settings_: Settings, as_of: datetime = AS_OF, config: NextOrderConfig = SMALL
) -> dict[str, dict[str, Any]]:
    snapshot = Warehouse(settings_.warehouse).snapshot()
    with open_backend(settings_) as backend:
        table = predict_next_orders(backend, snapshot, as_of, config=config)
    assert table.schema == NEXT_ORDER_SCHEMA
    return {row["customer_id"]: row for row in table.to_pylist()}


# --- the interval model -------------------------------------------------------------


def test_inverse_trigamma_inverts_scipys_trigamma_to_five_digits() -> None:
    shapes = np.logspace(-1.5, 4.5, 500)
    recovered = inverse_trigamma(special.polygamma(1, shapes))
    assert np.max(np.abs(recovered / shapes - 1.0)) < 1e-5


def test_conditional_quantiles_match_scipys_gamma_given_the_wait() -> None:
    interval = NextInterval(np.array([2.0, 0.7]), np.array([5.0, 30.0]))
    waited = np.array([12.0, 40.0])
    quantiles = interval.conditional_quantiles([0.1, 0.5, 0.9], waited)
    for column, (shape, scale) in enumerate([(2.0, 5.0), (0.7, 30.0)]):
        gamma = stats.gamma(shape, scale=scale)
        for row, p in enumerate([0.1, 0.5, 0.9]):
            expected = gamma.isf((1 - p) * gamma.sf(waited[column]))
            assert quantiles[row, column] == pytest.approx(expected, rel=1e-7)
    within = interval.conditional_probability(waited, waited + 10)
    gamma = stats.gamma(2.0, scale=5.0)
    assert within[0] == pytest.approx(1 - gamma.sf(22.0) / gamma.sf(12.0), rel=1e-9)


def test_a_wait_beyond_all_mass_gives_infinite_quantiles_and_zero_probability() -> None:
    interval = NextInterval(np.array([50.0]), np.array([0.2]))
    quantiles = interval.conditional_quantiles([0.1, 0.9], np.array([1e5]))
    assert np.all(np.isinf(quantiles))
    assert interval.conditional_probability(np.array([1e5]), np.array([1e5 + 30]))[0] == 0.0


def test_the_fitted_prior_recovers_simulated_population_parameters() -> None:
    rng = np.random.default_rng(4)
    customers, mean_log, between, within = 40_000, 3.0, 0.5, 0.3
    count = rng.integers(1, 9, customers)
    centre = rng.normal(mean_log, math.sqrt(between), customers)
    logs = centre[:, None] + math.sqrt(within) * rng.standard_normal((customers, 8))
    mask = np.arange(8)[None, :] < count[:, None]
    data = IntervalStatistics.from_sums(
        count, (logs * mask).sum(1) / count, (logs**2 * mask).sum(1)
    )
    prior = fit_prior(data, min_customers=30)
    assert prior is not None
    assert prior.mean_log == pytest.approx(mean_log, abs=0.02)
    assert prior.scale == pytest.approx(within, rel=0.1)
    # Spread of customers' means: sigma0^2 / kappa0 under the conjugate prior.
    assert prior.scale / prior.strength == pytest.approx(between, rel=0.15)


def test_a_prior_needs_enough_customers_with_an_interval() -> None:
    data = IntervalStatistics.from_sums(
        np.array([0, 1, 2]), np.array([0.0, 2.0, 2.5]), np.array([0.0, 4.0, 12.6])
    )
    assert fit_prior(data, min_customers=3) is None


def test_more_own_intervals_pull_the_posterior_further_from_the_prior() -> None:
    prior = IntervalPrior(mean_log=math.log(30), strength=2.0, dof=5.0, scale=0.3, customers=99)
    count = np.array([0, 1, 4, 16])
    data = IntervalStatistics.from_sums(count, np.full(4, math.log(10)), count * math.log(10) ** 2)
    fitted = posterior(data, [prior], np.zeros(4, dtype=np.int64))
    assert fitted.log_mean[0] == pytest.approx(math.log(30))
    assert np.all(np.diff(fitted.log_mean) < 0)
    assert fitted.log_mean[-1] == pytest.approx(math.log(10), abs=0.25)


# --- the store path -----------------------------------------------------------------


def test_every_customer_with_a_purchase_before_as_of_gets_one_row(
    interval_settings: Settings,
) -> None:
    rows = _predict(interval_settings)
    days = expected_purchase_days()
    assert set(rows) == set(days)  # not 'refunded' (no purchase), not 'late' (at as_of)
    for customer, row in rows.items():
        assert row["purchase_days"] == len(days[customer])
        assert row["last_purchase_on"] == days[customer][-1]


def test_same_day_orders_are_one_purchase_day_and_zero_amounts_still_count(
    interval_settings: Settings,
) -> None:
    rows = _predict(interval_settings)
    assert rows["sameday"]["purchase_days"] == 2
    assert rows["zero"]["purchase_days"] == 3


def test_a_single_purchase_customer_gets_the_population_window_after_as_of(
    interval_settings: Settings,
) -> None:
    once = _predict(interval_settings)["once"]
    assert once["next_order_prior"] == "population"
    assert AS_OF_DAY <= once["next_order_earliest"] < once["next_order_latest"]
    assert once["next_order_earliest"] <= once["next_order_expected_at"]
    assert 0.0 < once["next_order_probability_within_30d"] < 1.0


def test_a_regular_buyer_is_expected_about_one_own_cycle_after_the_last_purchase(
    interval_settings: Settings,
) -> None:
    rows = _predict(interval_settings)
    # a06 buys every 14 days (+-1) and last bought 5 days before as_of.
    regular = rows["a06"]
    gap = (regular["next_order_expected_at"] - regular["last_purchase_on"]).days
    assert 12 <= gap <= 16
    assert (regular["next_order_latest"] - regular["next_order_earliest"]).days < 14
    assert regular["next_order_probability_within_30d"] > 0.9


def test_an_overdue_customer_is_predicted_on_or_after_the_as_of_day(
    interval_settings: Settings,
) -> None:
    overdue = _predict(interval_settings)["overdue"]
    assert overdue["last_purchase_on"] == AS_OF_DAY - timedelta(days=60)
    assert overdue["next_order_earliest"] >= AS_OF_DAY


def test_the_prior_of_a_favourite_category_is_used_when_it_has_enough_customers(
    interval_settings: Settings,
) -> None:
    rows = _predict(interval_settings)
    assert rows["a00"]["next_order_prior"] == "category"  # 31 coffee buyers with intervals
    assert rows["few"]["next_order_prior"] == "population"  # 3 tea buyers only


def test_too_few_repeat_customers_leave_every_prediction_null(
    interval_settings: Settings,
) -> None:
    rows = _predict(interval_settings, config=NextOrderConfig(min_prior_customers=1_000))
    assert rows
    for row in rows.values():
        assert row["next_order_expected_at"] is None
        assert row["next_order_probability_within_30d"] is None
        assert row["last_purchase_on"] is not None


def test_an_as_of_before_any_order_gives_an_empty_table(interval_settings: Settings) -> None:
    assert _predict(interval_settings, as_of=datetime(2020, 1, 1, tzinfo=UTC)) == {}


def test_an_empty_store_gives_an_empty_table_with_the_documented_columns(
    settings: Settings,
) -> None:
    with open_backend(settings) as backend:
        table = predict_next_orders(backend, Warehouse(settings.warehouse).snapshot(), AS_OF)
    assert table.num_rows == 0
    assert tuple(table.column_names) == NEXT_ORDER_COLUMNS


def test_a_naive_as_of_is_refused(interval_settings: Settings) -> None:
    with pytest.raises(ValueError, match="time zone"):
        _predict(interval_settings, as_of=datetime(2025, 6, 1))


@pytest.mark.parametrize(
    "options",
    [{"coverage": 1.0}, {"coverage": 0.0}, {"max_days_ahead": 0}, {"min_prior_customers": 1}],
)
def test_a_config_out_of_range_is_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must"):
        NextOrderConfig(**options)


def test_a_last_purchase_after_the_as_of_day_is_refused() -> None:
    table = statistics_from_days({"c": [date(2025, 6, 5)]})
    with pytest.raises(ValueError, match="after the as-of day"):
        predict_from_statistics(table, AS_OF_DAY, SMALL)


# --- invariants on random data ------------------------------------------------------

_gaps = st.lists(st.integers(min_value=1, max_value=400), min_size=0, max_size=12)
_histories = st.lists(
    st.tuples(_gaps, st.integers(min_value=0, max_value=900)), min_size=1, max_size=30
)
_priors = st.builds(
    IntervalPrior,
    mean_log=st.floats(-1.0, 7.0),
    strength=st.floats(0.01, 500.0),
    dof=st.floats(0.5, 500.0),
    scale=st.floats(1e-4, 50.0),
    customers=st.just(100),
)


@settings(max_examples=150, deadline=None)
@given(histories=_histories, prior=_priors, coverage=st.floats(0.05, 0.99))
def test_random_histories_give_ordered_finite_windows_on_or_after_as_of(
    histories: list[tuple[list[int], int]], prior: IntervalPrior, coverage: float
) -> None:
    days: dict[str, list[date]] = {}
    for number, (gaps, quiet_days) in enumerate(histories):
        last = AS_OF_DAY - timedelta(days=quiet_days)
        purchase_days = [last]
        for gap in gaps:
            purchase_days.append(purchase_days[-1] - timedelta(days=gap))
        days[f"c{number}"] = purchase_days
    config = NextOrderConfig(coverage=coverage, min_prior_customers=2)
    table = predict_from_statistics(
        statistics_from_days(days), AS_OF_DAY, config, NextOrderPriors(prior)
    )
    latest_allowed = AS_OF_DAY + timedelta(days=config.max_days_ahead)
    for row in table.to_pylist():
        earliest, expected, latest = (
            row["next_order_earliest"],
            row["next_order_expected_at"],
            row["next_order_latest"],
        )
        assert AS_OF_DAY <= earliest <= expected <= latest <= latest_allowed
        assert earliest > row["last_purchase_on"]
        probability = row["next_order_probability_within_30d"]
        assert math.isfinite(probability) and 0.0 <= probability <= 1.0


@settings(max_examples=40, deadline=None)
@given(histories=_histories)
def test_priors_fitted_on_random_histories_give_no_nan(
    histories: list[tuple[list[int], int]],
) -> None:
    days = {
        f"c{number}": [
            AS_OF_DAY - timedelta(days=quiet + sum(gaps[:k])) for k in range(len(gaps) + 1)
        ]
        for number, (gaps, quiet) in enumerate(histories)
    }
    table = predict_from_statistics(
        statistics_from_days(days), AS_OF_DAY, NextOrderConfig(min_prior_customers=2)
    )
    probabilities = table.column("next_order_probability_within_30d")
    assert table.num_rows == len(days)
    if probabilities.null_count == 0:
        values = np.asarray(probabilities.to_numpy(), dtype=np.float64)
        assert np.all(np.isfinite(values))
    else:  # no prior: every prediction null, none NaN
        assert probabilities.null_count == table.num_rows


# --- the backtest -------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return demo_intervals(tmp_path_factory).settings


@pytest.mark.parametrize("cutoff", [date(2025, 6, 1), date(2025, 10, 1)])
def test_on_the_demo_the_model_beats_both_baselines_with_sensible_coverage(
    demo_settings: Settings, cutoff: date
) -> None:
    snapshot = Warehouse(demo_settings.warehouse).snapshot()
    as_of = datetime.combine(cutoff, datetime.min.time(), tzinfo=UTC)
    with open_backend(demo_settings) as backend:
        result = backtest_next_orders(backend, snapshot, as_of, 60, timezone=DEMO_TIMEZONE)
    assert result.repeat_customers > 300 and result.first_time_customers > 50
    assert result.model_mae_days is not None
    for baseline in (
        result.last_interval_mae_days,
        result.last_interval_clipped_mae_days,
        result.simple_interval_mae_days,
        result.simple_interval_clipped_mae_days,
    ):
        assert baseline is not None and result.model_mae_days < baseline
    assert result.first_time_model_mae_days is not None
    assert result.first_time_simple_interval_mae_days is not None
    assert result.first_time_model_mae_days < result.first_time_simple_interval_mae_days
    assert result.coverage is not None and 0.7 <= result.coverage <= 0.95


def test_demo_predictions_are_finite_ordered_and_on_or_after_as_of(
    demo_settings: Settings,
) -> None:
    as_of = datetime(2025, 10, 1, tzinfo=UTC)
    with open_backend(demo_settings) as backend:
        table = predict_next_orders(
            backend, Warehouse(demo_settings.warehouse).snapshot(), as_of, timezone=DEMO_TIMEZONE
        )
    assert table.num_rows > 1000
    assert all(table.column(name).null_count == 0 for name in NEXT_ORDER_COLUMNS)
    probability = np.asarray(table.column("next_order_probability_within_30d").to_numpy())
    assert np.all(np.isfinite(probability)) and np.all((probability >= 0) & (probability <= 1))
    day = pa.scalar(date(2025, 10, 1), pa.date32())
    earliest, expected, latest = (
        table.column(name)
        for name in ("next_order_earliest", "next_order_expected_at", "next_order_latest")
    )
    assert pa.compute.all(pa.compute.greater_equal(earliest, day)).as_py()
    assert pa.compute.all(pa.compute.less_equal(earliest, expected)).as_py()
    assert pa.compute.all(pa.compute.less_equal(expected, latest)).as_py()


def test_a_backtest_on_an_empty_store_scores_nobody(settings: Settings) -> None:
    with open_backend(settings) as backend:
        result = backtest_next_orders(backend, Warehouse(settings.warehouse).snapshot(), AS_OF, 30)
    assert (result.repeat_customers, result.first_time_customers) == (0, 0)
    assert result.model_mae_days is None and result.coverage is None


def test_a_backtest_needs_a_positive_horizon(tmp_path: Path) -> None:
    settings_ = Settings(home=tmp_path / "home")
    with open_backend(settings_) as backend, pytest.raises(ValueError, match="horizon_days"):
        backtest_next_orders(backend, Warehouse(settings_.warehouse).snapshot(), AS_OF, 0)


def test_statistics_of_one_purchase_day_carry_no_intervals() -> None:
    table = statistics_from_days({"c": [date(2025, 5, 1), date(2025, 5, 1)]})
    assert table.column("interval_count").to_pylist() == [0]
    predicted = predict_from_statistics(
        table, AS_OF_DAY, SMALL, NextOrderPriors(IntervalPrior(3.0, 1.0, 5.0, 0.5, 50))
    )
    assert predicted.column("purchase_days").to_pylist() == [1]
    assert pa.compute.all(pa.compute.is_valid(predicted.column("next_order_expected_at"))).as_py()
