"""Security headers on every response, as pure ASGI middleware.

The Content-Security-Policy admits scripts, styles, images, fonts and connections
from this origin only: no inline script (pages load their JavaScript from
``/static``), no CDN, no framing (``frame-ancestors 'none'``, and X-Frame-Options
for older browsers). Inline *styles* are allowed because plotly.js cannot draw a
chart without them; they cannot run code. Pages also get ``Cache-Control:
no-store``: they show personal data that must not linger in a shared browser's
cache. FastAPI's own ``/docs`` (Swagger UI from a CDN) is left without the policy,
as it is a tool for developers.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CONTENT_SECURITY_POLICY", "SecurityHeaders"]

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        # plotly.js writes inline styles (style elements and attributes) to draw charts;
        # inline scripts stay forbidden, which is what stops injected code from running
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
_ALWAYS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
)
_CSP = (b"content-security-policy", CONTENT_SECURITY_POLICY.encode())
_NO_STORE = (b"cache-control", b"no-store")
_DEVELOPER_TOOLS = ("/docs", "/redoc")


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with_policy = not str(scope.get("path", "")).startswith(_DEVELOPER_TOOLS)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": _headers(message, with_policy)}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _headers(message: Message, with_policy: bool) -> list[tuple[bytes, bytes]]:
    headers: list[tuple[bytes, bytes]] = list(message.get("headers", []))
    present = {name.lower() for name, _ in headers}
    extra = list(_ALWAYS) + ([_CSP] if with_policy else [])
    content_type = next((value for name, value in headers if name.lower() == b"content-type"), b"")
    if content_type.startswith(b"text/html"):
        extra.append(_NO_STORE)
    return headers + [(name, value) for name, value in extra if name not in present]
