"""Roles and the principal a request acts as.

Four fixed roles rather than a permission matrix: the seeds' users are operations
(运营), customer service (客服), analysts who only look, and whoever administers the
system. A principal holds one or more roles; an endpoint names the roles it admits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal

__all__ = ["ALL_ROLES", "Principal", "Role", "parse_roles"]


class Role(StrEnum):
    ADMIN = "admin"
    """Manages users and keys, reads the audit log, and may do everything else."""
    OPERATOR = "operator"
    """运营: reads every customer unmasked, runs lifecycle work, (later) journeys and segments."""
    AGENT = "agent"
    """客服: reads customers with phone and email masked unless they hold a task for them."""
    VIEWER = "viewer"
    """Reads boards and customers (masked), changes nothing."""


ALL_ROLES = frozenset(Role)


@dataclass(frozen=True, slots=True)
class Principal:
    """The user or machine a request acts for."""

    subject: str
    """``user:<username>`` or ``key:<key id>``: what the audit log records."""
    roles: frozenset[Role]
    via: Literal["session", "api_key"]
    user_id: str | None = None
    expires_at: datetime | None = None
    """When the credential stops working (an API key's expiry); ``None``: no set end."""

    def has_any(self, roles: frozenset[Role]) -> bool:
        """Admins pass every role check; others need one of ``roles``."""
        return Role.ADMIN in self.roles or bool(self.roles & roles)

    @property
    def sees_personal_data(self) -> bool:
        """Phone and email unmasked for everyone except agents and viewers."""
        return bool(self.roles & {Role.ADMIN, Role.OPERATOR})


def parse_roles(text: str) -> frozenset[Role]:
    """``"operator,agent"`` -> roles; an unknown name raises ``ValueError`` naming it."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise ValueError("give at least one role: " + ", ".join(r.value for r in Role))
    unknown = [name for name in names if name not in Role._value2member_map_]
    if unknown:
        allowed = ", ".join(r.value for r in Role)
        raise ValueError(f"unknown role {unknown[0]!r}; roles are {allowed}")
    return frozenset(Role(name) for name in names)
