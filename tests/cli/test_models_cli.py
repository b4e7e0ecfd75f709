"""``perennial models``: train prints metrics and a version, list, promote, evaluate, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from perennial.cli.app import app
from perennial.errors import ConfigError, ExitCode
from perennial.models.churn_labels import InsufficientDataError
from perennial.models.registry import UnknownModelError
from tests.cli.test_app import _perennial
from tests.models.demo_store import churn_demo, trained_demo_model


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], str]:
    """A home of its own whose warehouse is the demo's, with one model trained by the CLI."""
    demo = churn_demo(tmp_path_factory)
    home = tmp_path_factory.mktemp("models-cli") / "home"
    env = {
        "PERENNIAL_HOME": str(home),
        "PERENNIAL_WAREHOUSE_PATH": str(demo.settings.warehouse),
        "COLUMNS": "200",
    }
    result = CliRunner().invoke(app, ["models", "train", "--as-of", "2025-12-31"], env=env)
    assert result.exit_code == 0, result.output
    return env, result.output


def test_train_prints_the_validation_metrics_and_the_new_version(
    trained: tuple[dict[str, str], str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    env, output = trained

    assert "churn-0001 (purchase): validated on cut-off 2025-10-02, horizon 90 d" in output
    for label in ("AUC", "PR-AUC", "Brier", "lift, top 10 %", "AUC, recency rule"):
        assert label in output
    assert "perennial models promote churn-0001" in output
    stored = Path(env["PERENNIAL_HOME"]) / "models" / "churn-0001" / "model.txt"
    # The CLI trains exactly what the library does with the default config: deterministic.
    model = trained_demo_model(tmp_path_factory)
    assert stored.read_text(encoding="utf-8") == model.booster.model_to_string()
    assert f"{model.metadata['metrics']['auc']:.3f}" in output


def test_list_shows_versions_and_promote_changes_the_status(
    trained: tuple[dict[str, str], str],
) -> None:
    env, _ = trained
    runner = CliRunner()

    before = runner.invoke(app, ["models", "list"], env=env)
    promoted = runner.invoke(app, ["models", "promote", "churn-0001"], env=env)
    after = runner.invoke(app, ["models", "list"], env=env)

    assert before.exit_code == 0, before.output
    assert "churn-0001" in before.output and "candidate" in before.output
    assert promoted.exit_code == 0, promoted.output
    assert "churn-0001 is now the promoted churn model" in promoted.output
    assert "promoted" in after.output and "candidate" not in after.output


def test_evaluate_measures_the_version_again_on_the_store_as_it_is(
    trained: tuple[dict[str, str], str],
) -> None:
    env, _ = trained

    result = CliRunner().invoke(app, ["models", "evaluate", "churn-0001"], env=env)

    assert result.exit_code == 0, result.output
    assert "at training (2025-10-02)" in result.output and "now (2025-10-02)" in result.output
    auc_line = next(line for line in result.output.splitlines() if "│ AUC " in line)
    at_training, now = auc_line.split("│")[2:4]
    assert at_training.strip() == now.strip()  # same data, same cut-off: same AUC


def test_list_skips_a_half_written_version_with_a_warning(
    trained: tuple[dict[str, str], str],
) -> None:
    env, _ = trained
    broken = Path(env["PERENNIAL_HOME"]) / "models" / "churn-0002"
    broken.mkdir()
    (broken / "model.txt").write_text("half", encoding="utf-8")
    try:
        result = CliRunner().invoke(app, ["models", "list"], env=env)
    finally:
        (broken / "model.txt").unlink()
        broken.rmdir()

    assert result.exit_code == 0, result.output
    assert "warning: skipped: churn-0002: no metadata.json" in result.output
    assert "churn-0001" in result.output


def test_promoting_an_unknown_version_fails_with_the_known_ones(
    trained: tuple[dict[str, str], str],
) -> None:
    env, _ = trained

    result = CliRunner().invoke(app, ["models", "promote", "churn-0042"], env=env)

    assert isinstance(result.exception, UnknownModelError)
    assert "no model version 'churn-0042' (known: churn-0001)" in str(result.exception)


def test_a_config_with_an_unknown_key_is_refused_before_training(tmp_path: Path) -> None:
    config = tmp_path / "churn.yaml"
    config.write_text("label:\n  horizon: 30\n", encoding="utf-8")
    env = {"PERENNIAL_HOME": str(tmp_path / "home")}

    result = CliRunner().invoke(app, ["models", "train", "--config", str(config)], env=env)

    assert isinstance(result.exception, ConfigError)
    assert result.exception.key_path == "label.horizon"


def test_training_on_an_empty_store_says_there_is_nothing_to_learn(tmp_path: Path) -> None:
    env = {"PERENNIAL_HOME": str(tmp_path / "home")}
    runner = CliRunner()

    listed = runner.invoke(app, ["models", "list"], env=env)
    result = runner.invoke(app, ["models", "train"], env=env)

    assert "no models yet" in listed.output
    assert isinstance(result.exception, InsufficientDataError)
    assert "holds no orders or events" in str(result.exception)


@pytest.mark.parametrize("command", ["train", "evaluate", "list", "promote"])
def test_every_models_command_has_help(command: str) -> None:
    result = CliRunner().invoke(app, ["models", command, "--help"])

    assert result.exit_code == 0
    assert "Usage" in result.output


@pytest.mark.integration
def test_the_entry_point_turns_an_unknown_version_into_a_message_and_exit_code(
    tmp_path: Path,
) -> None:
    completed = _perennial(tmp_path / "home", "models", "promote", "churn-0001")

    assert completed.returncode == ExitCode.INVALID_INPUT
    assert "no model version 'churn-0001' (known: none)" in completed.stderr
