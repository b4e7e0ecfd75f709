"""The at-risk list and the 360's predictions say exactly what ``perennial predict`` stored."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from perennial.access.roles import Role
from perennial.api.app import create_api
from perennial.api.customer_views import Customer360
from perennial.api.routes.predictions import AtRiskPage
from perennial.config import Settings
from tests.api.conftest import KeyFor
from tests.api.predicted_store import PredictedStore, predicted_store

PATH = "/v1/predictions/at-risk"


@pytest.fixture(scope="module")
def predicted(tmp_path_factory: pytest.TempPathFactory) -> PredictedStore:
    return predicted_store(tmp_path_factory)


@pytest.fixture
def settings(predicted: PredictedStore, tmp_path: Path) -> Settings:
    return predicted.settings.model_copy(update={"home": tmp_path / "home"})


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_api(settings)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def _walk(client: TestClient, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = client.get(PATH, headers=headers, params=query)
        assert response.status_code == 200, response.text
        page = AtRiskPage.model_validate(response.json())
        items.extend(item.model_dump() for item in page.items)
        cursor = page.next_cursor
        if cursor is None:
            return items


def _sort_key(row: dict[str, Any], sort: str) -> tuple[float, str]:
    value = row["clv_12m"] if sort == "clv" else row[sort]
    return (-1e308 if value is None else value, row["customer_id"])


@pytest.mark.parametrize("sort", ["clv", "churn_probability"])
def test_the_list_walks_every_customer_above_the_threshold_once_in_order(
    client: TestClient, key_for: KeyFor, predicted: PredictedStore, sort: str
) -> None:
    items = _walk(client, key_for(Role.VIEWER), min_probability=0.6, sort=sort, limit=7)
    expected = sorted(
        (r for r in predicted.predictions if r["churn_probability"] >= 0.6),
        key=lambda r: _sort_key(r, sort),
        reverse=True,
    )
    assert [i["customer_id"] for i in items] == [r["customer_id"] for r in expected]
    stored = predicted.by_id()
    for item in items:
        row = stored[item["customer_id"]]
        assert item["churn_probability"] == pytest.approx(row["churn_probability"])
        assert item["clv_12m"] == (
            None if row["clv_12m"] is None else pytest.approx(row["clv_12m"])
        )
        assert item["reasons_zh"] == row["churn_reasons_zh"]


def test_filters_by_band_and_tier_keep_only_matching_customers(
    client: TestClient, key_for: KeyFor
) -> None:
    headers = key_for(Role.AGENT)
    everyone = _walk(client, headers, min_probability=0)
    critical = _walk(client, headers, min_probability=0, risk_band="critical")
    assert critical and all(i["churn_risk_band"] == "critical" for i in critical)
    assert {i["customer_id"] for i in critical} == {
        i["customer_id"] for i in everyone if i["churn_risk_band"] == "critical"
    }
    tiered = _walk(client, headers, min_probability=0, tier="rest")
    assert tiered and all(i["value_tier"] == "rest" for i in tiered)


def test_customers_without_predictions_are_never_listed(
    client: TestClient, key_for: KeyFor, predicted: PredictedStore
) -> None:
    listed = {i["customer_id"] for i in _walk(client, key_for(Role.VIEWER), min_probability=0)}
    assert listed == set(predicted.by_id())


def test_contacts_are_masked_for_every_role_even_admins(
    client: TestClient, key_for: KeyFor
) -> None:
    items = _walk(client, key_for(Role.ADMIN), min_probability=0)
    phones = [i["phone"] for i in items if i["phone"]]
    assert phones and all("****" in phone for phone in phones)


def test_the_csv_export_holds_the_same_rows_masked_and_formula_safe(
    client: TestClient, key_for: KeyFor
) -> None:
    headers = key_for(Role.OPERATOR)
    listed = _walk(client, headers, min_probability=0.5)
    response = client.get(PATH, headers=headers, params={"min_probability": 0.5, "format": "csv"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    assert response.text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(response.text.removeprefix("\ufeff"))))
    assert [r["customer_id"] for r in rows] == [i["customer_id"] for i in listed]
    first = rows[0]  # its reasons start with a formula: a spreadsheet must show it as text
    assert first["reasons_en"] == f"'=SUM(A1:A2) | reason two of {first['customer_id']}"
    for row, item in zip(rows, listed, strict=True):
        if item["phone"]:
            assert row["phone"] in (item["phone"], "'" + item["phone"])


def test_the_360_shows_the_stored_predictions_and_null_without_them(
    client: TestClient, key_for: KeyFor, predicted: PredictedStore, settings: Settings
) -> None:
    headers = key_for(Role.VIEWER)
    row = predicted.predictions[0]
    view = Customer360.model_validate(
        client.get(f"/v1/customers/{row['customer_id']}", headers=headers).json()
    )
    assert view.predictions is not None and view.predictions.churn is not None
    assert view.predictions.churn.probability == pytest.approx(row["churn_probability"])
    assert view.predictions.churn.reasons_en == row["churn_reasons_en"]
    assert view.predictions.next_order is not None
    assert view.predictions.next_order.expected_on == row["next_order_expected_at"]
    assert view.predictions.p_alive == pytest.approx(row["p_alive"])
    replenished = next(r for r in predicted.predictions if r["replenishment_opens_on"])
    again = Customer360.model_validate(
        client.get(f"/v1/customers/{replenished['customer_id']}", headers=headers).json()
    )
    assert again.predictions is not None and again.predictions.replenishment is not None
    assert again.predictions.replenishment.category == "coffee"
    assert again.predictions.replenishment.opens_on == replenished["replenishment_opens_on"]
    missing = _unpredicted_customer(client, headers, set(predicted.by_id()))
    unpredicted = client.get(f"/v1/customers/{missing}", headers=headers).json()
    assert unpredicted["predictions"] is None


def _unpredicted_customer(client: TestClient, headers: dict[str, str], known: set[str]) -> str:
    page = client.get("/v1/customers", headers=headers, params={"limit": 200}).json()
    return next(i["customer_id"] for i in page["items"] if i["customer_id"] not in known)


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"min_probability": 1.5}, 422, "invalid_input"),
        ({"sort": "name"}, 422, "invalid_input"),
        ({"risk_band": "severe"}, 422, "invalid_input"),
        ({"stage": "no-such-stage"}, 422, "invalid_input"),
        ({"cursor": "not-a-cursor"}, 400, "invalid_cursor"),
        ({"format": "xlsx"}, 422, "invalid_input"),
    ],
)
def test_bad_parameters_are_refused_naming_the_parameter(
    client: TestClient, key_for: KeyFor, params: dict[str, Any], status: int, code: str
) -> None:
    response = client.get(PATH, headers=key_for(Role.VIEWER), params=params)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


def test_signing_in_is_required(client: TestClient) -> None:
    assert client.get(PATH).status_code == 401


def test_masking_uses_the_same_rule_as_the_360(client: TestClient, key_for: KeyFor) -> None:
    items = _walk(client, key_for(Role.VIEWER), min_probability=0)
    item = next(i for i in items if i["phone"])
    one = client.get(f"/v1/customers/{item['customer_id']}", headers=key_for(Role.VIEWER))
    assert one.json()["contact"]["phone"] == item["phone"]
