"""Where customer e-mails go: an SMTP server, or a folder of ``.eml`` files when there is none.

A delivery run (:func:`connector_core.notify.queue.deliver_pending`) opens one
:func:`session` per sender, so an SMTP server sees one connection (one TLS
handshake, one login) for every message of the run, not one per message.
"""

from __future__ import annotations

import os
import smtplib
import ssl
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from pathlib import Path
from typing import Protocol

import attrs

from connector_core.errors import DeliveryError
from connector_core.host_settings import HostSettings, SmtpSettings
from connector_core.secrets import register_secret


class Sender(Protocol):
    """Something that delivers one finished message."""

    def send(self, message: bytes, *, mail_from: str, recipients: Sequence[str], message_id: str) -> None:
        """Deliver ``message`` to ``recipients``; raise :class:`DeliveryError` on failure."""


def session(sender: Sender) -> AbstractContextManager[object]:
    """A delivery run on ``sender``: one SMTP connection for every message sent inside it.

    Senders without sessions (the ``.eml`` outbox, test doubles) get a block
    that does nothing.
    """
    opener = getattr(sender, "session", None)
    return opener() if callable(opener) else nullcontext()


@attrs.define
class SmtpSender:
    """Send through an SMTP server: optional STARTTLS, login when ``user`` is set.

    The password is registered as a secret: it appears in no repr, log or error.
    """

    host: str
    port: int = 587
    starttls: bool = True
    user: str | None = None
    password: str | None = attrs.field(default=None, repr=False)
    timeout: float = 30.0
    ssl_context: ssl.SSLContext | None = attrs.field(default=None, repr=False)
    _smtp: smtplib.SMTP | None = attrs.field(default=None, init=False, repr=False)
    _in_session: bool = attrs.field(default=False, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        register_secret(self.password)

    @classmethod
    def from_settings(cls, smtp: SmtpSettings) -> SmtpSender:
        """A sender for the store's ``smtp`` settings."""
        return cls(smtp.host, smtp.port, smtp.starttls, smtp.user, smtp.password, smtp.timeout)

    def _where(self) -> str:
        return f"SMTP server {self.host}:{self.port}"

    @contextmanager
    def session(self) -> Iterator[SmtpSender]:
        """Keep one connection open for every :meth:`send` inside the block (closed at its end)."""
        self._in_session = True
        try:
            yield self
        finally:
            self._in_session = False
            self._drop()

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            with suppress(smtplib.SMTPException, OSError):
                smtp.quit()
            with suppress(Exception):
                smtp.close()

    def _open(self) -> smtplib.SMTP:
        smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            smtp.ehlo()
            if self.starttls:
                smtp.starttls(context=self.ssl_context or ssl.create_default_context())
                smtp.ehlo()
            if self.user:
                smtp.login(self.user, self.password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def send(self, message: bytes, *, mail_from: str, recipients: Sequence[str], message_id: str) -> None:
        """Hand ``message`` to the server; a 4xx answer or a network error is transient, 5xx permanent.

        Inside :meth:`session` the connection is kept for the next message
        (and dropped after a failure, so the next one starts clean);
        outside it each message has a connection of its own.
        """
        try:
            if self._smtp is None:
                self._smtp = self._open()
            try:
                self._smtp.sendmail(mail_from, list(recipients), message)
            except smtplib.SMTPRecipientsRefused:
                if not self._in_session:
                    self._drop()
                else:
                    with suppress(smtplib.SMTPException, OSError):
                        self._smtp.rset()
                raise
            except BaseException:
                self._drop()
                raise
            if not self._in_session:
                self._drop()
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            detail = "; ".join(f"{rcpt}: {code} {_text(msg)}" for rcpt, (code, msg) in exc.recipients.items())
            raise DeliveryError(
                f"{self._where()} refused every recipient ({detail})", permanent=all(c >= 500 for c in codes)
            ) from None
        except smtplib.SMTPAuthenticationError as exc:
            self._drop()
            raise DeliveryError(
                f"{self._where()} refused the login of user {self.user!r} ({exc.smtp_code}): "
                "check smtp.user and smtp.password in the store settings"
            ) from None
        except smtplib.SMTPResponseException as exc:
            self._drop()
            raise DeliveryError(
                f"{self._where()} answered {exc.smtp_code} {_text(exc.smtp_error)}",
                permanent=500 <= exc.smtp_code < 600,
            ) from None
        except smtplib.SMTPNotSupportedError:
            self._drop()
            raise DeliveryError(
                f"{self._where()} does not offer STARTTLS: set smtp.starttls=false only if the link is private"
            ) from None
        except (smtplib.SMTPException, OSError) as exc:
            self._drop()
            raise DeliveryError(f"could not reach {self._where()}: {type(exc).__name__}: {exc}") from None


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


@attrs.define
class EmlOutboxSender:
    """Write each message as an ``.eml`` file into ``folder`` (the default without SMTP).

    Files are named after the Message-ID and written atomically, so sending
    the same message again replaces the same file.
    """

    folder: Path = attrs.field(converter=Path)

    def path_for(self, message_id: str) -> Path:
        """The file a message with ``message_id`` goes to."""
        stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in message_id.strip("<>"))
        return self.folder / f"{stem}.eml"

    def send(self, message: bytes, *, mail_from: str, recipients: Sequence[str], message_id: str) -> None:
        """Write the message file (``recipients`` are in its headers already)."""
        target = self.path_for(message_id)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".tmp-", suffix=".eml")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(message)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise DeliveryError(f"cannot write {target}: {exc.strerror}: check the notifications.outbox_dir") from None


def sender_for_settings(settings: HostSettings, default_outbox: Path) -> Sender:
    """The store's sender: SMTP when configured, else the ``.eml`` outbox folder."""
    if settings.smtp is not None:
        return SmtpSender.from_settings(settings.smtp)
    folder = settings.notifications.outbox_dir
    return EmlOutboxSender(Path(folder).expanduser() if folder else default_outbox)
