"""Labels for values the data supplies: event types, identity kinds, order statuses.

The vocabulary is open (any custom event type may arrive), so unlike
:func:`~perennial.web.i18n.translate` a value without a label in the catalogue is
shown as it is instead of failing the page. Catalogue keys are ``<family>.<value>``
(``event.login``, ``identity.phone``, ``order_status.paid``).
"""

from __future__ import annotations

from perennial.web.i18n import CATALOGUE, DEFAULT_LANGUAGE

__all__ = ["LABELLED_FAMILIES", "value_label"]

LABELLED_FAMILIES = ("event", "identity", "order_status", "match")
"""The families pages label values of; tests keep each family's known values labelled."""


def value_label(language: str, family: str, value: str | None) -> str:
    """The label of ``value`` in ``family``, or ``value`` itself (``—`` for none)."""
    if value is None:
        return "—"
    labels = CATALOGUE.get(language, CATALOGUE[DEFAULT_LANGUAGE])
    return labels.get(f"{family}.{value}", value)
