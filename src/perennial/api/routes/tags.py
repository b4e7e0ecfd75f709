"""``/v1/tags``: tag definitions, rule tags, refreshing computed tags, CSV imports.

A rule tag is an expression of the segment language; computed tags
(favourite category, preferred channel, price sensitivity) are built in; an
import tags the customers listed in a CSV (``customer_id`` and optionally
``value``), reporting every line it could not apply and why. Reading is open to
every role; defining, refreshing and importing to operators.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from perennial.access.roles import Principal, Role
from perennial.api.errors import ApiError, ErrorBody
from perennial.api.routes.segments import Service, _checked
from perennial.api.security import require
from perennial.segments.tag_store import list_tags, tag_counts

__all__ = [
    "ImportOut",
    "Rejected",
    "RuleTagIn",
    "TagOut",
    "TagRefreshOut",
    "define",
    "import_csv",
    "list_all",
    "refresh",
    "router",
]

router = APIRouter(prefix="/v1/tags", tags=["tags"], responses={422: {"model": ErrorBody}})

Reader = Annotated[Principal, Depends(require(Role.OPERATOR, Role.AGENT, Role.VIEWER))]
Writer = Annotated[Principal, Depends(require(Role.OPERATOR))]
TagName = Annotated[str, Path(max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,99}$")]
MAX_IMPORT_ROWS = 1_000_000


class TagOut(BaseModel):
    name: str
    kind: str
    description: str
    expression: str | None
    version: int
    customers: int
    updated_at: datetime


class RuleTagIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,99}$")
    expression: str = Field(max_length=8000)
    description: str = Field(default="", max_length=4000)


class TagRefreshOut(BaseModel):
    name: str
    tagged: int
    changed: int
    removed: int


class Rejected(BaseModel):
    line: int
    customer_id: str
    reason: str


class ImportOut(BaseModel):
    name: str
    tagged: int
    rejected: list[Rejected]


@router.get("", response_model=list[TagOut], summary="Tags with how many customers carry each")
def list_all(_principal: Reader, service: Service) -> list[TagOut]:
    with service.operational.connect() as connection:
        counts = tag_counts(connection)
        tags = list_tags(connection)
    return [
        TagOut(
            name=tag.name,
            kind=tag.kind.value,
            description=tag.description,
            expression=tag.expression,
            version=tag.version,
            customers=counts.get(tag.name, 0),
            updated_at=tag.updated_at,
        )
        for tag in tags
    ]


@router.post("", response_model=TagRefreshOut, status_code=201, summary="Define a rule tag")
def define(principal: Writer, service: Service, body: RuleTagIn) -> TagRefreshOut:
    result = _checked(
        lambda: service.define_rule_tag(
            body.name, body.expression, description=body.description, user=principal.subject
        )
    )
    return TagRefreshOut(**result.__dict__)


@router.post(
    "/refresh", response_model=list[TagRefreshOut], summary="Recompute rule and computed tags"
)
def refresh(principal: Writer, service: Service) -> list[TagRefreshOut]:
    return [TagRefreshOut(**r.__dict__) for r in service.refresh_tags(user=principal.subject)]


@router.post(
    "/{name}/import",
    response_model=ImportOut,
    summary="Tag the customers of a CSV (customer_id[, value])",
    openapi_extra={"requestBody": {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
async def import_csv(
    principal: Writer, service: Service, name: TagName, request: Request
) -> ImportOut:
    raw = await request.body()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ApiError(422, "invalid_input", "the CSV is not UTF-8", "body") from None
    rows = _rows(text)
    result = _checked(
        lambda: service.import_tag(
            name, rows, source_name=f"API upload by {principal.subject}", user=principal.subject
        )
    )
    return ImportOut(
        name=result.name,
        tagged=result.tagged,
        rejected=[Rejected(line=n, customer_id=c, reason=r) for n, c, r in result.rejected],
    )


def _rows(text: str) -> list[tuple[int, str, str | None]]:
    try:
        return _read_rows(text)
    except csv.Error as error:
        raise ApiError(422, "invalid_input", f"the CSV cannot be read: {error}", "body") from None


def _read_rows(text: str) -> list[tuple[int, str, str | None]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None or "customer_id" not in [h.strip() for h in header]:
        raise ApiError(
            422, "invalid_input", "the CSV needs a header with a customer_id column", "body"
        )
    names = [h.strip() for h in header]
    id_column = names.index("customer_id")
    value_column = names.index("value") if "value" in names else None
    rows: list[tuple[int, str, str | None]] = []
    for line, record in enumerate(reader, start=2):
        if not record or not any(cell.strip() for cell in record):
            continue
        if len(record) != len(names):
            raise ApiError(
                422,
                "invalid_input",
                f"line {line}: {len(record)} cells, the header has {len(names)}",
                "body",
            )
        value = record[value_column].strip() or None if value_column is not None else None
        rows.append((line, record[id_column].strip(), value))
        if len(rows) > MAX_IMPORT_ROWS:
            raise ApiError(
                413, "payload_too_large", f"at most {MAX_IMPORT_ROWS:,} rows per import", "body"
            )
    return rows
