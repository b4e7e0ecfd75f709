"""Who may do what: users, roles, API keys, web sessions, masking and the audit log."""

from perennial.access.roles import Principal, Role

__all__ = ["Principal", "Role"]
