"""What every request needs, built once per app: settings, the operational engine,
the audit writer, and the background services the app runs while it serves."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Annotated, Protocol, cast

from fastapi import Depends, Request
from sqlalchemy.engine import Engine

from perennial.access.audit import AuditWriter
from perennial.access.roles import Principal
from perennial.config import Settings
from perennial.segments.service import SegmentService

__all__ = ["KEY_CACHE_SECONDS", "AppState", "BackgroundService", "KeyCache", "State", "app_state"]


class BackgroundService(Protocol):
    """Started when the server starts, stopped (drained) when it stops."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


KEY_CACHE_SECONDS = 5.0
"""How long a resolved API key is trusted without asking the store again: a key revoked
through this server stops at once; one revoked elsewhere (the CLI, another server) within
this many seconds."""


class KeyCache:
    """Resolved API keys by digest, so a busy client costs one store lookup per few seconds."""

    def __init__(self, seconds: float = KEY_CACHE_SECONDS) -> None:
        self._seconds = seconds
        self._entries: dict[str, tuple[Principal, float]] = {}

    def get(self, digest: str) -> Principal | None:
        entry = self._entries.get(digest)
        if entry is None or entry[1] < time.monotonic():
            return None
        return entry[0]

    def put(self, digest: str, principal: Principal, valid_until: float | None = None) -> None:
        """Remember ``principal`` for the cache period (or until ``valid_until``, monotonic)."""
        until = time.monotonic() + self._seconds
        if valid_until is not None:
            until = min(until, valid_until)
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[digest] = (principal, until)

    def clear(self) -> None:
        self._entries.clear()


@dataclass(slots=True)
class AppState:
    settings: Settings
    engine: Engine
    """The operational store (users, keys, sessions, audit, tasks, inbox)."""
    audit: AuditWriter
    services: list[BackgroundService] = field(default_factory=list)
    keys: KeyCache = field(default_factory=KeyCache)
    segments: SegmentService | None = None

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


async def _state_dependency(request: Request) -> AppState:
    """Async on purpose: FastAPI runs plain-function dependencies in a worker thread."""
    return app_state(request)


State = Annotated[AppState, Depends(_state_dependency)]
"""Declare ``state: State`` in an endpoint to receive the app's state."""
