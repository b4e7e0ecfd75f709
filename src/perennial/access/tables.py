"""Operational-store tables of access control (schema owned by migration 0002)."""

from __future__ import annotations

import sqlalchemy as sa

from perennial.store.operational import METADATA, UtcTimestamp

__all__ = ["API_KEYS", "AUDIT_LOG", "SERVICE_TASKS", "USERS", "WEB_SESSIONS"]

_TS = UtcTimestamp()

USERS = sa.Table(
    "users",
    METADATA,
    sa.Column("user_id", sa.String(32), primary_key=True),
    sa.Column("username", sa.String(64), nullable=False, unique=True),
    sa.Column("display_name", sa.String(128), nullable=False),
    sa.Column("password_hash", sa.Text, nullable=False),
    sa.Column("roles", sa.String(64), nullable=False),
    sa.Column("disabled", sa.Boolean, nullable=False, default=False),
    sa.Column("failed_logins", sa.Integer, nullable=False, default=0),
    sa.Column("locked_until", _TS),
    sa.Column("created_at", _TS, nullable=False),
)

API_KEYS = sa.Table(
    "api_keys",
    METADATA,
    sa.Column("key_id", sa.String(16), primary_key=True),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("roles", sa.String(64), nullable=False),
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.Column("created_at", _TS, nullable=False),
    sa.Column("expires_at", _TS),
    sa.Column("revoked_at", _TS),
)

WEB_SESSIONS = sa.Table(
    "web_sessions",
    METADATA,
    sa.Column("session_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.String(32), sa.ForeignKey("users.user_id"), nullable=False),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("created_at", _TS, nullable=False),
    sa.Column("expires_at", _TS, nullable=False),
)

AUDIT_LOG = sa.Table(
    "audit_log",
    METADATA,
    sa.Column("audit_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", _TS, nullable=False),
    sa.Column("actor", sa.String(160), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("subject_type", sa.String(32), nullable=False),
    sa.Column("subject_id", sa.String(256), nullable=False),
    sa.Column("detail", sa.Text),
    sa.Column("client", sa.String(64)),
    sa.Index("ix_audit_log_at", "at"),
    sa.Index("ix_audit_log_subject", "subject_type", "subject_id"),
)

SERVICE_TASKS = sa.Table(
    "service_tasks",
    METADATA,
    sa.Column("task_id", sa.String(32), primary_key=True),
    sa.Column("customer_id", sa.String(256), nullable=False),
    sa.Column("assignee", sa.String(32), sa.ForeignKey("users.user_id")),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("created_at", _TS, nullable=False),
    sa.Column("due_at", _TS),
    sa.Column("team", sa.String(100)),
    sa.Column("priority", sa.String(16)),
    sa.Column("source", sa.String(160)),
    sa.Column("outcome", sa.String(32)),
    sa.Column("notes", sa.Text),
    sa.Column("closed_at", _TS),
    sa.Index("ix_service_tasks_assignee", "assignee", "customer_id"),
    sa.Index("ix_service_tasks_due", "status", "due_at"),  # migration 0007
    sa.Index("ix_service_tasks_team", "team", "status"),  # migration 0007
)
"""Customer-service call-back tasks (:mod:`perennial.tasks` creates, assigns and closes
them); here they decide whether an agent may see a customer's phone and email unmasked."""
