"""Labels for the data's own values, and every label the dashboard builds from a value."""

from __future__ import annotations

import pytest

from perennial.ingest.identity_graph import NODE_KINDS
from perennial.lifecycle.stage_model import KPI_ROLES
from perennial.schema.docs import EVENT_TYPES
from perennial.schema.tables import OrderStatus
from perennial.serving.customers import SORTS
from perennial.web.customer_card import SECTION_KEYS
from perennial.web.i18n import CATALOGUE
from perennial.web.kpi_cards import CARD_KEYS
from perennial.web.value_labels import LABELLED_FAMILIES, value_label


def test_known_values_are_labelled_and_unknown_ones_shown_as_they_are() -> None:
    assert value_label("zh-CN", "event", "login") == "登录"
    assert value_label("en", "order_status", "refunded") == "Refunded"
    assert value_label("en", "event", "my_custom_event") == "my_custom_event"
    assert value_label("fr", "identity", "phone") == "手机"  # unknown language: the default
    assert value_label("en", "identity", None) == "—"


@pytest.mark.parametrize("language", list(CATALOGUE))
def test_every_value_the_pages_label_has_a_label_in_both_languages(language: str) -> None:
    labels = CATALOGUE[language]
    wanted = (
        {f"event.{name}" for name, _ in EVENT_TYPES}
        | {f"order_status.{status.value}" for status in OrderStatus}
        | {f"identity.{kind}" for kind in NODE_KINDS}
        | {f"match.{kind}" for kind in (*NODE_KINDS, "name")}
        | {f"kpi.{key}" for key in CARD_KEYS}
        | {f"kpi.{role}" for role in KPI_ROLES}
        | {f"sort.{sort}" for sort in SORTS}
        | {f"filter.{name}" for name in ("stage", "rfm_segment", "tier", "sort")}
        | set(SECTION_KEYS.values())
        | {f"detail.{name}" for name in ("created_at", "birthday", "consent", "timezone")}
        | {f"consent.{channel}" for channel in ("sms", "email", "push", "wechat")}
    )
    assert wanted <= set(labels), sorted(wanted - set(labels))
    assert {key.split(".")[0] for key in wanted} >= set(LABELLED_FAMILIES)
