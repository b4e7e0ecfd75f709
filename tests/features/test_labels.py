"""Every registered feature has a short label in English and Chinese."""

from __future__ import annotations

import pytest

from perennial.features.labels import feature_label
from perennial.features.snapshot import FEATURES


@pytest.mark.parametrize("name", [f.name for f in FEATURES])
def test_every_feature_is_labelled_in_both_languages(name: str) -> None:
    label = feature_label(name)

    assert label is not None, f"{name} has no label in perennial.features.labels"
    assert label.en and label.zh and label.en != label.zh


def test_windowed_features_are_labelled_from_family_and_window() -> None:
    label = feature_label("complaints_7d")

    assert label is not None
    assert (label.text("en"), label.text("zh")) == ("Complaints, last 7 d", "投诉次数（近7天）")


def test_unknown_names_have_no_label() -> None:
    assert feature_label("shoe_size") is None
    assert feature_label("shoe_size_30d") is None


def test_labels_are_distinct_so_a_card_never_shows_two_rows_alike() -> None:
    labels = [feature_label(f.name) for f in FEATURES]

    assert len({label.en for label in labels if label}) == len(FEATURES)
    assert len({label.zh for label in labels if label}) == len(FEATURES)
