"""Broken rows: the right number of them, broken in ways ingest must catch."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import orjson
import pyarrow as pa
import pytest

from perennial.demo.dirty_rows import (
    choose_dirty_rows,
    corrupt_json_line,
    corrupt_orders,
    dirty_count,
)
from perennial.schema.tables import TABLES

LINE = (
    b'{"event_id":"E00000000007","customer_id":"C0000001","anonymous_id":null,'
    b'"event_type":"identify","ts":"2024-03-05T08:15:00Z","properties":{}}\n'
)


@pytest.mark.parametrize(
    ("rows", "fraction", "expected"), [(2_000, 0.001, 2), (499, 0.001, 0), (0, 0.5, 0)]
)
def test_dirty_count_rounds_the_fraction_of_rows(rows: int, fraction: float, expected: int) -> None:
    assert dirty_count(rows, fraction) == expected
    assert choose_dirty_rows(np.random.default_rng(0), rows, fraction).shape == (expected,)


@pytest.mark.parametrize("kind", [0, 1, 2])
def test_broken_json_lines_keep_their_length_and_newline(kind: int) -> None:
    broken = corrupt_json_line(LINE, kind)

    assert len(broken) == len(LINE) and broken.endswith(b"\n")
    try:
        ts = orjson.loads(broken)["ts"]
    except orjson.JSONDecodeError:
        assert kind == 0
        return
    if kind == 1:
        with pytest.raises(ValueError):
            datetime.fromisoformat(ts.replace("Z", "+00:00"))
    else:
        assert ts == "2099-03-05T08:15:00Z"


def test_broken_orders_stay_type_valid_and_each_breaks_one_rule() -> None:
    schema = TABLES["orders"].arrow_schema(with_lineage=False)
    micros = int(datetime(2024, 5, 1, tzinfo=UTC).timestamp() * 1_000_000)
    table = pa.Table.from_pylist(
        [
            {"order_id": f"O{i}", "customer_id": "C1", "placed_at": micros, "amount": 10,
             "currency": "CNY", "status": "refunded", "item_count": 1, "coupon_code": None,
             "channel": "app"}
            for i in range(5)
        ],
        schema=schema,
    )  # fmt: skip
    broken = corrupt_orders(table, np.array([0, 1, 2, 3])).to_pylist()

    assert broken[0]["amount"] < 0 and broken[0]["status"] == "paid"
    assert broken[1]["currency"] == "XYZ"
    assert broken[2]["customer_id"] == ""
    assert broken[3]["placed_at"].year == 2099
    assert broken[4] == table.to_pylist()[4]
