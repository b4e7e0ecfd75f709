"""``perennial journeys validate`` on the shipped examples and on broken files."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from perennial.cli.app import app
from perennial.errors import ExitCode

EXAMPLES = Path(__file__).parents[2] / "examples" / "journeys"


def _run(*arguments: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(arguments), env={"COLUMNS": "250"})
    return result.exit_code, result.output


def test_the_examples_folder_is_valid() -> None:
    code, output = _run("journeys", "validate", str(EXAMPLES))
    assert code == 0, output
    assert output.count("valid") == len(list(EXAMPLES.glob("*.yaml")))
    assert "dormant-win-back" in output and "stage_change (to=dormant)" in output


def test_a_broken_file_prints_every_problem_and_exits_with_the_config_code(
    tmp_path: Path,
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        "journey: broken\n"
        "trigger: {type: event, event: login}\n"
        "start: hello\n"
        "steps:\n"
        "  hello: {type: wait, duration: 7x, next: done}\n"
        "  done: {type: exit}\n"
        "  lonely: {type: tag, add: x, next: nowhere}\n",
        encoding="utf-8",
    )
    good = EXAMPLES / "high-value-callback.yaml"
    code, output = _run("journeys", "validate", str(good), str(broken))
    assert code == int(ExitCode.CONFIG)
    assert "1 problem" in output
    assert "steps.hello.duration: '7x' is not a duration" in output
    assert "high-value-callback" in output and "valid" in output


def test_no_files_is_a_usage_error(tmp_path: Path) -> None:
    code, output = _run("journeys", "validate", str(tmp_path))
    assert code == int(ExitCode.USAGE)
    assert "no journey files found" in output
