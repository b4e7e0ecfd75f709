"""``perennial journeys validate`` on the shipped examples and on broken files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from typer.testing import CliRunner

from perennial.cli.app import app
from perennial.config import Settings
from perennial.errors import ExitCode, PerennialError
from perennial.journeys.service import JourneyService
from tests.segments import conftest as segments_conftest
from tests.segments.conftest import CLOCK, SegmentStore

segment_store = segments_conftest.segment_store

EXAMPLES = Path(__file__).parents[2] / "examples" / "journeys"


def _run(*arguments: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(arguments), env={"COLUMNS": "250"})
    return result.exit_code, result.output


def test_the_examples_folder_is_valid() -> None:
    code, output = _run("journeys", "validate", str(EXAMPLES))
    assert code == 0, output
    assert output.count("valid") == len(list(EXAMPLES.glob("*.yaml")))
    assert "dormant-win-back" in output and "segment_enter (segment=dormant)" in output


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


def _store_cli(segment_store: SegmentStore, tmp_path: Path) -> Callable[..., tuple[int, str]]:
    """The CLI on the segments demo store at its pinned clock: (exit code, output)."""
    env = {
        "PERENNIAL_HOME": str(tmp_path / "home"),
        "PERENNIAL_WAREHOUSE_PATH": str(segment_store.warehouse),
        "PERENNIAL_CLOCK": CLOCK.isoformat(),
        "COLUMNS": "250",
    }

    def run(*arguments: str) -> tuple[int, str]:
        result = CliRunner().invoke(app, list(arguments), env=env)
        if isinstance(result.exception, PerennialError):
            return int(result.exception.exit_code), result.output + str(result.exception)
        return result.exit_code, result.output

    return run


def test_publish_pause_resume_archive_and_list(segment_store: SegmentStore, tmp_path: Path) -> None:
    run = _store_cli(segment_store, tmp_path)

    assert run("segments", "load", "examples/segments/presets.yaml")[0] == 0
    code, output = run("journeys", "publish", str(EXAMPLES / "high-value-callback.yaml"))
    assert (code, output.strip()) == (0, "published high-value-callback version 1: active")
    assert run("journeys", "pause", "high-value-callback") == (0, "high-value-callback: paused\n")
    code, output = run("journeys", "pause", "high-value-callback")
    assert code == int(ExitCode.CONFIG) and "it is paused" in output
    assert run("journeys", "resume", "high-value-callback")[0] == 0
    code, output = run("journeys", "publish", "high-value-callback")
    assert output.strip() == "published high-value-callback version 1: active"
    code, output = run("journeys", "list")
    assert "high-value-callback" in output and "active" in output and "by cli" in output
    assert run("journeys", "archive", "high-value-callback")[0] == 0
    assert "high-value-callback" not in run("journeys", "list")[1]
    assert "archived" in run("journeys", "list", "--archived")[1]
    code, output = run("journeys", "publish", "no-such-journey")
    assert code == int(ExitCode.INVALID_INPUT) and "no journey 'no-such-journey'" in output


def test_steps_and_runs_show_what_the_worker_did(
    segment_store: SegmentStore, tmp_path: Path
) -> None:
    run = _store_cli(segment_store, tmp_path)

    assert run("segments", "load", "examples/segments/presets.yaml")[0] == 0
    assert run("journeys", "publish", str(EXAMPLES / "high-value-callback.yaml"))[0] == 0
    assert run("worker", "--until-idle", "--poll", "0.01")[0] == 0
    settings = Settings(home=tmp_path / "home", clock=CLOCK, warehouse_path=segment_store.warehouse)
    service = JourneyService(settings)
    counts = service.steps("high-value-callback")
    runs = service.runs("high-value-callback", limit=1000)
    assert runs and {r.status for r in runs} == {"completed"}
    code, output = run("journeys", "steps", "high-value-callback")
    assert code == 0
    for step, count in counts.items():
        line = next(line for line in output.splitlines() if f" {step} " in line)
        assert f" {count.entered:,} " in line, (step, line)
    code, output = run(
        "journeys", "runs", "high-value-callback", "--status", "completed", "--limit", "2"
    )
    assert code == 0
    assert all(r.run_id in output for r in runs[:2])  # by run id, the first page
    assert not any(r.run_id in output for r in runs[2:])
    assert (len(runs) > 2) == ("more: --after" in output)
    code, output = run("journeys", "runs", "no-such-journey")
    assert code == int(ExitCode.INVALID_INPUT) and "no journey 'no-such-journey'" in output
