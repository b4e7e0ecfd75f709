"""The model registry: versions appear whole or not at all, and only complete ones load."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import numpy as np
import orjson
import pytest

from perennial.config import Settings
from perennial.models.churn_labels import labelled_rows
from perennial.models.churn_model import ChurnModel
from perennial.models.registry import (
    METADATA_FILE,
    IncompleteModelError,
    IncompleteModelWarning,
    ModelRegistry,
    ModelStatus,
    UnknownModelError,
    load_churn_model,
    save_churn_model,
)
from perennial.store.backends import open_backend
from perennial.store.warehouse import Warehouse
from tests.models.demo_store import churn_demo, trained_demo_model

FILES = {"model.txt": b"trees", "calibrator.json": b'{"method": "sigmoid"}'}


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    return ModelRegistry.for_settings(Settings(home=tmp_path / "home"))


def test_saved_versions_are_numbered_per_kind_and_read_back_verified(
    registry: ModelRegistry,
) -> None:
    first = registry.save("churn", FILES, {"metrics": {"auc": 0.8}})
    second = registry.save("churn", FILES, {"metrics": {"auc": 0.9}})
    other = registry.save("bgnbd", {"params.json": b"{}"}, {})

    assert [first.version, second.version, other.version] == ["churn-0001", "churn-0002",
                                                               "bgnbd-0001"]  # fmt: skip
    assert registry.root == registry.root.parent / "models"
    got = registry.get("churn-0002")
    assert got.metadata["metrics"] == {"auc": 0.9}
    assert got.status == ModelStatus.CANDIDATE
    assert got.read("model.txt") == b"trees"
    assert [v.version for v in registry.list("churn")] == ["churn-0001", "churn-0002"]
    assert len(registry.list()) == 3
    assert not [p for p in registry.root.iterdir() if p.name.startswith(".")]


def test_promoting_makes_one_version_the_promoted_one_of_its_kind(
    registry: ModelRegistry,
) -> None:
    for _ in range(3):
        registry.save("churn", FILES, {})

    assert registry.latest_promoted("churn") is None
    registry.promote("churn-0001")
    registry.promote("churn-0003")

    statuses = {v.version: v.status for v in registry.list("churn")}
    assert statuses == {
        "churn-0001": ModelStatus.CANDIDATE,
        "churn-0002": ModelStatus.CANDIDATE,
        "churn-0003": ModelStatus.PROMOTED,
    }
    promoted = registry.latest_promoted("churn")
    assert promoted is not None and promoted.version == "churn-0003"
    assert "promoted_at" in promoted.metadata


def test_promoting_an_unknown_version_says_which_exist(registry: ModelRegistry) -> None:
    registry.save("churn", FILES, {})

    with pytest.raises(
        UnknownModelError, match=r"no model version 'churn-0009' \(known: churn-0001\)"
    ):
        registry.promote("churn-0009")
    with pytest.raises(UnknownModelError, match=r"no model version '\.\./etc'"):
        registry.get("../etc")


def _half_written(registry: ModelRegistry, how: str) -> str:
    """Break a freshly saved version the way a crash or a disk fault would."""
    version = registry.save("churn", FILES, {}).version
    folder = registry.root / version
    if how == "no metadata":
        (folder / METADATA_FILE).unlink()
    elif how == "missing file":
        (folder / "calibrator.json").unlink()
    elif how == "truncated file":
        (folder / "model.txt").write_bytes(b"tre")
    elif how == "changed file":
        (folder / "model.txt").write_bytes(b"TREES")
    elif how == "metadata cut short":
        text = (folder / METADATA_FILE).read_bytes()
        (folder / METADATA_FILE).write_bytes(text[: len(text) // 2])
    return version


@pytest.mark.parametrize(
    "how", ["no metadata", "missing file", "truncated file", "changed file", "metadata cut short"]
)
def test_a_half_written_version_is_listed_with_a_warning_and_never_loaded(
    registry: ModelRegistry, how: str
) -> None:
    good = registry.save("churn", FILES, {}).version
    broken = _half_written(registry, how)

    with pytest.warns(IncompleteModelWarning, match=broken):
        listed = [v.version for v in registry.list()]
    with pytest.raises(IncompleteModelError, match=broken):
        registry.get(broken)
    with pytest.raises(IncompleteModelError, match=broken):
        registry.promote(broken)

    assert listed == [good]


def test_an_unfinished_write_is_skipped_and_the_next_version_does_not_collide(
    registry: ModelRegistry,
) -> None:
    registry.save("churn", FILES, {})
    leftover = registry.root / ".incoming-crashed"
    leftover.mkdir()
    (leftover / "model.txt").write_bytes(b"half")

    with pytest.warns(IncompleteModelWarning, match="unfinished write"):
        assert [v.version for v in registry.list()] == ["churn-0001"]
    assert registry.save("churn", FILES, {}).version == "churn-0002"


def test_a_crash_while_saving_leaves_no_version_behind(
    registry: ModelRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry.save("churn", FILES, {})
    real_rename = os.rename

    def crash(*_args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "rename", crash)
    with pytest.raises(OSError, match="disk full"):
        registry.save("churn", FILES, {})
    monkeypatch.setattr(os, "rename", real_rename)

    assert [v.version for v in registry.list()] == ["churn-0001"]
    assert sorted(p.name for p in registry.root.iterdir()) == ["churn-0001"]


def test_a_stored_churn_model_predicts_exactly_as_it_did_when_trained(
    registry: ModelRegistry, tmp_path_factory: pytest.TempPathFactory
) -> None:
    model: ChurnModel = trained_demo_model(tmp_path_factory)
    demo = churn_demo(tmp_path_factory)
    cutoff = datetime.fromisoformat(model.metadata["cutoffs"]["validation"])
    with open_backend(demo.settings) as backend:
        snapshot = Warehouse(demo.settings.warehouse).snapshot()
        rows = labelled_rows(backend, snapshot, cutoff, model.config)

    stored = save_churn_model(registry, model)
    registry.promote(stored.version)
    loaded, version = load_churn_model(registry)

    assert version.version == stored.version == "churn-0001"
    np.testing.assert_array_equal(loaded.predict_proba(rows), model.predict_proba(rows))
    assert loaded.features == model.features and loaded.config == model.config
    metadata = orjson.loads((stored.path / METADATA_FILE).read_bytes())
    for key in ("training_window", "cutoffs", "features", "metrics", "checks", "created_at"):
        assert key in metadata
    assert metadata["status"] == "promoted" and set(metadata["files"]) == {
        "model.txt",
        "calibrator.json",
    }


def test_loading_without_a_promoted_churn_model_or_with_another_kind_fails_clearly(
    registry: ModelRegistry,
) -> None:
    registry.save("bgnbd", {"params.json": b"{}"}, {})

    with pytest.raises(UnknownModelError, match="no promoted churn model"):
        load_churn_model(registry)
    with pytest.raises(UnknownModelError, match="is a bgnbd model"):
        load_churn_model(registry, "bgnbd-0001")
