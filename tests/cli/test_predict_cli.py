"""``perennial predict`` stores every customer's predictions; ``perennial profile`` shows them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from perennial.cli.app import app
from perennial.models.predictions import PREDICTIONS_SCHEMA, PREDICTIONS_TABLE
from perennial.models.registry import ModelRegistry, save_churn_model
from perennial.store.warehouse import Warehouse
from tests.models.demo_store import churn_demo, trained_demo_model


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A home with a promoted churn model and a private copy of the demo warehouse."""
    demo = churn_demo(tmp_path_factory)
    root = tmp_path_factory.mktemp("predict-cli")
    shutil.copytree(demo.settings.warehouse, root / "warehouse")
    registry = ModelRegistry(root / "home" / "models")
    registry.promote(save_churn_model(registry, trained_demo_model(tmp_path_factory)).version)
    return {
        "PERENNIAL_HOME": str(root / "home"),
        "PERENNIAL_WAREHOUSE_PATH": str(root / "warehouse"),
        "COLUMNS": "200",
    }


def _stored(env: dict[str, str]) -> list[dict[str, object]]:
    paths = Warehouse(Path(env["PERENNIAL_WAREHOUSE_PATH"])).snapshot().paths(PREDICTIONS_TABLE)
    return pq.read_table(paths, schema=PREDICTIONS_SCHEMA).to_pylist()


def test_predict_stores_predictions_and_prints_what_each_model_did(env: dict[str, str]) -> None:
    result = CliRunner().invoke(app, ["predict", "--as-of", "2025-12-01"], env=env)
    assert result.exit_code == 0, result.output
    rows = _stored(env)
    assert rows
    assert f"Predictions: {len(rows):,} customers" in result.output
    assert "churn_probability" in result.output and "perennial serving refresh" in result.output
    assert all(row["churn_model_version"] == "churn-0001" for row in rows)
    assert {str(row["as_of"])[:10] for row in rows} == {"2025-12-01"}


def test_profile_shows_the_stored_predictions_in_either_language(env: dict[str, str]) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["predict", "--as-of", "2025-12-01"], env=env).exit_code == 0
    row = next(r for r in _stored(env) if r["churn_reasons_zh"])
    customer = str(row["customer_id"])
    chinese = runner.invoke(app, ["profile", customer, "--as-of", "2025-12-01"], env=env)
    english = runner.invoke(
        app, ["profile", customer, "--as-of", "2025-12-01", "--lang", "en"], env=env
    )
    assert chinese.exit_code == 0, chinese.output
    assert "流失概率" in chinese.output
    assert f"{row['churn_probability']:.1%}" in chinese.output
    assert str(row["churn_reasons_zh"][0]) in chinese.output  # type: ignore[index]
    assert "Churn probability" in english.output
    assert str(row["next_order_expected_at"]) in english.output
