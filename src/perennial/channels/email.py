"""Email over SMTP: text and HTML parts, one-click unsubscribe, STARTTLS and auth.

The standard library's :mod:`smtplib` and :mod:`email` do the protocol and the
MIME; what is ours is the policy: one connection per delivery thread kept open
across messages (a new TCP and TLS handshake per message would cap throughput
far below the 1,000/s target), reconnecting after an error; ``Message-ID`` derived from the
effect's idempotency key, so a repeat is recognisable downstream; RFC 8058
``List-Unsubscribe`` and ``List-Unsubscribe-Post`` headers on every marketing
message; SMTP 4xx answers and dropped connections are temporary (retried),
5xx refusals permanent.
"""

from __future__ import annotations

import smtplib
import ssl
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, parseaddr

from perennial.channels.base import DeliveryError, Outgoing
from perennial.channels.unsubscribe import unsubscribe_token

__all__ = ["SmtpChannel", "SmtpSettings"]


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 25
    sender: str = "Perennial <no-reply@localhost>"
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout: float = 30.0
    tls_context: ssl.SSLContext | None = None
    """For STARTTLS; default: the system's trust store with hostname checking."""


class SmtpChannel:
    def __init__(self, settings: SmtpSettings, *, secret: str, public_url: str) -> None:
        self._settings = settings
        self._secret = secret
        self._public_url = public_url.rstrip("/")
        self._local = threading.local()
        self._open: list[smtplib.SMTP] = []
        self._lock = threading.Lock()

    def deliver(self, message: Outgoing) -> None:
        email = self.compose(message)
        try:
            self._connect().send_message(email)
        except smtplib.SMTPResponseException as error:
            self._reset()
            temporary = 400 <= error.smtp_code < 500
            text = (
                error.smtp_error.decode(errors="replace")
                if isinstance(error.smtp_error, bytes)
                else str(error.smtp_error)
            )
            raise DeliveryError(f"SMTP {error.smtp_code}: {text}", temporary=temporary) from None
        except smtplib.SMTPRecipientsRefused as error:
            self._reset()
            codes = [code for code, _ in error.recipients.values()]
            temporary = all(400 <= code < 500 for code in codes)
            raise DeliveryError(
                f"recipient refused: {error.recipients}", temporary=temporary
            ) from None
        except (smtplib.SMTPException, OSError) as error:
            self._reset()
            raise DeliveryError(f"{type(error).__name__}: {error}", temporary=True) from None

    def compose(self, message: Outgoing) -> EmailMessage:
        """The MIME message for ``message`` (public for previews and tests)."""
        payload = message.payload
        recipient = str(payload.get("to") or "")
        if "@" not in parseaddr(recipient)[1]:
            raise DeliveryError(f"not an e-mail address: {recipient!r}", temporary=False)
        email = EmailMessage()
        email["From"] = self._settings.sender
        email["To"] = formataddr(("", recipient))
        email["Subject"] = str(payload.get("subject") or "")
        email["Message-ID"] = f"<{message.effect_key}@perennial>"
        if not payload.get("transactional"):
            link = self.unsubscribe_link(message.customer_id)
            email["List-Unsubscribe"] = f"<{link}>"
            email["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        email.set_content(str(payload.get("text") or ""))
        if payload.get("html"):
            email.add_alternative(str(payload["html"]), subtype="html")
        return email

    def unsubscribe_link(self, customer_id: str) -> str:
        token = unsubscribe_token(self._secret, customer_id, "email")
        return f"{self._public_url}/v1/unsubscribe/{token}"

    def close(self) -> None:
        with self._lock:
            connections, self._open = self._open, []
        for connection in connections:
            try:
                connection.quit()
            except (smtplib.SMTPException, OSError):
                connection.close()

    def _connect(self) -> smtplib.SMTP:
        """This thread's connection (deliveries run on several threads at once)."""
        current: smtplib.SMTP | None = getattr(self._local, "connection", None)
        if current is not None:
            return current
        settings = self._settings
        connection = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
        try:
            if settings.starttls:
                connection.starttls(context=settings.tls_context or ssl.create_default_context())
            if settings.username:
                connection.login(settings.username, settings.password or "")
        except BaseException:
            connection.close()
            raise
        self._local.connection = connection
        with self._lock:
            self._open.append(connection)
        return connection

    def _reset(self) -> None:
        current: smtplib.SMTP | None = getattr(self._local, "connection", None)
        if current is None:
            return
        self._local.connection = None
        with self._lock:
            if current in self._open:
                self._open.remove(current)
        try:
            current.close()
        except OSError:
            pass
