"""Phone and email masking, and who may see them unmasked.

Operators and admins see contact details (and every such view is audited); agents
see them only for customers whose open service task they hold (the call-back they
must make); viewers never.
"""

from __future__ import annotations

import sqlalchemy as sa

from perennial.access.roles import Principal, Role
from perennial.access.tables import SERVICE_TASKS

__all__ = ["OPEN_TASK_STATUSES", "contact_visible", "mask_email", "mask_phone"]

OPEN_TASK_STATUSES = ("open", "in_progress")


def mask_phone(phone: str) -> str:
    """``+8613812345678`` -> ``+86138****5678``; keeps the first three and last four digits of
    the national number so an agent can confirm a number the customer reads out."""
    if phone.startswith("+86") and len(phone) >= 13 and phone[1:].isdigit():
        # stored numbers are E.164: mask by slicing (a 360 masks one or two per request)
        return f"{phone[:6]}{'*' * (len(phone) - 10)}{phone[-4:]}"
    return _mask_phone_spelling(phone)


def _mask_phone_spelling(phone: str) -> str:
    """Any spelling (spaces, dashes, no country code): hide digits by position."""
    digits = [i for i, char in enumerate(phone) if char.isdigit()]
    if len(digits) < 8:
        return "*" * len(phone)
    national = digits[2:] if phone.startswith("+86") else digits
    if len(national) < 8:
        national = digits
    hidden = set(national[3:-4])
    return "".join("*" if i in hidden else char for i, char in enumerate(phone))


def mask_email(email: str) -> str:
    """``alice@example.com`` -> ``a***@example.com``."""
    local, at, domain = email.partition("@")
    if not at or not local:
        return "***"
    return f"{local[0]}***@{domain}"


def contact_visible(connection: sa.Connection, principal: Principal, customer_id: str) -> bool:
    """Whether ``principal`` may see this customer's phone and email unmasked."""
    if principal.sees_personal_data:
        return True
    if Role.AGENT not in principal.roles or principal.user_id is None:
        return False
    held = connection.execute(
        sa.select(SERVICE_TASKS.c.task_id)
        .where(
            SERVICE_TASKS.c.customer_id == customer_id,
            SERVICE_TASKS.c.assignee == principal.user_id,
            SERVICE_TASKS.c.status.in_(OPEN_TASK_STATUSES),
        )
        .limit(1)
    ).first()
    return held is not None
