"""The ``kpi`` key of a stage: which card of the lifecycle board the stage counts toward."""

from __future__ import annotations

import pytest

from perennial.errors import ConfigError
from perennial.lifecycle.presets import resolve_model_path
from perennial.lifecycle.stage_model import KPI_ROLES, load_stage_model, parse_stage_model


def _document(kpi: object = None, *, with_key: bool = True) -> dict[str, object]:
    first: dict[str, object] = {
        "key": "dormant",
        "label_en": "Dormant",
        "label_zh": "休眠期",
        "rule": "recency_days > 45",
    }
    if with_key:
        first["kpi"] = kpi
    rest = {"key": "active", "label_en": "Active", "label_zh": "活跃", "rule": "otherwise"}
    return {"name": "t", "stages": [first, rest]}


def test_the_seed000_preset_maps_its_five_stages_onto_the_four_cards() -> None:
    model = load_stage_model(resolve_model_path("seed000"))
    assert {stage.key: stage.kpi for stage in model.stages} == {
        "introduction": "new",
        "churned": "churned",
        "dormant": "dormant",
        "mature": "active",
        "growth": "active",
    }
    assert model.kpi_stages("active") == ("mature", "growth")


def test_the_seed002_preset_has_no_churned_stage_and_prospects_count_toward_no_card() -> None:
    model = load_stage_model(resolve_model_path("seed002"))
    assert {stage.key: stage.kpi for stage in model.stages} == {
        "potential": None,
        "new": "new",
        "at_risk": "dormant",
        "loyal": "active",
        "active": "active",
    }
    assert model.kpi_stages("churned") == ()


@pytest.mark.parametrize("role", KPI_ROLES)
def test_every_role_is_accepted_and_kept_through_a_round_trip(role: str) -> None:
    model = parse_stage_model(_document(role))
    assert model.stages[0].kpi == role
    assert parse_stage_model(model.model_dump(mode="json")).stages[0].kpi == role


def test_kpi_is_optional_and_may_be_null() -> None:
    assert parse_stage_model(_document(with_key=False)).stages[0].kpi is None
    assert parse_stage_model(_document(None)).stages[0].kpi is None


@pytest.mark.parametrize("value", ["growing", "Active", "", 1, ["active"]])
def test_an_unknown_kpi_is_a_config_error_naming_the_stage_and_the_key(value: object) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_stage_model(_document(value), "stages.yaml")
    assert caught.value.key_path == "stages[0] (dormant).kpi"
    assert "'new', 'active', 'dormant' or 'churned'" in caught.value.reason
    assert str(caught.value).startswith("stages.yaml: stages[0] (dormant).kpi: ")
