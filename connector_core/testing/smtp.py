"""A real SMTP server on loopback for tests (needs ``aiosmtpd``, a test dependency).

::

    with loopback_smtp() as server:
        ...  # send to 127.0.0.1:server.port
        [message] = server.messages          # email.message.EmailMessage objects
        server.fail_next.append("451 4.3.0 try again later")  # refuse the next DATA

The server binds port 0 (a free port) on 127.0.0.1 only. With ``user`` and
``password`` it offers AUTH PLAIN/LOGIN without TLS (loopback only) and
accepts only that pair.
"""

from __future__ import annotations

import email
import email.policy
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from typing import Any

import attrs


@attrs.frozen
class Received:
    """One message as the server got it: envelope and parsed content."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage
    raw: bytes = attrs.field(repr=False)
    peer: Any = None
    """The client's address and port: messages of one SMTP session share it."""


@attrs.define
class RecordingHandler:
    """An aiosmtpd handler that keeps every message and can refuse the next ones."""

    received: list[Received] = attrs.field(factory=list)
    fail_next: list[str] = attrs.field(factory=list)
    port: int = 0
    _lock: threading.Lock = attrs.field(factory=threading.Lock)

    @property
    def messages(self) -> list[EmailMessage]:
        """The parsed messages received so far."""
        with self._lock:
            return [r.message for r in self.received]

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Store the message, or answer the next queued failure."""
        with self._lock:
            if self.fail_next:
                return self.fail_next.pop(0)
            raw = bytes(envelope.original_content or envelope.content)
            parsed = email.message_from_bytes(raw, policy=email.policy.default)
            assert isinstance(parsed, EmailMessage)
            self.received.append(
                Received(envelope.mail_from, tuple(envelope.rcpt_tos), parsed, raw, peer=getattr(session, "peer", None))
            )
        return "250 2.0.0 message accepted"


@contextmanager
def loopback_smtp(*, user: str | None = None, password: str | None = None) -> Iterator[RecordingHandler]:
    """Run an SMTP server on 127.0.0.1 (free port) for the ``with`` block; yield its handler."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    class _Controller(Controller):  # type: ignore[misc]
        def _trigger_server(self) -> None:
            # bound to port 0: learn the real port before the controller pokes the server
            server: Any = self.server
            self.port = server.sockets[0].getsockname()[1]
            super()._trigger_server()  # type: ignore[no-untyped-call]

    handler = RecordingHandler()
    kwargs: dict[str, Any] = {}
    if user is not None:

        def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
            ok = (
                getattr(auth_data, "login", None) == user.encode()
                and getattr(auth_data, "password", None) == (password or "").encode()
            )
            return AuthResult(success=ok, handled=False)

        kwargs = {"authenticator": authenticator, "auth_require_tls": False}
    controller = _Controller(handler, hostname="127.0.0.1", port=0, **kwargs)
    controller.start()
    handler.port = controller.port
    try:
        yield handler
    finally:
        controller.stop()
