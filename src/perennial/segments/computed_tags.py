"""Built-in computed tags: a value per customer derived from their profile and orders.

These are the seeds' interest, channel and value dimensions (兴趣 / 渠道 / 价格敏感)
as tags, so an operator can write ``tag('price_sensitivity') == 'high'`` without
knowing which feature it comes from. Each is one Ibis query over the evaluation
frame or the orders, run on the same engine as segments.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import ibis  # type: ignore[import-untyped]
import ibis.expr.types as ir  # type: ignore[import-untyped]

from perennial.schema.tables import OrderStatus
from perennial.segments.evaluation import Evaluation
from perennial.store.warehouse import Warehouse

__all__ = ["COMPUTED_TAGS", "ComputedTag", "compute_tag_values"]

HIGH_COUPON_SHARE = 0.5
MEDIUM_COUPON_SHARE = 0.2


@dataclass(frozen=True)
class ComputedTag:
    name: str
    description: str
    query: Callable[[Evaluation, Warehouse], ir.Table]
    """``customer_id, value`` (text) for every customer who gets the tag."""


def _favourite_category(evaluation: Evaluation, _: Warehouse) -> ir.Table:
    frame = evaluation.frame
    if "favourite_category" not in frame.columns:
        return _nobody(frame)
    tagged = frame.filter(frame.favourite_category.notnull())
    return tagged.select("customer_id", value=tagged.favourite_category.cast("string"))


def _price_sensitivity(evaluation: Evaluation, _: Warehouse) -> ir.Table:
    frame = evaluation.frame
    if "coupon_share" not in frame.columns:
        return _nobody(frame)
    buyers = frame.filter(frame.coupon_share.notnull() & (frame.frequency_orders > 0))
    share = buyers.coupon_share
    value = ibis.cases(
        (share >= HIGH_COUPON_SHARE, "high"),
        (share >= MEDIUM_COUPON_SHARE, "medium"),
        else_="low",
    )
    return buyers.select("customer_id", value=value)


def _preferred_channel(evaluation: Evaluation, warehouse: Warehouse) -> ir.Table:
    orders = evaluation.backend.table("orders", warehouse.snapshot(evaluation.warehouse_version))
    paid = orders.filter(
        (orders.status == OrderStatus.PAID.value)
        & orders.channel.notnull()
        & (orders.channel != "")
    )
    counts = paid.group_by(["customer_id", "channel"]).aggregate(
        orders=paid.count(), last=paid.placed_at.max()
    )
    ranking = ibis.window(
        group_by=counts.customer_id,
        order_by=[counts.orders.desc(), counts["last"].desc(), counts.channel],
    )
    ranked = counts.mutate(rank=ibis.row_number().over(ranking))
    best = ranked.filter(ranked["rank"] == 0)
    return best.select(customer_id=best.customer_id.cast("string"), value=best.channel)


def _nobody(frame: ir.Table) -> ir.Table:
    return frame.filter(ibis.literal(False)).select("customer_id", value=ibis.null("string"))


COMPUTED_TAGS: dict[str, ComputedTag] = {
    tag.name: tag
    for tag in (
        ComputedTag(
            "favourite_category",
            "The category with the most units bought (the profile's favourite_category).",
            _favourite_category,
        ),
        ComputedTag(
            "price_sensitivity",
            f"high / medium / low: share of paid orders with a coupon >= {HIGH_COUPON_SHARE}, "
            f">= {MEDIUM_COUPON_SHARE}, below; buyers only.",
            _price_sensitivity,
        ),
        ComputedTag(
            "preferred_channel",
            "The sales channel of most of the customer's paid orders (ties: the latest).",
            _preferred_channel,
        ),
    )
}


def compute_tag_values(
    evaluation: Evaluation, warehouse: Warehouse, name: str
) -> dict[str, str | None]:
    """customer -> value for the built-in tag ``name``."""
    result = evaluation.backend.to_pyarrow(COMPUTED_TAGS[name].query(evaluation, warehouse))
    return dict(
        zip(
            result.column("customer_id").to_pylist(),
            result.column("value").to_pylist(),
            strict=True,
        )
    )
