"""``/v1/models``: the registry's versions with what training measured, for every role."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from perennial.access.roles import Role
from perennial.api.model_views import ModelDetail, ModelList
from perennial.config import Settings
from perennial.features.labels import feature_label
from perennial.models.churn_model import ChurnModel
from perennial.models.registry import (
    CHURN_KIND,
    IncompleteModelWarning,
    ModelRegistry,
    ModelStatus,
    save_churn_model,
)
from tests.api.conftest import KeyFor
from tests.models.demo_store import trained_demo_model


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> ChurnModel:
    """The default churn model trained on the 1,000-customer demo (cached per session)."""
    return trained_demo_model(tmp_path_factory)


@pytest.fixture
def registry(settings: Settings) -> ModelRegistry:
    return ModelRegistry.for_settings(settings)


def _get(client: TestClient, key_for: KeyFor, path: str, role: Role = Role.VIEWER) -> Any:
    response = client.get(path, headers=key_for(role))
    assert response.status_code == 200, response.text
    return response.json()


def _edit_metadata(registry: ModelRegistry, version: str, **changes: Any) -> None:
    """Rewrite a version's metadata.json by hand (it carries no checksum of its own)."""
    path = registry.root / version / "metadata.json"
    metadata = orjson.loads(path.read_bytes())
    for key, value in changes.items():
        if value is None:
            metadata.pop(key, None)
        else:
            metadata[key] = value
    path.write_bytes(orjson.dumps(metadata))


def test_the_list_shows_every_version_with_its_validation_metrics_and_the_promoted_one(
    client: TestClient, key_for: KeyFor, registry: ModelRegistry, model: ChurnModel
) -> None:
    save_churn_model(registry, model)
    save_churn_model(registry, model)
    registry.promote("churn-0002")

    listed = ModelList.model_validate(_get(client, key_for, "/v1/models"))

    assert [item.version for item in listed.items] == ["churn-0001", "churn-0002"]
    assert [item.status for item in listed.items] == [ModelStatus.CANDIDATE, ModelStatus.PROMOTED]
    assert listed.promoted == {"churn": "churn-0002"}
    stored = model.metadata["metrics"]
    for item in listed.items:
        assert item.kind == CHURN_KIND and item.definition == "purchase"
        assert item.metrics is not None and item.training_window is not None
        assert item.metrics.auc == stored["auc"]
        assert item.metrics.churn_rate == stored["base_rate"]
        assert item.metrics.baseline_recency_auc == stored["baseline_recency_auc"]
        assert (item.metrics.rows, item.metrics.brier) == (stored["rows"], stored["brier"])
        window = model.metadata["training_window"]
        assert item.training_window.data_end.isoformat() == window["data_end"]
    assert listed.items[0].promoted_at is None and listed.items[1].promoted_at is not None


def test_the_detail_holds_features_definition_cutoffs_checks_and_calibration_curve(
    client: TestClient, key_for: KeyFor, registry: ModelRegistry, model: ChurnModel
) -> None:
    save_churn_model(registry, model)

    detail = ModelDetail.model_validate(_get(client, key_for, "/v1/models/churn-0001"))

    metadata = model.metadata
    assert [feature.name for feature in detail.features] == list(model.features)
    for feature in detail.features:
        label = feature_label(feature.name)
        assert feature.label_zh == (label.zh if label else None)
        assert feature.missing_share == metadata["checks"]["missing_share"].get(feature.name)
        assert feature.reference == model.references.get(feature.name)
    derived = next(f for f in detail.features if f.name == "recency_over_rhythm")
    assert derived.label_en is None and derived.missing_share is None
    assert detail.config == model.config
    assert detail.config is not None and detail.config.label.horizon_days == 90
    assert detail.cutoffs is not None
    assert detail.cutoffs.validation.isoformat() == metadata["cutoffs"]["validation"]
    assert len(detail.cutoffs.training) == 6
    assert detail.checks is not None and detail.checks.rows == metadata["checks"]["rows"]
    assert [c.rows for c in detail.checks.per_cutoff][-1] == metadata["metrics"]["rows"]
    assert detail.calibration_method == metadata["calibration"]
    assert detail.calibration_curve is not None
    assert [b.model_dump() for b in detail.calibration_curve] == metadata["calibration_curve"]
    assert detail.metrics is not None and detail.metrics.auc == metadata["metrics"]["auc"]


def test_an_empty_registry_lists_nothing(client: TestClient, key_for: KeyFor) -> None:
    assert _get(client, key_for, "/v1/models") == {"items": [], "promoted": {}}


@pytest.mark.parametrize("version", ["churn-0099", "nonsense", "Churn-0001", "churn-1"])
def test_an_unknown_version_is_a_404_with_the_common_error_body(
    client: TestClient, key_for: KeyFor, registry: ModelRegistry, model: ChurnModel, version: str
) -> None:
    save_churn_model(registry, model)

    response = client.get(f"/v1/models/{version}", headers=key_for(Role.VIEWER))

    assert response.status_code == 404, response.text
    error = response.json()["error"]
    assert error["code"] == "not_found" and error["field"] == "path.version"
    assert "(known: churn-0001)" in error["message"]


def test_an_overlong_version_is_refused_before_the_registry_is_asked(
    client: TestClient, key_for: KeyFor
) -> None:
    response = client.get("/v1/models/" + "x" * 65, headers=key_for(Role.VIEWER))

    assert response.status_code == 422
    assert response.json()["error"]["field"] == "path.version"


@pytest.mark.parametrize("role", [Role.VIEWER, Role.AGENT, Role.OPERATOR, Role.ADMIN])
def test_every_role_may_read_the_list_and_a_version(
    client: TestClient, key_for: KeyFor, registry: ModelRegistry, model: ChurnModel, role: Role
) -> None:
    save_churn_model(registry, model)

    listed = _get(client, key_for, "/v1/models", role)
    detail = _get(client, key_for, "/v1/models/churn-0001", role)

    assert [item["version"] for item in listed["items"]] == ["churn-0001"]
    assert detail["version"] == "churn-0001"


@pytest.mark.parametrize("path", ["/v1/models", "/v1/models/churn-0001"])
def test_without_credentials_the_answer_is_401(client: TestClient, path: str) -> None:
    response = client.get(path)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"


def test_a_version_with_a_missing_file_is_left_out_of_the_list_and_is_a_404(
    client: TestClient, key_for: KeyFor, registry: ModelRegistry, model: ChurnModel
) -> None:
    save_churn_model(registry, model)
    save_churn_model(registry, model)
    (registry.root / "churn-0002" / "model.txt").unlink()

    with pytest.warns(IncompleteModelWarning, match="churn-0002: model.txt is missing"):
        listed = _get(client, key_for, "/v1/models")
    response = client.get("/v1/models/churn-0002", headers=key_for(Role.VIEWER))

    assert [item["version"] for item in listed["items"]] == ["churn-0001"]
    assert response.status_code == 404
    assert response.json()["error"] == {
        "code": "model_incomplete",
        "message": "churn-0002: model.txt is missing",
        "field": "path.version",
    }


def test_metadata_that_does_not_fit_is_a_500_naming_the_version_and_the_key(
    client: TestClient, key_for: KeyFor, registry: ModelRegistry, model: ChurnModel
) -> None:
    save_churn_model(registry, model)
    metrics = {k: v for k, v in model.metadata["metrics"].items() if k != "auc"}
    _edit_metadata(registry, "churn-0001", metrics=metrics)

    for path in ("/v1/models", "/v1/models/churn-0001"):
        response = client.get(path, headers=key_for(Role.VIEWER))
        assert response.status_code == 500
        error = response.json()["error"]
        assert error["code"] == "invalid_model_metadata"
        assert error["message"] == "churn-0001: metadata.json metrics.auc: Field required"


def test_a_version_trained_before_calibration_curves_were_stored_has_none(
    client: TestClient, key_for: KeyFor, registry: ModelRegistry, model: ChurnModel
) -> None:
    save_churn_model(registry, model)
    _edit_metadata(registry, "churn-0001", calibration_curve=None)

    detail = ModelDetail.model_validate(_get(client, key_for, "/v1/models/churn-0001"))

    assert detail.calibration_curve is None and detail.metrics is not None


def test_another_kind_is_listed_without_churn_fields(
    client: TestClient, key_for: KeyFor, registry: ModelRegistry
) -> None:
    registry.save("next_order", {"intervals.json": b"{}"}, {"metrics": {"mae_days": 4.2}})

    listed = ModelList.model_validate(_get(client, key_for, "/v1/models"))
    detail = ModelDetail.model_validate(_get(client, key_for, "/v1/models/next_order-0001"))

    assert [(i.version, i.kind, i.metrics) for i in listed.items] == [
        ("next_order-0001", "next_order", None)
    ]
    assert listed.promoted == {}
    assert (detail.features, detail.config, detail.calibration_curve) == ([], None, None)
