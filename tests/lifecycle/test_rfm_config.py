"""RFM configs: the shipped grid tiles every cell, and bad documents name their key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from perennial.errors import ConfigError
from perennial.lifecycle.rfm_config import (
    RfmConfig,
    default_rfm_config,
    load_rfm_config,
    parse_rfm_config,
)
from perennial.lifecycle.rfm_segments import (
    ALL_CELLS,
    DEFAULT_SEGMENTS,
    RfmSegment,
    check_segment_grid,
    fm_score,
)

EXAMPLE = Path(__file__).parents[2] / "examples" / "lifecycle" / "rfm.yaml"

SEGMENT_NAMES = [
    "Champions",
    "Loyal",
    "Potential loyalist",
    "New",
    "Promising",
    "Need attention",
    "About to sleep",
    "At risk",
    "Can't lose them",
    "Hibernating",
    "Lost",
]


def default_document() -> dict[str, Any]:
    document = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def config_error(document: Any) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_rfm_config(document, source="rfm.yaml")
    return caught.value


def test_the_default_grid_puts_each_of_the_125_score_combinations_in_exactly_one_segment() -> None:
    owners = {
        cell: [k for k, s in DEFAULT_SEGMENTS.items() if s.covers(*cell)] for cell in ALL_CELLS
    }

    assert len(owners) == 125
    assert all(len(keys) == 1 for keys in owners.values()), {
        cell: keys for cell, keys in owners.items() if len(keys) != 1
    }
    check_segment_grid(DEFAULT_SEGMENTS)


def test_the_default_grid_has_the_eleven_named_segments_each_with_customers_possible() -> None:
    assert [segment.label.en for segment in DEFAULT_SEGMENTS.values()] == SEGMENT_NAMES
    assert all(any(segment.cells()) for segment in DEFAULT_SEGMENTS.values())
    assert all(segment.label.zh for segment in DEFAULT_SEGMENTS.values())


def test_the_fm_score_is_the_mean_of_f_and_m_rounded_down() -> None:
    assert [fm_score(1, 1), fm_score(1, 2), fm_score(4, 5), fm_score(5, 5)] == [1, 1, 4, 5]


def test_the_example_file_is_the_default_config() -> None:
    assert load_rfm_config(EXAMPLE) == default_rfm_config()
    assert list(load_rfm_config(EXAMPLE).segments) == list(DEFAULT_SEGMENTS)


def test_an_empty_document_is_the_default_config(tmp_path: Path) -> None:
    empty = tmp_path / "rfm.yaml"
    empty.write_text("# nothing\n", encoding="utf-8")

    assert load_rfm_config(empty) == default_rfm_config()


def test_the_default_scores_r_and_m_by_quantile_and_f_by_order_counts() -> None:
    scores = default_rfm_config().scores

    assert (scores.r.is_quantile, scores.m.is_quantile) == (True, True)
    assert scores.f.thresholds == (1, 2, 3, 5)


def test_ranges_may_be_written_as_a_list_a_dash_or_one_score() -> None:
    segment = RfmSegment.model_validate(
        {"label": {"en": "x", "zh": "x"}, "r": "4-5", "fm": 3, "f": [2, 5]}
    )

    assert (segment.r, segment.fm, segment.f, segment.m) == ((4, 5), (3, 3), (2, 5), (1, 5))


def test_a_gap_in_the_grid_is_an_error_naming_the_segments_next_to_it() -> None:
    document = default_document()
    document["segments"]["loyal"]["fm"] = [5, 5]

    error = config_error(document)

    assert error.key_path == "segments"
    assert "no segment covers rfm 335, 344, 345, 353, 354 (r 3 fm 4)" in error.reason
    assert "next to at_risk, champions, loyal, need_attention" in error.reason
    assert str(error).startswith("rfm.yaml: segments: ")


def test_an_overlap_in_the_grid_is_an_error_naming_both_segments() -> None:
    document = default_document()
    document["segments"]["champions"]["r"] = [3, 5]

    error = config_error(document)

    assert error.key_path == "segments.loyal"
    assert "overlaps segments.champions on rfm 335, 344, 345, 353, 354, 355" in error.reason


def test_a_missing_segment_leaves_a_gap_named_by_its_neighbours() -> None:
    document = default_document()
    del document["segments"]["need_attention"]

    error = config_error(document)

    assert "315, 324, 325, 333, 334, 342 and 3 more (r 3 fm 3)" in error.reason
    assert "about_to_sleep" in error.reason and "loyal" in error.reason


@pytest.mark.parametrize(
    ("change", "key_path", "reason"),
    [
        ({"scores": {"r": [30, 7, 90, 180]}}, "scores.r", "strictly ascending"),
        ({"scores": {"r": [7, 30, 90]}}, "scores.r", "four ascending cut points, got 3"),
        ({"scores": {"f": [1, 2, "x", 5]}}, "scores.f.thresholds.2", "valid number"),
        ({"scores": {"m": [1, 2, 3, float("inf")]}}, "scores.m.thresholds.3", "finite number"),
        ({"scores": {"m": "quantiles"}}, "scores.m", "expected 'quantile'"),
        ({"scores": {"m": 100}}, "scores.m", "expected 'quantile' or four ascending cut points"),
        ({"scores": {"q": "quantile"}}, "scores.q", "Extra inputs"),
        ({"score": {}}, "score", "Extra inputs"),
        ({"segments": {"lost": {"label": {"en": "Lost"}}}}, "segments.lost.label.zh", "required"),
        (
            {"segments": {"all": {"label": {"en": "A", "zh": "A"}, "r": [0, 5]}}},
            "segments.all.r",
            "1 <= low <= high <= 5",
        ),
        (
            {"segments": {"all": {"label": {"en": "A", "zh": "A"}, "fm": [5, 4]}}},
            "segments.all.fm",
            "1 <= low <= high <= 5",
        ),
        (
            {"segments": {"All Customers": {"label": {"en": "A", "zh": "A"}}}},
            "segments.All Customers",
            "lower-case",
        ),
        (
            {
                "no_orders": {"key": "everyone", "label": {"en": "N", "zh": "N"}},
                "segments": {"everyone": {"label": {"en": "A", "zh": "A"}}},
            },
            "no_orders.key",
            "also a scored segment",
        ),
    ],
)
def test_a_bad_document_is_a_config_error_naming_the_key(
    change: dict[str, Any], key_path: str, reason: str
) -> None:
    error = config_error(change)

    assert error.key_path == key_path
    assert reason in error.reason


def test_a_single_segment_covering_everything_is_a_valid_grid() -> None:
    config = parse_rfm_config({"segments": {"all": {"label": {"en": "All", "zh": "全部"}}}})

    assert list(config.segments) == ["all"]


def test_a_config_file_that_is_missing_or_not_yaml_or_not_an_object_is_a_config_error(
    tmp_path: Path,
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("scores: [\n", encoding="utf-8")
    listed = tmp_path / "list.yaml"
    listed.write_text("- r\n", encoding="utf-8")

    for path, reason in [
        (tmp_path / "absent.yaml", "not found"),
        (broken, "not valid YAML"),
        (listed, "must be a YAML object"),
    ]:
        with pytest.raises(ConfigError, match=reason) as caught:
            load_rfm_config(path)
        assert caught.value.source == str(path)


def test_a_config_is_immutable_once_validated() -> None:
    config: RfmConfig = default_rfm_config()

    with pytest.raises(ValueError, match="frozen"):
        config.scores = config.scores  # type: ignore[misc]
