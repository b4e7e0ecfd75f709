"""Masking keeps enough to confirm a contact by phone, and agents see more only with a task."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from perennial.access.masking import (
    _mask_phone_spelling,
    contact_visible,
    mask_email,
    mask_phone,
)
from perennial.access.roles import Principal, Role
from perennial.access.tables import SERVICE_TASKS, USERS
from perennial.config import Settings
from perennial.store.operational import create_engine_for, migrate


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("13812345678", "138****5678"),
        ("+8613812345678", "+86138****5678"),
        ("+1 415 555 2671", "+1 41* *** 2671"),
        ("12345", "*****"),
    ],
)
def test_phones_keep_the_first_three_and_last_four_digits(phone: str, masked: str) -> None:
    assert mask_phone(phone) == masked


@given(national=st.text(alphabet="0123456789", min_size=0, max_size=20))
def test_the_e164_shortcut_masks_exactly_like_the_general_rule(national: str) -> None:
    phone = f"+86{national}"
    assert mask_phone(phone) == _mask_phone_spelling(phone)


@pytest.mark.parametrize(
    ("email", "masked"),
    [("alice@example.com", "a***@example.com"), ("@x.org", "***"), ("nonsense", "***")],
)
def test_emails_keep_the_first_letter_and_the_domain(email: str, masked: str) -> None:
    assert mask_email(email) == masked


def _agent(user_id: str) -> Principal:
    return Principal(f"user:{user_id}", frozenset({Role.AGENT}), "session", user_id)


def test_an_agent_sees_contacts_only_while_holding_an_open_task(settings: Settings) -> None:
    migrate(settings)
    engine = create_engine_for(settings)
    now = datetime.now(UTC)
    with engine.begin() as connection:
        for user in ("u1", "u2"):
            connection.execute(
                USERS.insert().values(
                    user_id=user,
                    username=user,
                    display_name=user,
                    password_hash="x",
                    roles="agent",
                    disabled=False,
                    failed_logins=0,
                    created_at=now,
                )
            )
        connection.execute(
            SERVICE_TASKS.insert().values(
                task_id="t1",
                customer_id="C1",
                assignee="u1",
                status="open",
                title="call back",
                created_at=now,
            )
        )
        assert contact_visible(connection, _agent("u1"), "C1")
        assert not contact_visible(connection, _agent("u2"), "C1")
        assert not contact_visible(connection, _agent("u1"), "C2")
        connection.execute(sa.update(SERVICE_TASKS).values(status="done"))
        assert not contact_visible(connection, _agent("u1"), "C1")
        viewer = Principal("key:k", frozenset({Role.VIEWER}), "api_key")
        operator = Principal("key:o", frozenset({Role.OPERATOR}), "api_key")
        assert not contact_visible(connection, viewer, "C1")
        assert contact_visible(connection, operator, "C1")
