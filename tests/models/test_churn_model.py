"""The churn classifier: better than the simple rules out of time, calibrated, and honest
about data it cannot learn from."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.calibration import calibration_curve as sklearn_calibration_curve
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import roc_auc_score

from perennial.config import Settings
from perennial.features.snapshot import FEATURE_NAMES
from perennial.models.churn_config import ChurnConfig, parse_churn_config
from perennial.models.churn_labels import (
    ExtraFeaturesError,
    InsufficientDataError,
    labelled_rows,
)
from perennial.models.churn_model import (
    CALIBRATION_BINS,
    CHURN_FEATURES,
    CLIP,
    Calibrator,
    ChurnModel,
    calibration_curve,
    churn_metrics,
    fit_calibrator,
    train_churn_model,
)
from perennial.models.churn_scoring import SCORE_SCHEMA, score_customers
from perennial.store.backends import open_backend
from perennial.store.warehouse import Warehouse
from tests.features.fixture_store import ingest_rows
from tests.models.demo_store import churn_demo, trained_demo_model

SMALL = parse_churn_config(
    {
        "label": {"horizon_days": 30},
        "training": {"train_cutoffs": 3, "step_days": 15, "min_labelled": 20, "min_per_class": 5},
        "model": {"min_data_in_leaf": 5},
    }
)
"""A config small stores can satisfy: 30-day horizon, low minimums."""


@pytest.fixture(scope="module")
def demo_model(tmp_path_factory: pytest.TempPathFactory) -> ChurnModel:
    return trained_demo_model(tmp_path_factory)


def test_the_model_beats_the_recency_and_own_rhythm_rules_out_of_time(
    demo_model: ChurnModel,
) -> None:
    metrics = demo_model.metadata["metrics"]

    assert metrics["rows"] > 500
    assert metrics["auc"] > metrics["baseline_recency_auc"] + 0.02
    assert metrics["auc"] > metrics["baseline_rhythm_auc"] + 0.02
    assert metrics["lift_top_decile"] > 1.2
    # Better than always saying the base rate (whose Brier score is p(1 - p)).
    assert metrics["brier"] < 0.8 * metrics["base_rate"] * (1 - metrics["base_rate"])


def test_its_scores_find_the_customers_the_demo_says_had_already_left(
    demo_model: ChurnModel, tmp_path_factory: pytest.TempPathFactory
) -> None:
    demo = churn_demo(tmp_path_factory)
    cutoff = datetime.fromisoformat(demo_model.metadata["cutoffs"]["validation"])
    with open_backend(demo.settings) as backend:
        snapshot = Warehouse(demo.settings.warehouse).snapshot()
        rows = labelled_rows(backend, snapshot, cutoff, demo_model.config)
    truth = demo.ground_truth()
    churned_at = dict(
        zip(truth["customer_id"].to_pylist(), truth["churned_at"].to_pylist(), strict=True)
    )
    gone = np.array(
        [
            churned_at[c] is not None and churned_at[c] <= cutoff
            for c in rows["customer_id"].to_pylist()
        ]
    )

    model_auc = roc_auc_score(gone, demo_model.predict_proba(rows))
    recency_auc = roc_auc_score(gone, rows["recency_days"].to_numpy())

    assert 0.2 < gone.mean() < 0.8
    assert model_auc > recency_auc + 0.02


def test_calibrated_probabilities_match_the_observed_churn_rate_out_of_time(
    demo_model: ChurnModel, tmp_path_factory: pytest.TempPathFactory
) -> None:
    demo = churn_demo(tmp_path_factory)
    cutoff = datetime.fromisoformat(demo_model.metadata["cutoffs"]["validation"])
    with open_backend(demo.settings) as backend:
        snapshot = Warehouse(demo.settings.warehouse).snapshot()
        rows = labelled_rows(backend, snapshot, cutoff, demo_model.config)
    probability = demo_model.predict_proba(rows)
    churned = rows["churned"].to_numpy(zero_copy_only=False)

    assert abs(probability.mean() - churned.mean()) < 0.05
    high, low = probability >= 0.7, probability < 0.3
    assert churned[high].mean() > 0.7 > 0.3 > churned[low].mean()
    metrics = churn_metrics(probability, rows)
    assert metrics.auc == pytest.approx(demo_model.metadata["metrics"]["auc"])


def test_the_metadata_records_features_cutoffs_and_data_checks(demo_model: ChurnModel) -> None:
    metadata = demo_model.metadata

    assert len(CHURN_FEATURES) >= 12
    assert metadata["features"] == list(CHURN_FEATURES) == list(demo_model.features)
    assert set(demo_model.features) - {"recency_over_rhythm"} <= set(FEATURE_NAMES)
    cutoffs = metadata["cutoffs"]
    assert len(cutoffs["training"]) == 6
    horizon = timedelta(days=90)
    last_training = datetime.fromisoformat(cutoffs["training"][-1])
    calibration = datetime.fromisoformat(cutoffs["calibration"])
    validation = datetime.fromisoformat(cutoffs["validation"])
    assert last_training + horizon <= calibration and calibration + horizon <= validation
    checks = metadata["checks"]
    assert [c["rows"] for c in checks["per_cutoff"]][-1] == metadata["metrics"]["rows"]
    assert checks["missing_share"]["recency_days"] == 0.0  # every row has ordered
    assert 0 < checks["missing_share"]["days_since_last_login"] < 1
    assert metadata["calibration"] in ("isotonic", "sigmoid")
    assert set(metadata["references"]) <= set(demo_model.features)


def test_missing_feature_values_still_give_finite_probabilities(demo_model: ChurnModel) -> None:
    nulls = {name: pa.nulls(3, pa.float64()) for name in FEATURE_NAMES if name != "customer_id"}
    rows = pa.table({"customer_id": ["a", "b", "c"], **nulls})

    probability = demo_model.predict_proba(rows)

    assert np.all(np.isfinite(probability))
    assert np.all((probability >= CLIP) & (probability <= 1 - CLIP))


def test_scores_carry_band_percentile_and_reasons_for_the_population(
    demo_model: ChurnModel, tmp_path_factory: pytest.TempPathFactory
) -> None:
    demo = churn_demo(tmp_path_factory)
    as_of = datetime(2025, 12, 31, tzinfo=UTC)
    with open_backend(demo.settings) as backend:
        snapshot = Warehouse(demo.settings.warehouse).snapshot()
        scores = score_customers(backend, snapshot, demo_model, as_of, version="churn-0001")

    assert scores.schema.equals(SCORE_SCHEMA)
    assert scores.num_rows > 500
    probability = scores["churn_probability"].to_numpy()
    bands = demo_model.config.risk_bands
    assert scores["churn_risk_band"].to_pylist() == [bands.band(p) for p in probability]
    order = np.argsort(probability, kind="stable")
    assert np.all(np.diff(scores["churn_percentile"].to_numpy()[order]) >= 0)
    assert pc.max(scores["churn_percentile"]).as_py() == 100.0
    counts = pc.list_value_length(scores["churn_reasons_en"]).to_pylist()
    assert max(counts) == 3
    assert counts == pc.list_value_length(scores["churn_reasons_zh"]).to_pylist()
    assert set(scores["churn_model_version"].to_pylist()) == {"churn-0001"}


# --- small stores built in code: too little data, one class only, the extra-feature hook ---

END = date(2025, 12, 31)


def _store(tmp_path: Path, customers: int, stop: list[date | None]) -> Settings:
    """``customers`` who buy every 5 days from 2025-01-01 until their ``stop`` (None: the end);
    a page view on the last day marks the data's end."""
    orders = []
    for index in range(customers):
        last = stop[index % len(stop)] or END
        day = date(2025, 1, 1) + timedelta(days=index % 5)
        while day <= last:
            placed = f"{day.isoformat()}T03:00:00Z"
            orders.append((f"O{index}-{day}", f"C{index:03d}", placed, "20.00", "paid", ""))
            day += timedelta(days=5)
    settings = Settings(home=tmp_path / "home")
    ingest_rows(settings, tmp_path, "orders", orders)
    event = ("end", "C000", None, "page_view", f"{END.isoformat()}T20:00:00Z", None)
    ingest_rows(settings, tmp_path, "events", [event])
    return settings


def _train(settings: Settings, config: ChurnConfig = SMALL, **options: object) -> ChurnModel:
    with open_backend(settings) as backend:
        snapshot = Warehouse(settings.warehouse).snapshot()
        return train_churn_model(backend, snapshot, config, **options)  # type: ignore[arg-type]


STAGGERED = [None, date(2025, 6, 15), date(2025, 8, 1), date(2025, 9, 10), date(2025, 10, 20),
             date(2025, 11, 25), None, date(2025, 7, 10)]  # fmt: skip


def test_too_few_labelled_customers_are_refused_with_the_numbers(tmp_path: Path) -> None:
    settings = _store(tmp_path, 6, STAGGERED)

    with pytest.raises(InsufficientDataError) as raised:
        _train(settings, ChurnConfig(label=SMALL.label, training=SMALL.training.model_copy(
            update={"min_labelled": 200})))  # fmt: skip

    message = str(raised.value)
    assert (
        "the 3 training cut-offs (2025-09-02 .. 2025-10-02) hold 18 labelled customers" in message
    )
    assert "needed at least 200 with 5 churned and 5 retained" in message


def test_an_empty_store_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InsufficientDataError, match="holds no orders or events"):
        _train(Settings(home=tmp_path / "home"))


def test_a_store_where_everyone_churned_in_every_window_is_refused(tmp_path: Path) -> None:
    settings = _store(tmp_path, 40, [date(2025, 3, 1)])

    with pytest.raises(InsufficientDataError, match=r"\(120 churned, 0 retained\)"):
        _train(settings)


def test_a_store_where_nobody_churned_is_refused(tmp_path: Path) -> None:
    settings = _store(tmp_path, 40, [None])

    with pytest.raises(InsufficientDataError, match=r"\(0 churned, 120 retained\)"):
        _train(settings)


def test_extra_features_join_the_model_and_scoring_needs_them_too(tmp_path: Path) -> None:
    settings = _store(tmp_path, 48, STAGGERED)
    one_cutoff = SMALL.model_copy(
        update={"training": SMALL.training.model_copy(update={"train_cutoffs": 1})}
    )

    def lucky_number(cutoff: datetime) -> pa.Table:
        ids = [f"C{index:03d}" for index in range(48)]
        return pa.table({"customer_id": ids, "lucky_number": [float(i % 7) for i in range(48)]})

    extended = _train(settings, one_cutoff, extra_features=lucky_number)

    assert extended.features == (*CHURN_FEATURES, "lucky_number")
    assert extended.metadata["extra_features"] == ["lucky_number"]
    as_of = datetime(2025, 12, 1, tzinfo=UTC)
    with open_backend(settings) as backend:
        snapshot = Warehouse(settings.warehouse).snapshot()
        scored = score_customers(backend, snapshot, extended, as_of, extra_features=lucky_number)
        with pytest.raises(ExtraFeaturesError, match="lucky_number"):
            score_customers(backend, snapshot, extended, as_of)
    assert scored.num_rows == 48


def test_isotonic_calibration_is_scikit_learns_fit_kept_as_numbers() -> None:
    rng = np.random.default_rng(3)
    raw = rng.random(2000)
    churned = rng.random(2000) < raw**2

    calibrator = fit_calibrator(raw, churned, "auto")
    reference = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(raw, churned)
    probe = np.linspace(-0.5, 1.5, 101)

    assert calibrator.method == "isotonic"
    expected = np.clip(reference.predict(probe), CLIP, 1 - CLIP)
    np.testing.assert_allclose(calibrator.apply(probe), expected, atol=1e-12)
    assert Calibrator.from_json(calibrator.to_json()) == calibrator


def test_sigmoid_calibration_serves_small_calibration_sets_and_stays_monotone() -> None:
    rng = np.random.default_rng(4)
    raw = rng.random(300)
    churned = rng.random(300) < 0.2 + 0.6 * raw

    calibrator = fit_calibrator(raw, churned, "auto")
    calibrated = calibrator.apply(np.sort(raw))

    assert calibrator.method == "sigmoid"
    assert np.all(np.diff(calibrated) >= 0)
    assert abs(calibrated.mean() - churned.mean()) < 0.1
    assert Calibrator.from_json(calibrator.to_json()) == calibrator


# --- the validation calibration curve stored with the model ---


def test_the_metadata_holds_the_validation_calibration_curve_scikit_learn_would_draw(
    demo_model: ChurnModel, tmp_path_factory: pytest.TempPathFactory
) -> None:
    demo = churn_demo(tmp_path_factory)
    cutoff = datetime.fromisoformat(demo_model.metadata["cutoffs"]["validation"])
    with open_backend(demo.settings) as backend:
        snapshot = Warehouse(demo.settings.warehouse).snapshot()
        rows = labelled_rows(backend, snapshot, cutoff, demo_model.config)
    probability = demo_model.predict_proba(rows)
    churned = rows["churned"].to_numpy(zero_copy_only=False)
    observed, predicted = sklearn_calibration_curve(churned, probability, n_bins=10)

    curve = demo_model.metadata["calibration_curve"]

    assert 3 <= len(curve) <= CALIBRATION_BINS
    np.testing.assert_allclose([b["mean_predicted"] for b in curve], predicted, rtol=1e-12)
    np.testing.assert_allclose([b["observed_rate"] for b in curve], observed, rtol=1e-12)
    assert sum(b["count"] for b in curve) == demo_model.metadata["metrics"]["rows"]
    for entry in curve:
        assert entry["lower"] <= entry["mean_predicted"] <= entry["upper"]
    # Calibrated where most customers are: the fullest bin's rate is near its prediction.
    fullest = max(curve, key=lambda b: b["count"])
    assert abs(fullest["observed_rate"] - fullest["mean_predicted"]) < 0.1


@given(
    probability=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=200),
    seed=st.integers(0, 2**16),
)
def test_the_calibration_curve_counts_every_row_once_in_sklearns_bins(
    probability: list[float], seed: int
) -> None:
    scores = np.array(probability)
    churned = np.random.default_rng(seed).random(scores.shape[0]) < scores

    curve = calibration_curve(scores, churned)

    assert sum(b["count"] for b in curve) == scores.shape[0]
    assert [b["lower"] for b in curve] == sorted({b["lower"] for b in curve})
    if 0 < churned.sum() < churned.shape[0]:
        observed, predicted = sklearn_calibration_curve(churned, scores, n_bins=10)
        np.testing.assert_allclose([b["mean_predicted"] for b in curve], predicted)
        np.testing.assert_allclose([b["observed_rate"] for b in curve], observed)


def test_a_probability_on_a_bin_edge_belongs_to_the_lower_bin() -> None:
    curve = calibration_curve(np.array([0.0, 0.1, 0.1000001, 1.0]), np.array([1, 0, 1, 1]) == 1)

    assert [(b["lower"], b["count"]) for b in curve] == [(0.0, 2), (0.1, 1), (0.9, 1)]
    assert curve[0]["observed_rate"] == 0.5 and curve[0]["mean_predicted"] == 0.05


@pytest.mark.parametrize(
    ("probability", "churned", "message"),
    [
        ([0.2, float("nan")], [True, False], "finite and in"),
        ([0.2, 1.5], [True, False], "finite and in"),
        ([0.2, 0.3], [True], "2 probabilities for 1 outcomes"),
    ],
)
def test_bad_input_to_the_calibration_curve_is_refused_with_the_reason(
    probability: list[float], churned: list[bool], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        calibration_curve(np.array(probability), np.array(churned))
