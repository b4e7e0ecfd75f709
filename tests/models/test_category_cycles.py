"""Category consumption cycles and replenishment windows, on hand-made gaps and on the demo."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perennial.config import Settings
from perennial.demo.catalog import CATEGORIES
from perennial.models import CategoryCycleConfig, CategoryCycles
from perennial.models.category_cycles import (
    CATEGORY_CYCLE_SCHEMA,
    REPLENISHMENT_SCHEMA,
    category_cycles,
    cycles_from_gap_counts,
)
from perennial.store.backends import open_backend
from perennial.store.warehouse import Warehouse
from tests.models.intervals_fixture import (
    AS_OF,
    AS_OF_DAY,
    DEMO_TIMEZONE,
    build_interval_store,
    demo_intervals,
    expected_category_gaps,
)


@pytest.fixture(scope="module")
def cycle_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    home = tmp_path_factory.mktemp("category-cycles") / "home"
    settings_ = Settings(home=home)
    build_interval_store(settings_, home / "sources")
    return settings_


def _cycles(
    settings_: Settings,
    as_of: datetime = AS_OF,
    config: CategoryCycleConfig | None = None,
    timezone: str = "Asia/Shanghai",
) -> CategoryCycles:
    snapshot = Warehouse(settings_.warehouse).snapshot()
    with open_backend(settings_) as backend:
        result = category_cycles(backend, snapshot, as_of, timezone=timezone, config=config)
    assert result.categories.schema == CATEGORY_CYCLE_SCHEMA
    assert result.windows.schema == REPLENISHMENT_SCHEMA
    return result


def _by_category(result: CategoryCycles) -> dict[str, dict[str, Any]]:
    return {row["category"]: row for row in result.categories.to_pylist()}


def _windows(result: CategoryCycles) -> dict[tuple[str, str], dict[str, Any]]:
    return {(row["customer_id"], row["category"]): row for row in result.windows.to_pylist()}


@pytest.mark.parametrize("category", ["coffee", "dogfood"])
def test_a_cycle_is_the_median_and_quartiles_of_the_within_customer_gaps(
    cycle_settings: Settings, category: str
) -> None:
    gaps = [gap for found in expected_category_gaps(category).values() for gap in found]
    row = _by_category(_cycles(cycle_settings))[category]
    assert row["repeat_pairs"] == len(gaps)
    assert row["no_cycle_reason"] is None
    p25, median, p75 = np.percentile(gaps, [25, 50, 75])
    assert (row["cycle_days_p25"], row["cycle_days_median"], row["cycle_days_p75"]) == (
        pytest.approx(p25),
        pytest.approx(median),
        pytest.approx(p75),
    )
    customers = expected_category_gaps(category)
    assert row["buyers"] == len(customers)
    assert row["repeat_customers"] == sum(1 for found in customers.values() if found)


def test_a_category_bought_once_ever_has_no_cycle_and_says_why(cycle_settings: Settings) -> None:
    caviar = _by_category(_cycles(cycle_settings))["caviar"]
    assert (caviar["buyers"], caviar["repeat_pairs"]) == (1, 0)
    assert caviar["cycle_days_median"] is None and caviar["cycle_days_p75"] is None
    assert caviar["no_cycle_reason"] == "no customer bought it on two different days"


def test_a_category_with_too_few_repeat_pairs_has_no_cycle_and_says_how_many(
    cycle_settings: Settings,
) -> None:
    tea = _by_category(_cycles(cycle_settings))["tea"]
    # few: 3 days (2 pairs); sameday: 05-10 and twice on 05-20 (1 pair); refunded
    # and late orders do not count.
    assert (tea["buyers"], tea["repeat_pairs"]) == (2, 3)
    assert tea["cycle_days_median"] is None
    assert tea["no_cycle_reason"] == "only 3 repeat pairs; a cycle needs at least 30"
    lowered = _by_category(_cycles(cycle_settings, config=CategoryCycleConfig(min_repeat_pairs=3)))
    assert lowered["tea"]["cycle_days_median"] == pytest.approx(
        float(np.median([19, 19, 10]))  # few: 04-01, 04-20, 05-09; sameday: 10 days
    )


def test_same_day_lines_are_one_purchase_day(cycle_settings: Settings) -> None:
    windows = _windows(_cycles(cycle_settings))
    assert windows[("sameday", "tea")]["purchase_days"] == 2
    assert windows[("sameday", "tea")]["last_purchased_on"] == AS_OF_DAY - timedelta(days=12)


def test_a_customer_without_own_repeats_gets_the_category_cycle(cycle_settings: Settings) -> None:
    result = _cycles(cycle_settings)
    dogfood = _by_category(result)["dogfood"]["cycle_days_median"]
    once = _windows(result)[("once", "dogfood")]
    assert (once["cycle_source"], once["cycle_days"]) == ("category", dogfood)
    opens = once["last_purchased_on"] + timedelta(days=round(dogfood))
    assert once["window_opens_on"] == opens
    assert once["days_to_window"] == (opens - AS_OF_DAY).days


def test_a_category_without_a_cycle_gives_no_window(cycle_settings: Settings) -> None:
    windows = _windows(_cycles(cycle_settings))
    for key in (("once", "caviar"), ("few", "tea")):
        row = windows[key]
        assert row["cycle_days"] is None and row["cycle_source"] is None
        assert row["window_opens_on"] is None and row["days_to_window"] is None


def test_a_repeat_buyer_gets_their_own_cycle_shrunk_toward_the_category(
    cycle_settings: Settings,
) -> None:
    result = _cycles(cycle_settings)
    category_median = _by_category(result)["coffee"]["cycle_days_median"]
    own_gaps = expected_category_gaps("coffee")["a06"]  # every 14 days (+-1)
    row = _windows(result)[("a06", "coffee")]
    assert row["cycle_source"] == "own"
    own_median = float(np.median(own_gaps))
    assert abs(row["cycle_days"] - own_median) < abs(category_median - own_median)
    assert min(own_gaps) - 1 <= row["cycle_days"] <= max(own_gaps) + 1
    assert row["window_opens_on"] == row["last_purchased_on"] + timedelta(
        days=round(row["cycle_days"])
    )


def test_own_cycles_need_enough_intervals_and_enough_customers_for_a_prior(
    cycle_settings: Settings,
) -> None:
    three_intervals = ("b00", "dogfood")  # one of 20 dog food customers with intervals
    default = _windows(_cycles(cycle_settings))[three_intervals]
    assert default["cycle_source"] == "category"  # 20 < 30 customers: no prior to shrink to
    enough = CategoryCycleConfig(min_prior_customers=10)
    assert (
        _windows(_cycles(cycle_settings, config=enough))[three_intervals]["cycle_source"] == "own"
    )
    stricter = CategoryCycleConfig(min_prior_customers=10, min_own_intervals=4)
    assert _windows(_cycles(cycle_settings, config=stricter))[three_intervals]["cycle_source"] == (
        "category"
    )


def test_an_as_of_before_any_order_gives_two_empty_tables(cycle_settings: Settings) -> None:
    result = _cycles(cycle_settings, as_of=datetime(2020, 1, 1, tzinfo=UTC))
    assert (result.categories.num_rows, result.windows.num_rows) == (0, 0)


def test_an_empty_store_gives_two_empty_tables(settings: Settings) -> None:
    result = _cycles(settings)
    assert (result.categories.num_rows, result.windows.num_rows) == (0, 0)


@pytest.mark.parametrize("options", [{"min_repeat_pairs": 0}, {"min_prior_customers": 1}])
def test_a_config_out_of_range_is_refused(options: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="must be at least"):
        CategoryCycleConfig(**options)


@settings(max_examples=100, deadline=None)
@given(
    histogram=st.dictionaries(st.integers(1, 400), st.integers(1, 50), min_size=1, max_size=40),
    threshold=st.integers(1, 200),
)
def test_histogram_quantiles_equal_numpy_on_the_expanded_gaps(
    histogram: dict[int, int], threshold: int
) -> None:
    gap_counts = pa.table(
        {
            "category": ["x"] * len(histogram),
            "gap_days": [float(gap) for gap in histogram],
            "pairs": list(histogram.values()),
        }
    )
    statistics = pa.table({"category": ["x", "x"], "interval_count": [1, 0]})
    row = cycles_from_gap_counts(
        gap_counts, statistics, CategoryCycleConfig(min_repeat_pairs=threshold)
    ).to_pylist()[0]
    expanded = np.repeat(list(histogram), list(histogram.values()))
    assert row["repeat_pairs"] == expanded.size
    assert (row["buyers"], row["repeat_customers"]) == (2, 1)
    if expanded.size < threshold:
        assert row["cycle_days_median"] is None and row["no_cycle_reason"] is not None
    else:
        p25, median, p75 = np.percentile(expanded, [25, 50, 75])
        assert row["cycle_days_p25"] == pytest.approx(p25)
        assert row["cycle_days_median"] == pytest.approx(median)
        assert row["cycle_days_p75"] == pytest.approx(p75)
        assert row["cycle_days_p25"] <= row["cycle_days_median"] <= row["cycle_days_p75"]


def test_demo_cycles_rank_the_categories_as_their_true_consumption_cycles(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    demo = demo_intervals(tmp_path_factory)
    result = _cycles(demo.settings, datetime(2025, 10, 1, tzinfo=UTC), timezone=DEMO_TIMEZONE)
    measured = _by_category(result)
    rhythmic = sorted(
        (c for c in CATEGORIES if c.cycle_days is not None), key=lambda c: c.cycle_days or 0
    )
    medians = [measured[c.name]["cycle_days_median"] for c in rhythmic]
    assert medians == sorted(medians) and len(set(medians)) == len(medians)
    assert all(row["repeat_pairs"] >= 30 for row in measured.values())
    windows = result.windows
    due = pa.compute.sum(pa.compute.is_valid(windows.column("window_opens_on"))).as_py()
    assert due == windows.num_rows  # every demo category has a cycle
