"""Stages in life order with one colour each, whatever order the model evaluates them in."""

from __future__ import annotations

from perennial.lifecycle.flows import NEW, UNMATCHED
from perennial.lifecycle.presets import resolve_model_path
from perennial.lifecycle.stage_model import load_stage_model
from perennial.serving.board import StageInfo
from perennial.web.stage_display import StageStyles, stage_styles


def _styles(preset: str, language: str = "zh-CN") -> StageStyles:
    model = load_stage_model(resolve_model_path(preset))
    stages = [StageInfo(s.key, s.label_en, s.label_zh, s.kpi) for s in model.stages]
    return stage_styles(stages, language, new_label="新进入", unmatched_label="未匹配")


def test_seed000_is_shown_in_the_order_of_a_customers_life() -> None:
    styles = _styles("seed000")
    assert [s.label for s in styles.stages] == ["引入期", "成长期", "成熟期", "休眠期", "流失期"]


def test_seed002_puts_prospects_first_and_at_risk_last() -> None:
    styles = _styles("seed002", "en")
    assert [s.key for s in styles.stages] == ["potential", "new", "active", "loyal", "at_risk"]
    assert styles.label("loyal") == "Loyal"


def test_every_stage_has_its_own_colour_and_roles_share_a_hue() -> None:
    styles = _styles("seed000")
    colours = [s.colour for s in styles.stages]
    assert len(set(colours)) == len(colours)
    assert styles["churned"].colour.startswith("#c0")  # red family
    assert styles["growth"].colour != styles["mature"].colour


def test_flow_endpoints_and_unknown_keys_get_labels_and_sort_around_the_model() -> None:
    styles = _styles("seed000")
    assert styles.label(NEW) == "新进入"
    assert styles.label(UNMATCHED) == styles.label(None) == "未匹配"
    assert styles.label("retired") == "retired"
    ordered = styles.ordered(["retired", UNMATCHED, "churned", NEW, "introduction"])
    assert ordered[:3] == [NEW, "introduction", "churned"]
    assert set(ordered[3:]) == {"retired", UNMATCHED}
