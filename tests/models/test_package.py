"""The models package loads its heavy libraries only when a model is used."""

from __future__ import annotations

import subprocess
import sys

import pytest

import perennial.models


def test_importing_the_cli_loads_neither_lightgbm_nor_scikit_learn_nor_scipy() -> None:
    probe = (
        "import sys, perennial.cli.app, perennial.models; "
        "print(sorted(m for m in ('lightgbm', 'sklearn', 'scipy') if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "[]"


@pytest.mark.parametrize("name", perennial.models.__all__)
def test_every_exported_name_resolves_to_what_its_module_defines(name: str) -> None:
    value = getattr(perennial.models, name)
    assert not isinstance(value, type(perennial.models)), f"{name} resolves to a module"


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_model"):
        _ = perennial.models.no_such_model  # type: ignore[attr-defined]
