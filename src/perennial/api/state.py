"""What every request needs, built once per app: settings and the operational engine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, cast

from fastapi import Depends, Request
from sqlalchemy.engine import Engine

from perennial.config import Settings

__all__ = ["AppState", "State", "app_state"]


@dataclass(slots=True)
class AppState:
    settings: Settings
    engine: Engine
    """The operational store (users, keys, sessions, audit, tasks, inbox)."""


def app_state(request: Request) -> AppState:
    return cast(AppState, request.app.state.perennial)


State = Annotated[AppState, Depends(app_state)]
"""Declare ``state: State`` in an endpoint to receive the app's state."""
