"""The administration page (admins only): users, API keys and the latest audit entries.

Read-only on purpose: users and keys are created where a one-time secret can be
shown safely and copied (the CLI or the admin API), never left in a page's history.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from perennial.access.api_keys import list_api_keys
from perennial.access.audit import query_audit
from perennial.access.users import list_users
from perennial.api.access_models import ApiKeyOut, AuditEntryOut, UserOut
from perennial.api.state import State
from perennial.web.page_auth import Viewer, page_for
from perennial.web.rendering import render_page

__all__ = ["AUDIT_ROWS", "admin_page", "router"]

AUDIT_ROWS = 50

router = APIRouter(include_in_schema=False)
AdminViewer = Annotated[Viewer, Depends(page_for())]


@router.get("/admin")
def admin_page(request: Request, viewer: AdminViewer, state: State) -> Response:
    now = datetime.now(UTC)
    with state.engine.connect() as connection:
        users = [UserOut.of(user) for user in list_users(connection)]
        keys = [ApiKeyOut.of(key, now) for key in list_api_keys(connection)]
        audit = [
            AuditEntryOut.model_validate(row) for row in query_audit(connection, limit=AUDIT_ROWS)
        ]
    keys.sort(key=lambda key: key.created_at, reverse=True)
    return render_page(
        request,
        "admin.html",
        viewer=viewer,
        title_key="admin.title",
        users=users,
        keys=keys,
        audit=audit,
        now=now,
    )
