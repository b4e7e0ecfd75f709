"""The OpenAPI document says how to authenticate and which roles each operation admits.

FastAPI learns security schemes from ``Security`` dependencies, but ours are not
declared that way: :func:`~perennial.api.security.require` resolves the caller
itself, because every dependency level costs each request time (see its comment).
So the schemes are added to the document here, and each operation that
authenticates lists them, with the admitted roles in its description: ``/docs``
then offers "Authorize" and a client generator knows where the key goes.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from perennial.access.roles import Role
from perennial.api.security import admitted_roles

__all__ = ["SECURITY_SCHEMES", "document_security"]

SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "bearerKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key (`perennial apikeys create`) sent as "
        "`Authorization: Bearer prn_...`.",
    },
    "apiKeyHeader": {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "The same API key in the `X-API-Key` header.",
    },
    "sessionCookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": "perennial_session",
        "description": "The web session of `POST /v1/auth/login`; changes also need the "
        "session's CSRF token in `X-CSRF-Token`.",
    },
}
_ANY_SCHEME: list[dict[str, list[str]]] = [{name: []} for name in SECURITY_SCHEMES]


def document_security(app: FastAPI) -> None:
    """Make ``app``'s document list the schemes and, per operation, who may call it."""
    generate = app.openapi
    marked: list[bool] = []

    def openapi() -> dict[str, Any]:
        document = generate()  # built once and cached by FastAPI
        if not marked:
            _mark_operations(document, _operation_roles(app))
            document.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
            marked.append(True)
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _operation_roles(app: FastAPI) -> dict[tuple[str, str], frozenset[Role]]:
    """(path, method) -> admitted roles, for every operation that authenticates."""
    found: dict[tuple[str, str], frozenset[Role]] = {}
    for context in iter_route_contexts(app.routes):
        if not isinstance(context.original_route, APIRoute):
            continue
        roles = _dependency_roles(context.dependant.dependencies)
        if roles is not None and context.path_format is not None:
            for method in context.methods or ():
                found[(context.path_format, method.lower())] = roles
    return found


def _dependency_roles(dependencies: list[Dependant]) -> frozenset[Role] | None:
    found: frozenset[Role] | None = None
    for dependency in dependencies:
        roles = None if dependency.call is None else admitted_roles(dependency.call)
        if roles is not None:
            found = roles if found is None else found | roles
    return found


def _mark_operations(
    document: dict[str, Any], roles_by_operation: dict[tuple[str, str], frozenset[Role]]
) -> None:
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            roles = roles_by_operation.get((path, method))
            if roles is None:
                continue
            names = ", ".join(sorted(r.value for r in roles)) if roles else "any signed-in caller"
            note = f"Roles: {names}."
            described = operation.get("description")
            operation["description"] = f"{described}\n\n{note}" if described else note
            operation["security"] = _ANY_SCHEME
