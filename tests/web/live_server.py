"""The real app on uvicorn in a background thread, on a free loopback port."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field

import uvicorn

from perennial.access.roles import Role
from perennial.access.users import create_user
from perennial.config import Settings
from perennial.service import create_app


@dataclass(frozen=True)
class Account:
    username: str
    password: str
    display_name: str


@dataclass
class LiveServer:
    """A running server with one seeded user per role (and one kept for lock-out tests)."""

    url: str
    settings: Settings
    accounts: dict[str, Account] = field(default_factory=dict)


SEEDED = {
    "admin": ("管理员小王", Role.ADMIN),
    "operator": ("运营小李", Role.OPERATOR),
    "agent": ("客服小张", Role.AGENT),
    "viewer": ("分析师小赵", Role.VIEWER),
    "lockable": ("会被锁定的人", Role.VIEWER),
}


def _seed(settings: Settings, app: object) -> dict[str, Account]:
    accounts = {}
    engine = app.state.perennial.engine  # type: ignore[attr-defined]
    with engine.begin() as connection:
        for username, (display_name, role) in SEEDED.items():
            created = create_user(
                connection,
                username=username,
                roles=frozenset({role}),
                actor="tests",
                display_name=display_name,
            )
            assert created.password is not None
            accounts[username] = Account(username, created.password, display_name)
    return accounts


class ServerThread(threading.Thread):
    def __init__(self, settings: Settings) -> None:
        super().__init__(name="live-server", daemon=True)
        self.app = create_app(settings)
        self.accounts = _seed(settings, self.app)
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            lifespan="on",
            ws="none",
            access_log=False,
            server_header=False,
        )
        self.server = uvicorn.Server(config)

    def run(self) -> None:
        self.server.run(sockets=[self.socket])

    def wait_started(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if time.monotonic() > deadline or not self.is_alive():
                raise RuntimeError("the live server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.join(timeout=15)
        self.socket.close()
