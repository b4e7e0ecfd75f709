"""The demo package's public surface is exactly what the CLI relies on."""

from __future__ import annotations

import dataclasses
import inspect

import perennial.demo as demo


def test_all_lists_exactly_the_public_names() -> None:
    public = {name for name in vars(demo) if not name.startswith("_")}
    modules = {name for name in public if inspect.ismodule(getattr(demo, name))}

    assert set(demo.__all__) == public - modules == {"DemoDataset", "DemoFile", "generate_demo"}


def test_results_are_frozen_dataclasses_with_the_agreed_fields() -> None:
    assert [f.name for f in dataclasses.fields(demo.DemoFile)] == [
        "path",
        "table",
        "format",
        "rows",
    ]
    assert [f.name for f in dataclasses.fields(demo.DemoDataset)] == [
        "files", "ground_truth", "customers", "orders", "events", "dirty_rows", "end",
    ]  # fmt: skip
    assert demo.DemoFile.__dataclass_params__.frozen  # type: ignore[attr-defined]
    assert demo.DemoDataset.__dataclass_params__.frozen  # type: ignore[attr-defined]


def test_generate_demo_takes_the_agreed_keyword_arguments() -> None:
    parameters = inspect.signature(demo.generate_demo).parameters

    assert list(parameters) == [
        "out_dir", "customers", "seed", "start", "end", "dirty_fraction", "progress",
    ]  # fmt: skip
    assert all(p.kind is p.KEYWORD_ONLY for name, p in parameters.items() if name != "out_dir")
