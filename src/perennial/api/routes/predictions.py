"""``/v1/predictions``: the at-risk list (high churn risk, most valuable first), as JSON or CSV.

The seeds' 高价值流失预警 list for a call-back team: who to call first, and why each
is at risk (the churn model's reasons, in both languages). Like every list, phone
and e-mail are masked; opening a customer's 360 is the audited way to see them.
Every role may read. Filled by ``perennial predict`` and ``perennial serving refresh``.
"""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from perennial.access.masking import mask_email, mask_phone
from perennial.access.roles import Principal, Role
from perennial.api.errors import ApiError, ErrorBody
from perennial.api.pagination import MAX_LIMIT, decode_cursor, encode_cursor
from perennial.api.security import require
from perennial.api.serving import Serving, read
from perennial.lifecycle.tiers import ValueTier
from perennial.serving.at_risk import AtRiskFilter, AtRiskRow, AtRiskSort, at_risk_customers
from perennial.serving.board import load_board

__all__ = ["AtRiskItem", "AtRiskPage", "at_risk_list", "router"]

router = APIRouter(
    prefix="/v1/predictions",
    tags=["predictions"],
    responses={503: {"model": ErrorBody, "description": "The serving store is not built yet."}},
)

Reader = Annotated[Principal, Depends(require(Role.OPERATOR, Role.AGENT, Role.VIEWER))]
RiskBand = Literal["low", "medium", "high", "critical"]
CSV_LIMIT = 100_000
"""Rows of one CSV export (the list's first rows in its order)."""


class AtRiskItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer_id: str
    name: str | None
    stage: str | None
    stage_label_en: str | None
    stage_label_zh: str | None
    rfm_segment: str | None
    value_tier: str | None
    monetary: float = Field(description="Paid spend to the profile's as-of.")
    clv_12m: float | None = Field(description="Predicted discounted 12-month value.")
    churn_probability: float
    churn_risk_band: str
    reasons_en: list[str]
    reasons_zh: list[str]
    phone: str | None = Field(description="Always masked in lists.")
    email: str | None = Field(description="Always masked in lists.")


class AtRiskPage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[AtRiskItem]
    next_cursor: str | None = Field(description="Pass as ``cursor`` for the next page.")


@router.get(
    "/at-risk",
    response_model=AtRiskPage,
    summary="Customers at risk of churning, most valuable first",
    responses={200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with format=csv"}},
)
def at_risk_list(
    _principal: Reader,
    serving: Serving,
    min_probability: Annotated[float, Query(ge=0, le=1)] = 0.5,
    stage: Annotated[str | None, Query(max_length=64, description="A stage key.")] = None,
    tier: ValueTier | None = None,
    risk_band: RiskBand | None = None,
    sort: AtRiskSort = "clv",
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    format: Literal["json", "csv"] = "json",
) -> Any:
    """Customers whose churn probability is at least ``min_probability``, by predicted
    CLV (or risk, or paid spend), descending; ``format=csv`` exports up to 100,000."""
    where = AtRiskFilter(min_probability, stage, None if tier is None else tier.value, risk_band)
    csv_export = format == "csv"
    with read():
        reading = serving.reading()
        board = serving.cached("board", load_board, reading)
        if stage is not None and stage not in [s.key for s in board.stages]:
            raise ApiError(422, "invalid_input", f"unknown stage {stage!r}", "query.stage")
        size = CSV_LIMIT if csv_export else limit + 1
        after = None if csv_export else _cursor(cursor)
        rows = at_risk_customers(reading.connection, where, sort=sort, after=after, limit=size)
    labels = board.stage_labels()
    items = [_item(row, labels) for row in rows[: CSV_LIMIT if csv_export else limit]]
    if csv_export:
        return _csv(items)
    more = len(rows) > limit
    return AtRiskPage(
        items=items, next_cursor=encode_cursor(rows[limit - 1].sort_key(sort)) if more else None
    )


def _cursor(cursor: str | None) -> list[Any] | None:
    if cursor is None:
        return None
    key = decode_cursor(cursor, 2)
    first_ok = key[0] is None or (isinstance(key[0], int | float) and not isinstance(key[0], bool))
    if not (first_ok and isinstance(key[1], str)):
        raise ApiError(
            400, "invalid_cursor", "the cursor is not one this endpoint issued", "cursor"
        )
    return key


def _item(row: AtRiskRow, labels: dict[str, tuple[str, str]]) -> AtRiskItem:
    label = labels.get(row.stage or "")
    return AtRiskItem(
        customer_id=row.customer_id,
        name=row.name,
        stage=row.stage,
        stage_label_en=label[0] if label else None,
        stage_label_zh=label[1] if label else None,
        rfm_segment=row.rfm_segment,
        value_tier=row.value_tier,
        monetary=row.monetary,
        clv_12m=row.clv,
        churn_probability=row.churn_probability,
        churn_risk_band=row.churn_risk_band,
        reasons_en=row.reasons_en,
        reasons_zh=row.reasons_zh,
        phone=None if row.phone is None else mask_phone(row.phone),
        email=None if row.email is None else mask_email(row.email),
    )


_CSV_COLUMNS = (
    "customer_id", "name", "stage", "value_tier", "rfm_segment", "monetary", "clv_12m",
    "churn_probability", "churn_risk_band", "reasons_en", "reasons_zh", "phone", "email",
)  # fmt: skip


def _csv(items: list[AtRiskItem]) -> Response:
    """UTF-8 with a byte-order mark (Excel opens the Chinese reasons correctly)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(_CSV_COLUMNS)
    for item in items:
        values = item.model_dump()
        values["reasons_en"] = " | ".join(item.reasons_en)
        values["reasons_zh"] = " | ".join(item.reasons_zh)
        writer.writerow(_csv_cell(values[column]) for column in _CSV_COLUMNS)
    return Response(
        "\ufeff" + buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="at-risk.csv"'},
    )


def _csv_cell(value: Any) -> Any:
    """Text that a spreadsheet would run as a formula gets a leading quote (CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
