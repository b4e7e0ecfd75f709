"""``generate_demo``: a realistic shop's customers, orders and behaviour, with the answers.

Customers are simulated in blocks of ``BLOCK_SIZE`` on two threads (numpy and
Arrow release the GIL) and written in block order, so the bytes depend only on
the arguments. Every file is in the canonical layout of ``perennial.schema``;
``ground_truth.parquet`` holds each customer's latent traits for grading models.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from perennial.demo.block import BlockOutput, simulate_block
from perennial.demo.calendar import DemandCalendar
from perennial.demo.dataset import DemoDataset, DemoFile
from perennial.demo.dirty_rows import (
    choose_dirty_rows,
    corrupt_customers,
    corrupt_orders,
)
from perennial.demo.ground_truth import GROUND_TRUTH_SCHEMA
from perennial.demo.writer import JsonLinesFile, ParquetParts, csv_bytes

__all__ = ["BLOCK_SIZE", "MAX_ROWS_PER_FILE", "generate_demo"]

BLOCK_SIZE = 200_000
"""Customers simulated together; bounds memory to a few blocks' orders and events."""

MAX_ROWS_PER_FILE = 2_000_000
"""Largest Parquet part written."""

_WORKERS = 2
_DIRTY_STREAM = 1 << 30  # spawn key of the random streams that pick rows to break


@dataclass(frozen=True)
class _Block:
    """A simulated block, with its customers already encoded as CSV."""

    output: BlockOutput
    customers_csv: bytes
    dirty_customers: int


def generate_demo(
    out_dir: Path,
    *,
    customers: int = 50_000,
    seed: int = 7,
    start: date = date(2024, 1, 1),
    end: date = date(2025, 12, 31),
    dirty_fraction: float = 0.001,
    progress: Callable[[str], None] | None = None,
) -> DemoDataset:
    """Write a demo data set into ``out_dir`` (created if missing) and describe it.

    The period runs from ``start`` 00:00 UTC to the end of ``end`` (UTC); calendar
    effects (member day, 6.18, 11.11) follow Asia/Shanghai. Existing files of the
    same names are replaced.
    """
    if customers < 1:
        raise ValueError(f"customers must be at least 1, got {customers}")
    if seed < 0:
        raise ValueError(f"seed must not be negative, got {seed}")
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    if not 0.0 <= dirty_fraction < 1.0:
        raise ValueError(f"dirty_fraction must be in [0, 1), got {dirty_fraction}")
    report = progress if progress is not None else _silent
    directory = out_dir.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    calendar = DemandCalendar.build(start, end)

    def dirty_stream(*key: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_DIRTY_STREAM, *key)))

    def break_orders(table: pa.Table, part: int) -> tuple[pa.Table, int]:
        positions = choose_dirty_rows(dirty_stream(1, part), table.num_rows, dirty_fraction)
        return corrupt_orders(table, positions), int(positions.shape[0])

    orders = ParquetParts(directory, "orders", "orders", MAX_ROWS_PER_FILE, break_orders)
    items = ParquetParts(directory, "order_items", "order_items", MAX_ROWS_PER_FILE)
    events = ParquetParts(directory, "events", "events", MAX_ROWS_PER_FILE)
    identity = JsonLinesFile(directory / "events-identity.jsonl")
    education = JsonLinesFile(directory / "events-education.jsonl")
    customers_path = directory / "customers.csv"
    ground_truth_path = directory / "ground_truth.parquet"
    dirty_customers = choose_dirty_rows(dirty_stream(0), customers, dirty_fraction)
    width = max(7, len(str(customers)))
    blocks = -(-customers // BLOCK_SIZE)

    def produce(block: int) -> _Block:
        first = block * BLOCK_SIZE
        size = min(BLOCK_SIZE, customers - first)
        output = simulate_block(seed, block, first + 1, size, calendar, width)
        mine = dirty_customers[(dirty_customers >= first) & (dirty_customers < first + size)]
        records = corrupt_customers(output.customers, mine - first)
        return _Block(output, csv_bytes(records, header=block == 0), int(mine.shape[0]))

    dirty_rows = 0
    with (
        customers_path.open("wb") as customers_file,
        pq.ParquetWriter(ground_truth_path, GROUND_TRUTH_SCHEMA, compression="zstd") as truth,
    ):
        for index, block in enumerate(_in_order(produce, blocks, report)):
            report(f"writing block {index + 1}/{blocks}")
            customers_file.write(block.customers_csv)
            dirty_rows += block.dirty_customers
            orders.append(block.output.orders)
            items.append(block.output.order_items)
            events.append(block.output.events)
            identity.append(block.output.identity_lines)
            education.append(block.output.education_lines)
            truth.write_table(block.output.ground_truth)
            del block  # let it go before the next one is awaited

    report("breaking rows in the JSON Lines files")
    identity.break_lines(dirty_stream(2), dirty_fraction)
    education.break_lines(dirty_stream(3), dirty_fraction)
    dirty_rows += orders.dirty_rows + identity.dirty_rows + education.dirty_rows
    event_files = events.finish()
    files = (
        DemoFile(customers_path, "customers", "csv", customers),
        *orders.finish(),
        *items.finish(),
        *event_files,
        identity.describe(),
        education.describe(),
    )
    report("done")
    return DemoDataset(
        files=files,
        ground_truth=ground_truth_path,
        customers=customers,
        orders=sum(f.rows for f in files if f.table == "orders"),
        events=sum(f.rows for f in files if f.table == "events"),
        dirty_rows=dirty_rows,
        end=end,
    )


def _silent(_: str) -> None:
    return None


def _in_order(
    produce: Callable[[int], _Block], blocks: int, report: Callable[[str], None]
) -> Iterator[_Block]:
    """Blocks simulated on worker threads, yielded in block order, few at a time."""
    with ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="demo-block") as pool:
        pending: deque[Future[_Block]] = deque()
        for block in range(blocks):
            report(f"simulating block {block + 1}/{blocks}")
            pending.append(pool.submit(produce, block))
            if len(pending) > _WORKERS:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
