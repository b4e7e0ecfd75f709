"""Mapping files are validated whole; a mistake names the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from perennial.errors import ConfigError
from perennial.ingest.mapping import DuplicatePolicy, SourceFormat, load_mapping
from tests.ingest.factories import write_text

EXAMPLES = Path(__file__).parents[2] / "examples" / "mappings"


@pytest.mark.parametrize(
    ("document", "key_path", "reason"),
    [
        ("table: ordrs\n", "table", "unknown table 'ordrs'"),
        ("table: orders\ncolumns:\n  amount_paid: x\n", "columns.amount_paid", "no column"),
        (
            "table: orders\ncolumns:\n  amount: {from: x, scale: 2}\n",
            "columns.amount.scale",
            "Extra inputs are not permitted",
        ),
        ("table: orders\ntimezone: Mars/Olympus\n", "timezone", "unknown IANA time zone"),
        ("table: orders\nencoding: klingon\n", "encoding", "unknown encoding"),
        ("table: orders\non_duplicate: newest\n", "on_duplicate", "Input should be"),
        (
            "table: orders\ncolumns: {status: s}\nconstants: {status: paid}\n",
            "constants.status",
            "also mapped",
        ),
        ("table: orders\ndelimiter: ';;'\n", "delimiter", "one character"),
        ("- just a list\n", "", "YAML object"),
        ("table: [unclosed\n", "", "not valid YAML"),
    ],
)
def test_a_bad_mapping_is_rejected_naming_the_key(
    tmp_path: Path, document: str, key_path: str, reason: str
) -> None:
    path = write_text(tmp_path / "mapping.yaml", document)
    with pytest.raises(ConfigError) as caught:
        load_mapping(path)
    assert caught.value.key_path == key_path
    assert reason in str(caught.value)
    assert str(path) in str(caught.value)


def test_a_missing_mapping_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="mapping file not found"):
        load_mapping(tmp_path / "absent.yaml")


def test_the_cdnow_example_reads_whitespace_text_with_a_derived_order_id() -> None:
    mapping = load_mapping(EXAMPLES / "cdnow.yaml")
    assert mapping.delimiter == "whitespace"
    assert mapping.derives_key()
    assert mapping.columns["placed_at"].format == ["%Y%m%d"]
    assert mapping.on_duplicate is DuplicatePolicy.KEEP_FIRST
    assert mapping.format is None or mapping.format is SourceFormat.TEXT
