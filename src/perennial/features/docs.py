"""Render ``docs/features.md`` from the feature registry.

Run ``python -m perennial.features.docs > docs/features.md`` after changing a
feature; a test fails while the committed document differs from the rendering,
so the documentation always describes the code.
"""

from __future__ import annotations

import sys

from perennial.features.btyd import BTYD_COLUMNS
from perennial.features.registry import Feature, Section
from perennial.features.snapshot import DEFAULT_TIMEZONE, FEATURES, SECTIONS

__all__ = ["main", "render_features"]

_HEADER = (
    "<!-- Generated from src/perennial/features/. Do not edit: run "
    "`python -m perennial.features.docs > docs/features.md`. -->"
)

_INTRODUCTION = f"""\
# Customer features

`perennial.features.compute_features(backend, snapshot, as_of, timezone=...)` returns one
row per customer known by `as_of`, with the {len(FEATURES)} columns below. It is an Ibis
expression: the same code runs on DuckDB (the default) and on Spark
(`perennial.store.backends.open_backend(settings, "spark")`), and a test checks that both
give the same table.

## Stores larger than memory

`perennial.features.buckets.feature_table(...)` (what `perennial features` and
`perennial lifecycle compute` use) gives the same table in bounded memory when the store
is large for the engine: customers are split by a hash of their id, one pass writes the
point-in-time rows of every source partitioned by bucket, and each bucket's features are
computed from its own rows. The two store-wide columns (`population_median_interval_days`,
`category_median_interval_days`) are medians of whole-day gaps, so each bucket adds its
gap histogram and the medians are taken from the sum: equal to the single plan's. The
number of buckets is the setting `feature_buckets`, by default planned from the store's
rows and DuckDB's memory limit (one on Spark, which spreads the work itself).

## Point in time

- Every feature reads only rows strictly before `as_of`: orders by `placed_at`, order
  lines of those orders, events by `ts`, customer records by `created_at`. An order or
  event exactly at `as_of` is not counted. Adding rows dated at or after `as_of` never
  changes a feature (a property test checks this).
- Two things the store does not date are taken as they are now: an order's `status`
  (a refund after `as_of` already excludes the order) and a customer record's
  attributes such as `acquisition_channel`. A record without `created_at` counts as
  known at any `as_of`.
- Windows are half-open and end at `as_of`: `orders_30d` counts `[as_of - 30 d, as_of)`,
  so an order exactly 30 days before `as_of` is inside. Days are 24 hours of UTC time;
  all day counts (`recency_days`, `tenure_days`, ...) are float days.
- Purchase days are local calendar days in the `timezone` argument (default
  `{DEFAULT_TIMEZONE}`): orders at 23:30 and 00:30 local time are two purchase days,
  even within one UTC day. `frequency_days` and all intervals use them.

## Identity

Orders carry a `customer_id`. An event without one counts for the customer its
`anonymous_id` was linked to by the earliest event before `as_of` carrying both that
`anonymous_id` and a `customer_id` (a login or an `identify` event). Anonymous events
of a device linked only after `as_of` are not attributed. The `identities` table is not
used: it is today's graph, without the time each link was made, so it would let a
login after `as_of` claim browsing before it. Links made only through a phone or an
e-mail are therefore not followed here.

## Money

Amounts are summed exactly as stored decimals and reported as float64 in the orders'
currency; orders in different currencies are not converted. Only `paid` orders are
purchases: refunded and cancelled orders are netted out by exclusion.
"""

_BTYD = f"""\
## Buy-till-you-die summary

`perennial.features.summary_for_btyd(backend, snapshot, calibration_end, unit_days=7,
timezone=...)` returns the input of BG/NBD, Pareto/NBD and Gamma-Gamma (Fader, Hardie &
Lee 2005), one row per customer with a paid order before `calibration_end`, columns
{", ".join(f"`{c}`" for c in BTYD_COLUMNS)}:

- `frequency`: repeat purchase days (distinct local purchase days - 1); purchases on
  one day count once;
- `recency`: last purchase day - first purchase day, in units of `unit_days` days;
- `T`: last observed day - first purchase day, in the same units; the last observed
  day is the local day of the last instant before `calibration_end` (exclusive);
- `monetary_value`: mean amount of the repeat purchase days (same-day orders summed,
  the first day left out), 0 without repeat purchases.

On the CDNOW sample (2,357 customers, calibration through 1997-09-30 New York time,
weeks) it gives the published 2,457 repeat transactions, and the published BG/NBD
estimates reach the published log-likelihood -9582.4 on it.
"""


def render_features() -> str:
    """The whole ``docs/features.md`` document."""
    parts = [_HEADER, "", _INTRODUCTION]
    for section in SECTIONS:
        parts.append(_render_section(section))
    parts.append(_BTYD)
    return "\n".join(parts)


def _render_section(section: Section) -> str:
    lines = [
        f"## {section.title}",
        "",
        section.introduction,
        "",
        "| Feature | Type | Unit | Window | Meaning |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [_render_row(feature) for feature in section.features]
    return "\n".join(lines) + "\n"


def _render_row(feature: Feature) -> str:
    default = "" if feature.default is None else f" Without rows: {feature.default}."
    cells = (
        f"`{feature.name}`",
        feature.kind.readable,
        feature.unit,
        f"`{feature.window}`" if feature.window.startswith("[") else feature.window,
        feature.description.replace("|", "\\|") + default,
    )
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    """Write the document to standard output, as UTF-8 whatever the locale."""
    sys.stdout.buffer.write(render_features().encode("utf-8"))


if __name__ == "__main__":
    main()
