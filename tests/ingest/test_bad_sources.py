"""Sources that break in the ways real feeds break: each gets a clear message or a clean
quarantine naming file, line and column, and nothing accepted is lost."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from perennial.config import Settings
from perennial.errors import IngestError
from perennial.ingest import readers
from perennial.ingest.mapping import load_mapping
from perennial.ingest.pipeline import ingest_file
from perennial.ingest.quarantine import list_quarantine
from perennial.store.warehouse import Warehouse
from tests.conftest import NOW
from tests.ingest.factories import ORDER_HEADER, orders_csv, write_text


def _values(settings: Settings, table: str, columns: str) -> list[tuple[object, ...]]:
    paths = Warehouse(settings.warehouse).snapshot().paths(table)
    return duckdb.execute(
        f"SELECT {columns} FROM read_parquet(?) ORDER BY ALL",
        [paths],
    ).fetchall()


def _customers_mapping(tmp_path: Path, **options: str) -> Path:
    extra = "".join(f"{key}: {value}\n" for key, value in options.items())
    return write_text(
        tmp_path / "customers.yaml",
        "table: customers\n" + extra + "columns:\n  customer_id: 会员编号\n  name: 姓名\n"
        "  region: 地区\n",
    )


GBK_TEXT = "会员编号,姓名,地区\nM001,李明,上海\nM002,王芳,北京\n"


def test_a_gbk_file_declared_utf8_is_rejected_naming_the_first_bad_line(
    settings: Settings, tmp_path: Path
) -> None:
    source = write_text(tmp_path / "members.csv", "customer_id,name\nM001,Li\nM002,李明\n", "gbk")
    with pytest.raises(IngestError) as caught:
        ingest_file(source, settings, table="customers", now=NOW)
    assert caught.value.line == 3
    assert "not valid utf-8" in str(caught.value)
    assert "encoding: gbk" in str(caught.value)
    assert Warehouse(settings.warehouse).snapshot().version == 0


def test_a_gbk_file_declared_gbk_is_read_correctly(settings: Settings, tmp_path: Path) -> None:
    source = write_text(tmp_path / "members.csv", GBK_TEXT, "gbk")
    mapping = load_mapping(_customers_mapping(tmp_path, encoding="gbk"))
    report = ingest_file(source, settings, mapping=mapping, now=NOW)
    assert report.accepted == 2
    assert _values(settings, "customers", "customer_id, name, region") == [
        ("M001", "李明", "上海"),
        ("M002", "王芳", "北京"),
    ]


def test_a_semicolon_file_read_as_comma_separated_says_which_delimiter_it_looks_like(
    settings: Settings, tmp_path: Path
) -> None:
    source = write_text(
        tmp_path / "orders.csv",
        ORDER_HEADER.replace(",", ";") + "\nO1;C1;2025-03-01T10:00:00Z;10;CNY;paid\n",
    )
    with pytest.raises(IngestError) as caught:
        ingest_file(source, settings, table="orders", now=NOW)
    message = str(caught.value)
    assert "no source column provides required orders.customer_id" in message
    assert "semicolon-separated: set `delimiter: ';'`" in message
    assert str(source) in message


def test_a_header_missing_a_mapped_column_names_the_column_and_the_delimiter_hint(
    settings: Settings, tmp_path: Path
) -> None:
    source = write_text(tmp_path / "members.csv", "会员编号;姓名;地区\nM001;李明;上海\n")
    with pytest.raises(IngestError) as caught:
        ingest_file(source, settings, mapping=load_mapping(_customers_mapping(tmp_path)), now=NOW)
    assert caught.value.column == "会员编号"
    assert caught.value.line == 1
    assert "semicolon-separated" in str(caught.value)


def test_embedded_newlines_and_quotes_are_kept_and_later_lines_are_numbered_right(
    settings: Settings, tmp_path: Path
) -> None:
    source = write_text(
        tmp_path / "customers.csv",
        "customer_id,name,attributes\n"
        'C1,"Li ""Lucky"" Ming","{""note"": ""a, b"",\n""k"": 1}"\n'
        'C2,"Wang,\nFang",\n'
        "C3,Zhang,{not json}\n",
    )
    report = ingest_file(source, settings, table="customers", now=NOW)
    assert (report.accepted, report.quarantined) == (2, 1)
    assert _values(settings, "customers", "customer_id, name, attributes") == [
        ("C1", 'Li "Lucky" Ming', '{"k":1,"note":"a, b"}'),
        ("C2", "Wang,\nFang", None),
    ]
    [bad] = list_quarantine(settings)
    assert (bad.source_line, bad.column_name) == (6, "attributes")
    assert bad.reason.startswith("attributes: malformed JSON")


def test_a_row_with_a_wrong_field_count_is_quarantined_at_its_line(
    settings: Settings, tmp_path: Path
) -> None:
    source = orders_csv(
        tmp_path / "orders.csv",
        "O1,C1,2025-03-01T10:00:00Z,10,CNY,paid",
        "O2,C1,2025-03-01T10:00:00Z,10,CNY",
        "O3,C1,2025-03-01T10:00:00Z,10,CNY,paid",
    )
    report = ingest_file(source, settings, table="orders", now=NOW)
    assert (report.accepted, report.quarantined) == (2, 1)
    [bad] = list_quarantine(settings)
    assert (bad.source_line, bad.reason) == (3, "expected 6 fields, found 5")


def test_blank_lines_do_not_shift_line_numbers(settings: Settings, tmp_path: Path) -> None:
    source = write_text(
        tmp_path / "orders.csv",
        ORDER_HEADER + "\n\n"
        "O1,C1,2025-03-01T10:00:00Z,10,CNY,paid\n\n"
        "O2,C1,2025-03-01T10:00:00Z,-1,CNY,paid\n",
    )
    report = ingest_file(source, settings, table="orders", now=NOW)
    assert (report.accepted, report.quarantined) == (1, 1)
    assert list_quarantine(settings)[0].source_line == 5


def test_json_lines_with_one_broken_line_keep_the_others(
    settings: Settings, tmp_path: Path
) -> None:
    source = write_text(
        tmp_path / "events.jsonl",
        '{"event_id": "E1", "customer_id": "C1", "event_type": "login", '
        '"ts": "2025-03-01T10:00:00Z"}\n'
        '{"event_id": "E2", "customer_id": "C1", "event_type": "login", "ts": \n'
        '{"event_id": "E3", "anonymous_id": "d-9", "event_type": "search", '
        '"ts": "2025-03-01T11:00:00+08:00", "properties": {"query": "how to cancel"}}\n'
        "[1, 2]\n",
    )
    report = ingest_file(source, settings, table="events", now=NOW)
    assert (report.accepted, report.quarantined, report.rows_read) == (2, 2, 4)
    reasons = {r.source_line: r.reason for r in list_quarantine(settings)}
    assert reasons[2].startswith("malformed JSON (")
    assert reasons[4] == "line is not a JSON object"
    assert _values(settings, "events", "event_id, properties") == [
        ("E1", None),
        ("E3", '{"query":"how to cancel"}'),
    ]


def test_timestamps_in_three_formats_with_and_without_zone_mean_the_same_instant(
    settings: Settings, tmp_path: Path
) -> None:
    source = orders_csv(
        tmp_path / "orders.csv",
        "O1,C1,2025-03-01T10:00:00+08:00,1,CNY,paid",
        "O2,C1,2025-03-01 10:00:00,1,CNY,paid",
        "O3,C1,2025/03/01 10:00,1,CNY,paid",
        "O4,C1,2025-03-01T02:00:00Z,1,CNY,paid",
        "O5,C1,20250301,1,CNY,paid",
    )
    report = ingest_file(source, settings, table="orders", now=NOW)
    assert report.accepted == 5
    instants = dict(_values(settings, "orders", "order_id, strftime(placed_at, '%Y-%m-%d %H:%M')"))
    assert instants == {
        "O1": "2025-03-01 02:00",
        "O2": "2025-03-01 02:00",
        "O3": "2025-03-01 02:00",
        "O4": "2025-03-01 02:00",
        "O5": "2025-02-28 16:00",
    }


def test_an_empty_file_is_an_empty_batch(settings: Settings, tmp_path: Path) -> None:
    report = ingest_file(orders_csv(tmp_path / "orders.csv"), settings, table="orders", now=NOW)
    assert (report.rows_read, report.accepted, report.quarantined) == (0, 0, 0)


def test_a_missing_file_is_an_error_naming_it(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(IngestError, match=r"nowhere\.csv: file not found"):
        ingest_file(tmp_path / "nowhere.csv", settings, table="orders", now=NOW)


def test_windows_line_endings_and_a_byte_order_mark_read_like_any_csv(
    settings: Settings, tmp_path: Path
) -> None:
    text = "\ufeff" + ORDER_HEADER + "\r\nO1,C1,2025-03-01T10:00:00Z,10,CNY,paid\r\n"
    text += "O2,C1,2025-03-01T10:00:00Z,-2,CNY,paid\r\n"
    report = ingest_file(
        write_text(tmp_path / "orders.csv", text), settings, table="orders", now=NOW
    )
    assert (report.accepted, report.quarantined) == (1, 1)
    assert list_quarantine(settings)[0].source_line == 3
    assert _values(settings, "orders", "order_id, status") == [("O1", "paid")]


def test_a_parquet_source_with_text_amounts_and_naive_times_is_converted_row_by_row(
    settings: Settings, tmp_path: Path
) -> None:
    source = tmp_path / "orders.parquet"
    pq.write_table(
        pa.table(
            {
                "order_id": ["O1", "O2", "O3"],
                "customer_id": ["C1", "C2", None],
                "placed_at": pa.array(
                    [datetime(2025, 3, 1, 10), datetime(2025, 3, 2, 10), datetime(2025, 3, 3, 10)],
                    pa.timestamp("us"),
                ),
                "amount": ["12.50", "abc", "3"],
                "currency": ["CNY", "CNY", "CNY"],
                "status": ["paid", "paid", "paid"],
            }
        ),
        source,
    )
    report = ingest_file(source, settings, table="orders", now=NOW)

    assert (report.accepted, report.quarantined) == (1, 2)
    reasons = {r.source_line: r.reason for r in list_quarantine(settings)}
    assert reasons == {2: "amount: not a number 'abc'", 3: "customer_id: missing customer_id"}
    placed = _values(settings, "orders", "strftime(placed_at, '%Y-%m-%d %H:%M')")
    assert placed == [("2025-03-01 02:00",)]  # naive times are Asia/Shanghai by default


def test_a_mapping_renames_converts_and_recodes_source_columns(
    settings: Settings, tmp_path: Path
) -> None:
    mapping = write_text(
        tmp_path / "shop.yaml",
        "table: orders\n"
        "timezone: Asia/Shanghai\n"
        "columns:\n"
        "  order_id: 订单号\n"
        "  customer_id: user_id\n"
        "  placed_at: {from: 下单日期, format: '%Y%m%d'}\n"
        "  amount: {from: 实付分, divide_by: 100}\n"
        "  status: {from: 状态, values: {'1': paid, '2': refunded, '3': cancelled}}\n"
        "constants: {currency: CNY}\n",
    )
    source = write_text(
        tmp_path / "shop.csv",
        "订单号,user_id,下单日期,实付分,状态\nA1,U9,20250301,12345,1\nA2,U9,20250302,500,2\n"
        "A3,U9,20250303,100,9\n",
    )
    report = ingest_file(source, settings, mapping=load_mapping(mapping), now=NOW)

    assert (report.accepted, report.quarantined) == (2, 1)
    rows = _values(
        settings,
        "orders",
        "order_id, customer_id, strftime(placed_at, '%Y-%m-%d %H:%M'), "
        "CAST(amount AS VARCHAR), status",
    )
    assert rows == [
        ("A1", "U9", "2025-02-28 16:00", "123.4500", "paid"),
        ("A2", "U9", "2025-03-01 16:00", "5.0000", "refunded"),
    ]
    assert list_quarantine(settings)[0].reason == (
        "status: not one of paid, refunded, cancelled '9'"
    )


def test_switching_to_the_exact_reader_mid_file_neither_loses_nor_repeats_a_row(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readers, "BATCH_ROWS", 10)
    monkeypatch.setattr(readers, "_CSV_BLOCK_BYTES", 512)
    rows = [f"O{i},C1,2025-03-01T10:00:00Z,{i},CNY,paid" for i in range(100)]
    rows.insert(4, '"","","","","",""')  # a record of quoted empty values
    rows.insert(85, "O999,C1,2025-03-01T10:00:00Z,1,CNY")  # one field short: exact reader
    report = ingest_file(
        orders_csv(tmp_path / "orders.csv", *rows), settings, table="orders", now=NOW
    )

    assert (report.accepted, report.quarantined) == (100, 2)
    assert report.balanced
    lines = sorted(r.source_line for r in list_quarantine(settings))
    assert lines == [6, 87]
