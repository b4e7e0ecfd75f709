"""Health, the error body, body limits, request ids and the OpenAPI document."""

from __future__ import annotations

from fastapi.testclient import TestClient

from perennial.config import Settings


def test_health_and_readiness_answer(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ok"}


def test_unknown_path_gets_the_common_error_body(client: TestClient) -> None:
    response = client.get("/v1/no-such-thing")
    assert response.status_code == 404
    assert response.json() == {
        "error": {"code": "not_found", "message": "Not Found", "field": None}
    }


def test_body_over_the_limit_is_refused_before_it_is_read(
    client: TestClient, settings: Settings
) -> None:
    response = client.post("/v1/ping", content=b"x" * (settings.api_max_body_bytes + 1))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_every_response_carries_a_request_id_and_echoes_a_given_one(client: TestClient) -> None:
    assert len(client.get("/healthz").headers["x-request-id"]) == 16
    echoed = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"


def test_openapi_lists_versioned_paths(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    assert "/v1/ping" in document["paths"]
    assert all(path.startswith(("/v1/", "/healthz", "/readyz")) for path in document["paths"])
    assert client.get("/docs").status_code == 200


def test_openapi_says_how_to_authenticate_and_which_roles_each_operation_admits(
    client: TestClient,
) -> None:
    document = client.get("/openapi.json").json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerKey"]["scheme"] == "bearer"
    assert (schemes["apiKeyHeader"]["in"], schemes["apiKeyHeader"]["name"]) == (
        "header",
        "X-API-Key",
    )
    assert schemes["sessionCookie"]["in"] == "cookie"
    paths = document["paths"]
    secured = {
        f"{method.upper()} {path}"
        for path, operations in paths.items()
        for method, operation in operations.items()
        if operation.get("security")
    }
    public = {
        "GET /healthz",
        "GET /readyz",
        "GET /v1/ping",
        "POST /v1/auth/login",
        "GET /v1/unsubscribe/{token}",
        "POST /v1/unsubscribe/{token}",
    }
    every = {f"{m.upper()} {p}" for p, operations in paths.items() for m in operations}
    assert secured == every - public
    assert paths["/v1/admin/users"]["get"]["description"].endswith("Roles: admin.")
    assert "Roles: admin, operator." in paths["/v1/track"]["post"]["description"]
    assert "agent" in paths["/v1/customers/{customer_id}"]["get"]["description"]
    assert paths["/v1/auth/me"]["get"]["description"].endswith("any signed-in caller.")
    assert client.get("/openapi.json").json() == document  # marked once, not per call
