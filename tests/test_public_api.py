"""Every module says what it exports: ``__all__`` lists exactly its public names."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import perennial

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(perennial.__path__, prefix="perennial.")
    if ".migrations" not in info.name
)


@pytest.mark.parametrize("name", MODULES)
def test_all_lists_every_public_class_and_function_defined_in_the_module(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    if exported is None:
        assert module.__file__ is not None and module.__file__.endswith("__init__.py"), (
            f"{name} has no __all__"
        )
        return
    defined = {
        attribute
        for attribute, value in vars(module).items()
        if not attribute.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and value.__module__ == name
    }
    assert defined <= set(exported), f"{name}: public but not in __all__: {defined - set(exported)}"
    assert all(hasattr(module, attribute) for attribute in exported)
