"""The data-model document: generated from the registry, and true to the stored schemas."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from perennial.ingest.batches import BATCHES_SCHEMA
from perennial.ingest.identity_resolution import (
    _CONFLICTS_SCHEMA,
    _MERGES_SCHEMA,
    CONFLICTS_TABLE,
    IDENTITIES_SCHEMA,
    IDENTITIES_TABLE,
    MERGES_TABLE,
)
from perennial.ingest.quarantine import QUARANTINE_SCHEMA, QUARANTINE_TABLE
from perennial.schema.docs import (
    EVENT_TYPES,
    SYSTEM_TABLES,
    arrow_type_name,
    column_type,
    render_data_model,
)
from perennial.schema.tables import LINEAGE_COLUMNS, TABLES, Column, Kind, Table

DATA_MODEL = Path(__file__).resolve().parents[2] / "docs" / "data-model.md"
REGENERATE = "python -m perennial.schema.docs > docs/data-model.md"

REAL_SYSTEM_SCHEMAS: dict[str, pa.Schema] = {
    IDENTITIES_TABLE: IDENTITIES_SCHEMA,
    MERGES_TABLE: _MERGES_SCHEMA,
    CONFLICTS_TABLE: _CONFLICTS_SCHEMA,
    QUARANTINE_TABLE: QUARANTINE_SCHEMA,
    "ingest_batches": BATCHES_SCHEMA,
}


def test_the_committed_data_model_document_is_the_generated_one() -> None:
    committed = DATA_MODEL.read_text(encoding="utf-8")
    assert committed == render_data_model(), (
        f"docs/data-model.md is out of date with the schema registry; run `{REGENERATE}`"
    )


def test_the_module_writes_the_document_to_standard_output() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "perennial.schema.docs"],
        capture_output=True,
        check=True,
    )
    assert result.stdout.decode("utf-8") == render_data_model()


@pytest.mark.parametrize("table", TABLES.values(), ids=list(TABLES))
def test_every_canonical_column_is_documented_in_its_table(table: Table) -> None:
    section = _section(render_data_model(), f"### {table.name}")
    for column in table.columns:
        assert f"| `{column.name}` |" in section, column.name


def test_every_lineage_column_is_documented() -> None:
    section = _section(render_data_model(), "## Lineage columns")
    for column in LINEAGE_COLUMNS:
        assert f"| `{column.name}` |" in section, column.name


def test_partitioned_tables_name_their_month_folders_and_the_rest_say_none() -> None:
    document = render_data_model()
    for table in TABLES.values():
        section = _section(document, f"### {table.name}")
        if table.time_column is None:
            assert "Partitioning: none" in section
        else:
            assert f"UTC month of `{table.time_column}`" in section
            assert f"`{table.name}/month=YYYY-MM/`" in section


@pytest.mark.parametrize("name", list(REAL_SYSTEM_SCHEMAS))
def test_documented_system_table_columns_are_the_stored_schema(name: str) -> None:
    documented = {t.name: t for t in SYSTEM_TABLES}[name]
    real = REAL_SYSTEM_SCHEMAS[name]
    assert [c.name for c in documented.columns] == real.names
    assert [c.arrow_type for c in documented.columns] == real.types


def test_exactly_the_stored_system_tables_are_documented() -> None:
    assert sorted(t.name for t in SYSTEM_TABLES) == sorted(REAL_SYSTEM_SCHEMAS)


def test_every_system_column_appears_in_the_document() -> None:
    document = render_data_model()
    for table in SYSTEM_TABLES:
        section = _section(document, f"### {table.name}")
        for column in table.columns:
            assert f"| `{column.name}` |" in section, f"{table.name}.{column.name}"


def test_every_named_event_type_is_in_the_event_type_column_description() -> None:
    description = TABLES["events"].column("event_type").description
    for name, _ in EVENT_TYPES:
        assert re.search(rf"\b{name}\b", description), name


@pytest.mark.parametrize(
    ("data_type", "expected"),
    [
        (pa.timestamp("us", tz="UTC"), "timestamp (UTC, µs)"),
        (pa.decimal128(18, 4), "decimal(18,4)"),
        (pa.string(), "string"),
        (pa.int64(), "int64"),
        (pa.bool_(), "boolean"),
        (pa.date32(), "date"),
    ],
)
def test_arrow_types_read_as_plain_words(data_type: pa.DataType, expected: str) -> None:
    assert arrow_type_name(data_type) == expected


@pytest.mark.parametrize("kind", list(Kind))
def test_every_kind_has_a_readable_type(kind: Kind) -> None:
    readable = column_type(Column("x", kind, "x"))
    assert readable
    assert "DataType" not in readable


def test_phones_read_as_e164_strings() -> None:
    assert column_type(TABLES["customers"].column("phone")) == "string (E.164)"


def test_enum_columns_list_their_choices_and_non_negative_ones_say_so() -> None:
    section = _section(render_data_model(), "### orders")
    status = next(line for line in section.splitlines() if line.startswith("| `status`"))
    assert "`paid`, `refunded`, `cancelled`" in status
    amount = next(line for line in section.splitlines() if line.startswith("| `amount`"))
    assert "Never negative." in amount


def _section(document: str, heading: str) -> str:
    """The text from ``heading`` to the next heading of the same or a higher level."""
    level = heading.split(" ", 1)[0]
    start = document.index(heading + "\n")
    pattern = re.compile(rf"^#{{1,{len(level)}}} ", re.MULTILINE)
    following = pattern.search(document, start + len(heading))
    return document[start : following.start() if following else len(document)]
