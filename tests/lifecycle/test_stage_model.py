"""Stage models: YAML validated whole, errors that name the stage and key, first match wins."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import ibis
import pytest

from perennial.errors import ConfigError
from perennial.lifecycle.rule_errors import MissingFeatureError
from perennial.lifecycle.rule_types import ValueKind
from perennial.lifecycle.rules import FEATURE_KINDS, KNOWN_FEATURES
from perennial.lifecycle.stage_model import (
    STAGE_COLUMNS,
    StageModel,
    assign_stage,
    load_stage_model,
    parse_stage_model,
)

PRESETS = Path(__file__).parents[2] / "examples" / "lifecycle"
AS_OF = datetime(2025, 6, 1, tzinfo=UTC)
_INTEGERS = {"frequency_orders", "frequency_days", "complaints_30d", "orders_30d"}
_TYPES = {
    ValueKind.NUMBER: "float64",
    ValueKind.TEXT: "string",
    ValueKind.TIMESTAMP: "timestamp('UTC')",
}
SCHEMA = {
    name: "int8"
    if name.startswith("rfm_") and kind is ValueKind.NUMBER
    else "int64"
    if name in _INTEGERS
    else _TYPES[kind]
    for name, kind in FEATURE_KINDS.items()
}


def prospect(customer_id: str, **features: Any) -> dict[str, Any]:
    """A customer who registered 40 days ago and never ordered: every order feature null."""
    row: dict[str, Any] = dict.fromkeys(KNOWN_FEATURES)
    row.update(customer_id=customer_id, as_of=AS_OF, tenure_days=40.0, frequency_orders=0)
    row.update(features)
    return row


def buyer(customer_id: str, **features: Any) -> dict[str, Any]:
    """A repeat buyer on a 20-day rhythm, last order 10 days ago, middling spend, no complaints."""
    defaults = {
        "first_order_at": AS_OF - timedelta(days=200),
        "last_order_at": AS_OF - timedelta(days=10),
        "recency_days": 10.0,
        "frequency_orders": 3,
        "own_median_interval_days": 20.0,
        "category_median_interval_days": 25.0,
        "population_median_interval_days": 30.0,
        "rfm_m": 3,
        "spend_30d": 100.0,
        "spend_prev_30d": 100.0,
        "complaints_30d": 0,
    }
    return prospect(customer_id, tenure_days=300.0, **{**defaults, **features})


def feature_table(*customers: dict[str, Any]) -> ibis.Table:
    columns = {name: [customer[name] for customer in customers] for name in KNOWN_FEATURES}
    return ibis.memtable(columns, schema=SCHEMA)


@pytest.fixture(scope="module")
def duckdb() -> Iterator[Any]:
    connection = ibis.duckdb.connect()
    yield connection
    connection.disconnect()


def stages_of(duckdb: Any, model: StageModel, *customers: dict[str, Any]) -> dict[str, Any]:
    staged = assign_stage(model, feature_table(*customers))
    rows = duckdb.to_pyarrow(staged.select("customer_id", *STAGE_COLUMNS)).to_pylist()
    return {row["customer_id"]: row["stage"] for row in rows}


def test_each_seed000_stage_goes_to_the_customer_built_for_it(duckdb: Any) -> None:
    model = load_stage_model(PRESETS / "seed000.yaml")
    customers = {
        "never_ordered": prospect("never_ordered"),
        "first_order_last_week": buyer(
            "first_order_last_week", frequency_orders=1, recency_days=7.0
        ),
        "silent_three_rhythms": buyer("silent_three_rhythms", recency_days=60.0),
        "silent_200_days_on_a_slow_rhythm": buyer(
            "silent_200_days_on_a_slow_rhythm", recency_days=200.0, own_median_interval_days=100.0
        ),
        "silent_45_days_when_the_norm_is_30": buyer(
            "silent_45_days_when_the_norm_is_30", recency_days=45.0, own_median_interval_days=30.0
        ),
        "one_order_long_ago_category_rhythm": buyer(
            "one_order_long_ago_category_rhythm",
            frequency_orders=1,
            recency_days=40.0,
            own_median_interval_days=None,
        ),
        "frequent_big_spender": buyer("frequent_big_spender", frequency_orders=8, rfm_m=5),
        "second_order_on_rhythm": buyer("second_order_on_rhythm", frequency_orders=2),
        "frequent_small_spender": buyer("frequent_small_spender", frequency_orders=8, rfm_m=2),
    }
    assert stages_of(duckdb, model, *customers.values()) == {
        "never_ordered": "introduction",
        "first_order_last_week": "introduction",
        "silent_three_rhythms": "churned",
        "silent_200_days_on_a_slow_rhythm": "churned",
        "silent_45_days_when_the_norm_is_30": "dormant",
        "one_order_long_ago_category_rhythm": "dormant",
        "frequent_big_spender": "mature",
        "second_order_on_rhythm": "growth",
        "frequent_small_spender": "growth",
    }


def test_seed000_dormancy_starts_at_exactly_one_and_a_half_rhythms(duckdb: Any) -> None:
    model = load_stage_model(PRESETS / "seed000.yaml")
    on_the_edge = [
        buyer(f"r{days}", recency_days=days, own_median_interval_days=30.0)
        for days in (44.99, 45.0, 89.99, 90.0)
    ]
    assert stages_of(duckdb, model, *on_the_edge) == {
        "r44.99": "growth",
        "r45.0": "dormant",
        "r89.99": "dormant",
        "r90.0": "churned",
    }


def test_each_seed002_stage_goes_to_the_customer_built_for_it(duckdb: Any) -> None:
    model = load_stage_model(PRESETS / "seed002.yaml")
    customers = [
        prospect("browsing_only"),
        buyer("first_order_yesterday", frequency_orders=1, recency_days=1.0),
        buyer(
            "silent_45_days_when_the_norm_is_30", recency_days=45.0, own_median_interval_days=30.0
        ),
        buyer(
            "spending_less_and_complaining", spend_30d=40.0, spend_prev_30d=400.0, complaints_30d=2
        ),
        buyer("spending_less_without_complaints", spend_30d=40.0, spend_prev_30d=400.0),
        buyer("loyal_but_gone_quiet", frequency_orders=9, rfm_m=5, recency_days=70.0),
        buyer("frequent_big_spender", frequency_orders=9, rfm_m=5),
        buyer("regular", frequency_orders=3),
    ]
    assert stages_of(duckdb, model, *customers) == {
        "browsing_only": "potential",
        "first_order_yesterday": "new",
        "silent_45_days_when_the_norm_is_30": "at_risk",
        "spending_less_and_complaining": "at_risk",
        "spending_less_without_complaints": "active",
        "loyal_but_gone_quiet": "at_risk",
        "frequent_big_spender": "loyal",
        "regular": "active",
    }


def _model(*rules: str, **extra: Any) -> dict[str, Any]:
    stages = [
        {"key": f"s{index}", "label_en": f"S{index}", "label_zh": f"阶段{index}", "rule": rule}
        for index, rule in enumerate(rules)
    ]
    return {"name": "test", "stages": stages, **extra}


def test_the_first_true_rule_wins_and_a_null_rule_counts_as_not_true(duckdb: Any) -> None:
    model = parse_stage_model(_model("recency_days > 100", "recency_days > 10", "otherwise"))
    customers = [
        buyer("both_true", recency_days=150.0),
        buyer("second_true", recency_days=50.0),
        buyer("null_recency", recency_days=None),
    ]
    staged = duckdb.to_pyarrow(
        assign_stage(model, feature_table(*customers)).select("customer_id", *STAGE_COLUMNS)
    ).to_pylist()
    assert staged == [
        {"customer_id": "both_true", "stage": "s0", "stage_rank": 0},
        {"customer_id": "second_true", "stage": "s1", "stage_rank": 1},
        {"customer_id": "null_recency", "stage": "s2", "stage_rank": 2},
    ]


def test_without_otherwise_a_customer_no_rule_matches_has_a_null_stage(duckdb: Any) -> None:
    model = parse_stage_model(_model("recency_days > 100", "recency_days > 10"))
    assert stages_of(duckdb, model, buyer("recent", recency_days=1.0)) == {"recent": None}


def test_assign_stage_adds_a_string_stage_and_an_int16_rank_after_the_features() -> None:
    model = load_stage_model(PRESETS / "seed002.yaml")
    schema = assign_stage(model, feature_table(buyer("c1"))).schema()
    assert list(schema)[-2:] == ["stage", "stage_rank"]
    assert schema["stage"].is_string() and schema["stage_rank"] == ibis.dtype("int16")


def test_a_rule_reading_a_column_the_table_lacks_names_the_column_and_the_stage() -> None:
    model = load_stage_model(PRESETS / "seed000.yaml")
    features = feature_table(buyer("c1")).drop("rfm_m")
    with pytest.raises(MissingFeatureError) as caught:
        assign_stage(model, features)
    assert str(caught.value) == (
        "stage model 'seed000', stages[3] (mature).rule: the feature table has no column 'rfm_m'; "
        "compute it before using the rule"
    )
    assert caught.value.features == ("rfm_m",)


def test_a_column_whose_type_does_not_fit_the_rule_is_a_config_error_naming_the_stage() -> None:
    model = load_stage_model(PRESETS / "seed000.yaml")
    features = feature_table(buyer("c1")).mutate(rfm_m=ibis.literal("5"))
    with pytest.raises(ConfigError) as caught:
        assign_stage(model, features)
    assert caught.value.key_path == "stages[3] (mature).rule"
    assert "'rfm_m' is text" in caught.value.reason


@pytest.mark.parametrize("preset", ["seed000.yaml", "seed002.yaml"])
def test_a_preset_loads_and_round_trips_through_its_json_form(preset: str) -> None:
    model = load_stage_model(PRESETS / preset)
    assert model.timezone == "Asia/Shanghai"
    assert model.stages[-1].rule.is_otherwise
    assert all(stage.label_zh and stage.description for stage in model.stages)
    again = parse_stage_model(model.model_dump(mode="json"))
    assert again == model
    assert model.stage(model.keys[1]) is model.stages[1]
    with pytest.raises(KeyError, match="has no stage 'vip'"):
        model.stage("vip")


GOOD_STAGE = "{key: active, label_en: Active, label_zh: 活跃, rule: otherwise}"


def _yaml(*stages: str, header: str = "name: test\n") -> str:
    return header + "stages:\n" + "".join(f"  - {stage}\n" for stage in stages)


def _stage(key: str, rule: str, **extra: str) -> str:
    fields = {"key": key, "label_en": key.title(), "label_zh": "阶段", "rule": rule, **extra}
    return "{" + ", ".join(f"{name}: {value}" for name, value in fields.items()) + "}"


@pytest.mark.parametrize(
    ("document", "key_path", "reason"),
    [
        (
            _yaml(
                _stage("new", "'first_order_at is null'"),
                _stage("growth", "'frequency_orders >= 2'"),
                _stage("mature", "'frequency_orders >= 5'"),
                _stage("dormant", "'recency_day > 45'"),
                GOOD_STAGE,
            ),
            "stages[3] (dormant).rule",
            "unknown feature 'recency_day' (did you mean 'recency_days'?) at column 1\n"
            "    recency_day > 45\n"
            "    ^",
        ),
        (
            _yaml(_stage("new", "'frequency_orders == 1 and'"), GOOD_STAGE),
            "stages[0] (new).rule",
            "expected an operand at column 26, found the end of the rule",
        ),
        (
            _yaml(_stage("new", "'acquisition_channel > 3'"), GOOD_STAGE),
            "stages[0] (new).rule",
            "'>' compares values of one kind",
        ),
        (
            _yaml(_stage("new", "yes"), GOOD_STAGE),
            "stages[0] (new).rule",
            "a rule is text; quote it",
        ),
        (
            _yaml("{key: new, label_en: New, rule: 'frequency_orders == 1'}", GOOD_STAGE),
            "stages[0] (new).label_zh",
            "required key is missing",
        ),
        (
            _yaml(_stage("new", "'frequency_orders == 1'", lable_en="New"), GOOD_STAGE),
            "stages[0] (new).lable_en",
            "unknown key (did you mean 'label_en'?)",
        ),
        (
            _yaml(_stage("new", "'frequency_orders == 1'", colour="red"), GOOD_STAGE),
            "stages[0] (new).colour",
            "unknown key (allowed: key, label_en, label_zh, rule, description, kpi)",
        ),
        (
            _yaml(_stage("new", "'frequency_orders == 1'", label_zh="''"), GOOD_STAGE),
            "stages[0] (new).label_zh",
            "must not be empty",
        ),
        (
            _yaml(_stage("Dormant Users", "'recency_days > 45'"), GOOD_STAGE),
            "stages[0] (Dormant Users).key",
            "'Dormant Users' is not a stage key: use lower-case letters",
        ),
        (
            _yaml(
                _stage("active", "'recency_days < 5'"),
                _stage("new", "'recency_days < 9'"),
                GOOD_STAGE,
            ),
            "stages[2] (active).key",
            "duplicate key 'active' (stages[0] has it)",
        ),
        (
            _yaml(_stage("rest", "otherwise"), _stage("new", "'frequency_orders == 1'")),
            "stages[0] (rest).rule",
            "'otherwise' is allowed only in the last stage",
        ),
        (_yaml(GOOD_STAGE), "stages", "a stage model needs at least two stages, this one has 1"),
        ("name: test\nstages: {}\n", "stages", "must be a list of stages"),
        (_yaml(GOOD_STAGE, "just text"), "stages[1]", "must be a mapping of keys"),
        (_yaml(GOOD_STAGE, GOOD_STAGE, header=""), "name", "required key is missing"),
        (
            _yaml(
                _stage("new", "'frequency_orders == 1'"), GOOD_STAGE, header="name: t\nversion: 2\n"
            ),
            "version",
            "unknown key (allowed: name, description, timezone, stages)",
        ),
        (
            _yaml(
                _stage("new", "'frequency_orders == 1'"),
                GOOD_STAGE,
                header="name: t\ntimezone: Mars/Olympus\n",
            ),
            "timezone",
            "unknown IANA time zone 'Mars/Olympus'",
        ),
        ("- a list\n", "", "a stage model is a mapping with 'name' and 'stages' keys"),
        ("name: [unclosed\n", "", "not valid YAML"),
        (
            "name: t\nstages:\n  - key: new\n    rule: a\n    rule: b\n",
            "",
            "duplicate key 'rule'",
        ),
    ],
)
def test_a_bad_stage_model_is_a_config_error_naming_the_file_the_stage_and_the_key(
    tmp_path: Path, document: str, key_path: str, reason: str
) -> None:
    path = tmp_path / "stages.yaml"
    path.write_text(document, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_stage_model(path)
    assert caught.value.key_path == key_path
    assert reason in caught.value.reason
    assert str(caught.value).startswith(f"{path}: {key_path}: " if key_path else f"{path}: ")


def test_the_config_error_message_reads_as_one_line_then_the_rule_with_a_caret(
    tmp_path: Path,
) -> None:
    path = tmp_path / "stages.yaml"
    path.write_text(_yaml(_stage("dormant", "'recency_day > 45'"), GOOD_STAGE), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_stage_model(path)
    assert str(caught.value).splitlines()[0] == (
        f"{path}: stages[0] (dormant).rule: unknown feature 'recency_day' "
        "(did you mean 'recency_days'?) at column 1"
    )


def test_a_missing_stage_model_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="stage model file not found"):
        load_stage_model(tmp_path / "absent.yaml")


def test_a_stage_model_may_use_features_the_caller_adds_to_the_known_kinds() -> None:
    kinds = {**FEATURE_KINDS, "lessons_completed_30d": ValueKind.NUMBER}
    document = _model("lessons_completed_30d == 0", "otherwise")
    assert parse_stage_model(document, feature_kinds=kinds).features == ("lessons_completed_30d",)
    with pytest.raises(ConfigError, match=r"stages\[0\] \(s0\)\.rule: unknown feature"):
        parse_stage_model(document, "request body")


def test_a_copied_preset_with_an_added_stage_separates_lapsed_prospects(
    duckdb: Any, tmp_path: Path
) -> None:
    added = (
        "  - key: lapsed_prospect\n"
        "    label_en: Lapsed prospect\n"
        "    label_zh: 沉睡潜客\n"
        "    rule: first_order_at is null and tenure_days > 90\n"
    )
    preset = (PRESETS / "seed000.yaml").read_text(encoding="utf-8")
    copy = tmp_path / "my_stages.yaml"
    copy.write_text(
        preset.replace("name: seed000", "name: my_stages").replace(
            "stages:\n", "stages:\n" + added
        ),
        encoding="utf-8",
    )
    model = load_stage_model(copy)
    assert model.keys[:2] == ("lapsed_prospect", "introduction")
    customers = [
        prospect("signed_up_last_month"),
        prospect("signed_up_last_year", tenure_days=400.0),
    ]
    assert stages_of(duckdb, model, *customers) == {
        "signed_up_last_month": "introduction",
        "signed_up_last_year": "lapsed_prospect",
    }
