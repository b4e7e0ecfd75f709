"""Real local receivers for deliveries: an SMTP server (aiosmtpd) and an HTTP webhook
receiver, both on loopback, recording what arrives.

Both dedupe the way their real counterparts let a sender make delivery exactly-once:
the webhook receiver by ``Idempotency-Key`` (a repeat is answered 200 and not kept
again), the SMTP sink by ``Message-ID``. ``repeats`` counts what was dropped, so a
test can tell "sent once" from "sent twice, deduped".
"""

from __future__ import annotations

import email
import email.policy
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass
class WebhookSink:
    url: str
    received: list[tuple[dict[str, str], Any]] = field(default_factory=list)
    repeats: int = 0
    script: list[int] = field(default_factory=list)
    """Status codes to answer first (e.g. [503, 400]); then 200."""
    delay: float = 0.0
    """Seconds to hold each request (a slow provider widens the window a crash can hit)."""
    _keys: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies(self) -> list[Any]:
        with self._lock:
            return [body for _, body in self.received]

    def take(self, headers: dict[str, str], raw: bytes) -> int:
        with self._lock:
            if self.script:
                return self.script.pop(0)
            key = headers.get("Idempotency-Key", "")
            if key and key in self._keys:
                self.repeats += 1
                return 200
            self._keys.add(key)
            self.received.append((headers, orjson.loads(raw)))
            return 200


@contextmanager
def webhook_sink() -> Iterator[WebhookSink]:
    holder: list[WebhookSink] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers["Content-Length"]))
            if holder[0].delay:
                time.sleep(holder[0].delay)
            status = holder[0].take(dict(self.headers), raw)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            del args

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder.append(WebhookSink(f"http://127.0.0.1:{server.server_address[1]}/hook"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield holder[0]
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class SmtpSink:
    host: str
    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    repeats: int = 0
    refuse: list[str] = field(default_factory=list)
    """SMTP replies to give to the next DATA commands (e.g. '451 try later')."""
    _ids: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        del server, session
        with self._lock:
            if self.refuse:
                return self.refuse.pop(0)
            raw = envelope.content if isinstance(envelope.content, bytes) else b""
            message = email.message_from_bytes(raw, policy=email.policy.default)
            assert isinstance(message, EmailMessage)
            identity = str(message["Message-ID"])
            if identity in self._ids:
                self.repeats += 1
            else:
                self._ids.add(identity)
                self.messages.append(message)
        return "250 OK"


@contextmanager
def smtp_sink() -> Iterator[SmtpSink]:
    with socket.socket() as probe:  # aiosmtpd cannot take port 0 itself (STACK.md)
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    sink = SmtpSink("127.0.0.1", port)
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()
