"""What every request needs, built once per app: settings, the operational engine,
the audit writer, and the background services the app runs while it serves."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Protocol, cast

from fastapi import Depends, Request
from sqlalchemy.engine import Engine

from perennial.access.audit import AuditWriter
from perennial.config import Settings

__all__ = ["AppState", "BackgroundService", "State", "app_state"]


class BackgroundService(Protocol):
    """Started when the server starts, stopped (drained) when it stops."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


@dataclass(slots=True)
class AppState:
    settings: Settings
    engine: Engine
    """The operational store (users, keys, sessions, audit, tasks, inbox)."""
    audit: AuditWriter
    services: list[BackgroundService] = field(default_factory=list)

    def start(self) -> None:
        for service in self.services:
            service.start()

    def stop(self) -> None:
        for service in reversed(self.services):
            service.stop()
        self.audit.close()
        self.engine.dispose()


def app_state(request: Request) -> AppState:
    return cast(AppState, request.app.state.perennial)


State = Annotated[AppState, Depends(app_state)]
"""Declare ``state: State`` in an endpoint to receive the app's state."""
