"""``/v1/customers/{id}/tags``: one customer's tags, with who set each, when and why.

Included before the customers router: its 360 route takes any text as an id,
slashes included, and would otherwise answer for these paths too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field

import perennial.api.path_text  # noqa: F401 (registers the {name:text} convertor)
from perennial.access.roles import Principal, Role
from perennial.api.errors import ApiError
from perennial.api.routes.segments import Service, _checked
from perennial.api.security import require
from perennial.api.serving import read, serving_of
from perennial.segments.repository import MemberChange, changes_after
from perennial.segments.service import SegmentService
from perennial.segments.tag_store import TagKind, tags_of
from perennial.serving.customers import customer_exists

__all__ = [
    "CustomerTagOut",
    "MembershipOut",
    "TagValueIn",
    "customer_segments",
    "customer_tags",
    "router",
    "tag_customer",
    "untag_customer",
]

router = APIRouter(prefix="/v1/customers", tags=["tags"])

Reader = Annotated[Principal, Depends(require(Role.OPERATOR, Role.AGENT, Role.VIEWER))]
Tagger = Annotated[Principal, Depends(require(Role.OPERATOR, Role.AGENT))]
CustomerId = Annotated[str, Path(min_length=1, max_length=256, description="Any text.")]
TagName = Annotated[str, Path(max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,99}$")]


class CustomerTagOut(BaseModel):
    tag: str
    value: str | None
    source: str = Field(description="rule, computed, import or manual")
    reason: str
    set_at: datetime
    set_by: str


class TagValueIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: str | None = Field(default=None, max_length=400)
    reason: str = Field(default="", max_length=1000)


class MembershipOut(BaseModel):
    segment: str
    change: str
    at: datetime


@router.get(
    "/{customer_id:text}/tags", response_model=list[CustomerTagOut], summary="A customer's tags"
)
def customer_tags(
    _principal: Reader, service: Service, customer_id: CustomerId, request: Request
) -> list[CustomerTagOut]:
    _require_customer(request, customer_id)
    return _tags(service, customer_id)


def _require_customer(request: Request, customer_id: str) -> None:
    """404 for an id the serving store does not know (as the customer 360 answers)."""
    with read():
        if not customer_exists(serving_of(request).connection(), customer_id):
            raise ApiError(404, "not_found", "no customer has this id")


def _tags(service: SegmentService, customer_id: str) -> list[CustomerTagOut]:
    with service.operational.connect() as connection:
        tags = tags_of(connection, customer_id)
    return [CustomerTagOut(**{k: getattr(t, k) for k in CustomerTagOut.model_fields}) for t in tags]


@router.put(
    "/{customer_id:text}/tags/{tag}",
    response_model=list[CustomerTagOut],
    summary="Tag a customer by hand",
)
def tag_customer(
    principal: Tagger,
    service: Service,
    customer_id: CustomerId,
    tag: TagName,
    body: TagValueIn,
    request: Request,
) -> list[CustomerTagOut]:
    _require_customer(request, customer_id)
    reason = body.reason or "set by hand"
    _checked(
        lambda: service.tag_customers(
            [(customer_id, tag, body.value)],
            source=TagKind.MANUAL,
            reason=f"manual: {reason}",
            user=principal.subject,
        )
    )
    service.refresh_customers([customer_id], None)
    return _tags(service, customer_id)


@router.delete("/{customer_id:text}/tags/{tag}", status_code=204, summary="Remove a tag")
def untag_customer(
    _principal: Tagger, service: Service, customer_id: CustomerId, tag: TagName
) -> None:
    if not service.untag_customer(customer_id, tag):
        raise ApiError(404, "not_found", f"customer {customer_id!r} has no tag {tag!r}")
    service.refresh_customers([customer_id], None)


@router.get(
    "/{customer_id:text}/segments",
    response_model=list[MembershipOut],
    summary="The segments a customer entered and left, newest first",
)
def customer_segments(
    _principal: Reader, service: Service, customer_id: CustomerId, request: Request
) -> list[MembershipOut]:
    _require_customer(request, customer_id)
    with service.operational.connect() as connection:
        changes: list[MemberChange] = changes_after(
            connection, 0, limit=1000, customer_id=customer_id
        )
    return [MembershipOut(segment=c.name, change=c.change, at=c.at) for c in reversed(changes)]
