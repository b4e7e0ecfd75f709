"""Delivery sinks for bench_journeys.py, each in its own process: an HTTP webhook receiver
(uvicorn) and an SMTP server (aiosmtpd). Every delivery is appended to ``--out`` as
``<idempotency key or Message-ID>\\t<unix time received>``; the benchmark counts
duplicates and losses from that file after the run.

    python benchmarks/delivery_sinks.py webhook --port 9001 --out /tmp/hook.tsv
    python benchmarks/delivery_sinks.py smtp --port 9025 --out /tmp/mail.tsv
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any, TextIO

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def webhook_app(out: TextIO) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        more = True
        while more:
            message = await receive()
            more = bool(message.get("more_body"))
        key = dict(scope["headers"]).get(b"idempotency-key", b"").decode()
        out.write(f"{key}\t{time.time():.6f}\n")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    return app


class MailRecorder:
    def __init__(self, out: TextIO) -> None:
        self._out = out

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        del server, session
        content = envelope.content if isinstance(envelope.content, bytes) else b""
        headers = BytesHeaderParser().parsebytes(content)
        identity = str(headers.get("Message-ID", "")).strip()
        self._out.write(f"{identity}\t{time.time():.6f}\n")
        return "250 OK"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["webhook", "smtp"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    arguments = parser.parse_args()
    out = arguments.out.open("a", buffering=1 << 16)
    if arguments.kind == "webhook":
        import uvicorn

        config = uvicorn.Config(
            webhook_app(out),
            host="127.0.0.1",
            port=arguments.port,
            log_level="warning",
            access_log=False,
        )
        try:
            uvicorn.Server(config).run()
        finally:
            out.close()
        return
    from aiosmtpd.controller import Controller

    controller = Controller(MailRecorder(out), hostname="127.0.0.1", port=arguments.port)
    controller.start()
    stopping = asyncio.Event()

    def stop(*_: object) -> None:
        stopping.set()

    async def wait() -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop)
        loop.add_signal_handler(signal.SIGINT, stop)
        await stopping.wait()

    try:
        asyncio.run(wait())
    finally:
        controller.stop()
        out.close()
        sys.exit(0)


if __name__ == "__main__":
    main()
