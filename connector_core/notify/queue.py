"""Customer e-mails: the shipment confirmation, queued and delivered once.

When a shipment has been pushed and the store's host settings say so
(``notifications.shipment_confirmation``), :func:`queue_for_shipment` renders
the confirmation (Jinja2 templates ``templates/shipment_confirmation.{txt,html}.j2``,
HTML autoescaped) with the store's branding and stores the finished message
in the ``notifications`` table: one row per (store, outbox id). Then
:func:`deliver_pending` sends what is due through the store's sender: SMTP
(:class:`SmtpSender`) when ``smtp`` is set, otherwise :class:`EmlOutboxSender`,
which writes ``.eml`` files to a folder so that nothing needs a mail server.

Delivery guarantee, honestly: SMTP has no two-phase commit, so a crash after
the server accepted a message and before the row is marked ``sent`` cannot
be told apart from a crash before the server took it. We choose
**at-least-once** over at-most-once, because a lost shipment confirmation is
worse than a duplicate, and we make the duplicate harmless and rare:

- the message (bytes and ``Message-ID``) is built once, at queue time, and
  every retry sends exactly those bytes;
- the ``Message-ID`` is deterministic (a hash of store, outbox id, order and
  tracking number), so a receiving system or mail client that deduplicates
  on ``Message-ID`` shows one message; the ``.eml`` outbox names files by it,
  so a re-send overwrites the same file;
- a row is claimed (state ``sending``, attempt counted, claim time stored)
  in its own committed transaction before the send, and marked ``sent``
  right after; only a row left ``sending`` longer than the lease (a crashed
  sender) is sent again;
- a queue call for a shipment already queued changes nothing (a re-pushed
  shipment does not mean a second e-mail).

A failing server never blocks shipment pushes: errors are recorded on the
row (``attempts``, ``last_error``, never a password) and the row is retried
later with exponential backoff, until ``notifications.max_attempts``; a
permanent refusal (SMTP 5xx) marks it ``failed`` at once.
``connector-host notifications retry`` puts failed rows back to pending.
"""

from __future__ import annotations

import email.policy
import hashlib
import json
import os
import smtplib
import sqlite3
import ssl
import tempfile
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import attrs

from connector_core.errors import ConnectorError
from connector_core.host_settings import HostSettings, SmtpSettings
from connector_core.models import Address, Order, Shipment
from connector_core.secrets import redact, register_secret
from connector_core.sqlite_tx import write_transaction

KIND_SHIPMENT = "shipment_confirmation"
STATES = ("pending", "sending", "sent", "failed", "skipped")
LEASE_SECONDS = 600.0
BACKOFF_BASE = 60.0
BACKOFF_MAX = 6 * 3600.0

NOTIFICATIONS_DDL = """
CREATE TABLE notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    store TEXT NOT NULL REFERENCES stores(name) ON DELETE CASCADE,
    outbox_id INTEGER NOT NULL,
    kind TEXT NOT NULL DEFAULT 'shipment_confirmation',
    order_key TEXT NOT NULL,
    mail_from TEXT NOT NULL,
    recipients TEXT NOT NULL,
    subject TEXT NOT NULL,
    message_id TEXT NOT NULL,
    message BLOB NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'sending', 'sent', 'failed', 'skipped')),
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL DEFAULT 8,
    last_error TEXT,
    next_attempt_at TEXT NOT NULL,
    claimed_at TEXT,
    created_at TEXT NOT NULL,
    sent_at TEXT,
    UNIQUE (store, outbox_id, kind)
);
CREATE INDEX notifications_due ON notifications(state, next_attempt_at);
"""
"""DDL of the notifications table (a migration of the order book)."""


class DeliveryError(ConnectorError):
    """A message could not be handed to the mail server (or written to the outbox).

    ``permanent`` is true when retrying cannot help (e.g. SMTP 5xx: the
    recipient does not exist); the row is then marked ``failed``.
    """

    def __init__(self, message: str, *, permanent: bool = False, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.permanent = permanent


# -- senders -------------------------------------------------------------------


class Sender(Protocol):
    """Something that delivers one finished message."""

    def send(self, message: bytes, *, mail_from: str, recipients: Sequence[str], message_id: str) -> None:
        """Deliver ``message`` to ``recipients``; raise :class:`DeliveryError` on failure."""


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

    def __attrs_post_init__(self) -> None:
        register_secret(self.password)

    @classmethod
    def from_settings(cls, smtp: SmtpSettings) -> SmtpSender:
        """A sender for the store's ``smtp`` settings."""
        return cls(smtp.host, smtp.port, smtp.starttls, smtp.user, smtp.password, smtp.timeout)

    def _where(self) -> str:
        return f"SMTP server {self.host}:{self.port}"

    def send(self, message: bytes, *, mail_from: str, recipients: Sequence[str], message_id: str) -> None:
        """Hand ``message`` to the server; a 4xx answer or a network error is transient, 5xx permanent."""
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                smtp.ehlo()
                if self.starttls:
                    smtp.starttls(context=self.ssl_context or ssl.create_default_context())
                    smtp.ehlo()
                if self.user:
                    smtp.login(self.user, self.password or "")
                smtp.sendmail(mail_from, list(recipients), message)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            detail = "; ".join(f"{rcpt}: {code} {_text(msg)}" for rcpt, (code, msg) in exc.recipients.items())
            raise DeliveryError(
                f"{self._where()} refused every recipient ({detail})", permanent=all(c >= 500 for c in codes)
            ) from None
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(
                f"{self._where()} refused the login of user {self.user!r} ({exc.smtp_code}): "
                "check smtp.user and smtp.password in the store settings"
            ) from None
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(
                f"{self._where()} answered {exc.smtp_code} {_text(exc.smtp_error)}",
                permanent=500 <= exc.smtp_code < 600,
            ) from None
        except smtplib.SMTPNotSupportedError:
            raise DeliveryError(
                f"{self._where()} does not offer STARTTLS: set smtp.starttls=false only if the link is private"
            ) from None
        except (smtplib.SMTPException, OSError) as exc:
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


# -- rendering -----------------------------------------------------------------


@cache
def _environment() -> Any:
    import jinja2  # imported on first use: the order book loads this module for its DDL only

    return jinja2.Environment(
        loader=jinja2.PackageLoader("connector_core", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2", "html"), default_for_string=False),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=False,
    )


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _address_lines(address: Address | None) -> list[str]:
    if address is None:
        return []
    city = " ".join(p for p in (address.postal_code, address.city) if p)
    parts = [address.name, address.company, address.street1, address.street2, address.street3, city]
    parts += [address.state, address.country]
    return [p for p in parts if p]


def customer_email(order: Order) -> str | None:
    """The address the customer's e-mails go to: the buyer's, else the ship-to's or bill-to's."""
    for candidate in (order.customer.email, order.ship_to.email, order.bill_to.email if order.bill_to else None):
        if candidate and "@" in candidate:
            return candidate.strip()
    return None


def message_id_for(store: str, outbox_id: int, order: Order, shipment: Shipment, domain: str) -> str:
    """The deterministic Message-ID of a shipment confirmation."""
    digest = hashlib.sha256(
        "\x1f".join((KIND_SHIPMENT, store, str(outbox_id), order.order_key, shipment.tracking_number)).encode()
    ).hexdigest()[:32]
    return f"<shipment-{digest}@{domain}>"


def _shipped_items(order: Order, shipment: Shipment) -> list[dict[str, Any]]:
    wanted = {i.line_key: i.quantity for i in shipment.items}
    out = []
    for item in order.items:
        if wanted and item.line_key not in wanted:
            continue
        out.append(
            {
                "name": item.name,
                "sku": item.sku,
                "quantity": wanted.get(item.line_key, item.quantity),
                "image_url": item.image_url,
                "options": [{"name": o.name, "value": o.value} for o in item.options],
            }
        )
    return out


def build_shipment_confirmation(
    order: Order,
    shipment: Shipment,
    settings: HostSettings,
    *,
    store_name: str,
    recipient: str,
    message_id: str,
    date: datetime | None = None,
) -> EmailMessage:
    """The shipment confirmation as a ``multipart/alternative`` message (plain text + HTML)."""
    branding = settings.branding
    shop = _one_line(branding.display_name or store_name)
    sender_name = _one_line(branding.sender_name or shop)
    subject = _one_line(f"{shop}: your order {order.order_number} has shipped")
    notes = shipment.notes_to_buyer if settings.notifications.include_notes_to_buyer else None
    context = {
        "subject": subject,
        "shop_name": shop,
        "sender_name": sender_name,
        "logo_url": branding.logo_url,
        "accent_colour": branding.accent_colour,
        "footer_text": branding.footer_text,
        "customer_name": order.customer.name or order.ship_to.name,
        "order_number": order.order_number,
        "tracking_number": shipment.tracking_number,
        "carrier": shipment.carrier,
        "service": shipment.service,
        "ship_date": shipment.ship_date.date().isoformat(),
        "items": _shipped_items(order, shipment),
        "ship_to_lines": _address_lines(order.pickup_point.address if order.pickup_point else order.ship_to),
        "notes_to_buyer": notes.strip() if notes else None,
    }
    env = _environment()
    text = env.get_template("shipment_confirmation.txt.j2").render(context)
    html = env.get_template("shipment_confirmation.html.j2").render(context)
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = formataddr((sender_name, branding.sender_email or ""))
    msg["To"] = formataddr((_one_line(order.customer.name or ""), recipient))
    msg["Date"] = format_datetime(date or datetime.now(UTC))
    msg["Message-ID"] = message_id
    msg["X-Connector-Order"] = _one_line(f"{order.store} {order.order_key}")
    msg["X-Connector-Tracking"] = _one_line(shipment.tracking_number)
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    return msg


# -- the queue -----------------------------------------------------------------


@attrs.frozen
class Notification:
    """One row of the notifications table."""

    id: int
    store: str
    outbox_id: int
    kind: str
    order_key: str
    recipients: tuple[str, ...]
    subject: str
    message_id: str
    state: str
    attempts: int
    last_error: str | None
    next_attempt_at: str
    created_at: str
    sent_at: str | None


@attrs.frozen
class DeliveryReport:
    """What :func:`deliver_pending` did."""

    sent: int = 0
    retrying: int = 0
    failed: int = 0


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


def _tx(conn: sqlite3.Connection) -> AbstractContextManager[sqlite3.Connection]:
    return write_transaction(conn, "notify")


_COLUMNS = (
    "id, store, outbox_id, kind, order_key, recipients, subject, message_id, state, attempts, last_error,"
    " next_attempt_at, created_at, sent_at"
)


def _notification(row: Sequence[Any]) -> Notification:
    r = tuple(row)
    return Notification(
        id=r[0],
        store=r[1],
        outbox_id=r[2],
        kind=r[3],
        order_key=r[4],
        recipients=tuple(json.loads(r[5])),
        subject=r[6],
        message_id=r[7],
        state=r[8],
        attempts=r[9],
        last_error=r[10],
        next_attempt_at=r[11],
        created_at=r[12],
        sent_at=r[13],
    )


def get_notification(conn: sqlite3.Connection, notification_id: int) -> Notification | None:
    """One notification row, or ``None``."""
    row = conn.execute(f"SELECT {_COLUMNS} FROM notifications WHERE id = ?", (notification_id,)).fetchone()
    return None if row is None else _notification(row)


def list_notifications(
    conn: sqlite3.Connection, *, store: str | None = None, state: str | None = None
) -> list[Notification]:
    """Notification rows, oldest first."""
    sql = f"SELECT {_COLUMNS} FROM notifications WHERE 1 = 1"
    args: list[Any] = []
    if store is not None:
        sql += " AND store = ?"
        args.append(store)
    if state is not None:
        sql += " AND state = ?"
        args.append(state)
    return [_notification(r) for r in conn.execute(sql + " ORDER BY id", args)]


def message_bytes(conn: sqlite3.Connection, notification_id: int) -> bytes:
    """The stored message of a notification, exactly as it is (or was) sent."""
    row = conn.execute("SELECT message FROM notifications WHERE id = ?", (notification_id,)).fetchone()
    if row is None:
        raise ConnectorError(f"no notification with id {notification_id}")
    return bytes(row[0])


def queue_for_shipment(
    conn: sqlite3.Connection,
    *,
    store: str,
    outbox_id: int,
    order: Order,
    shipment: Shipment,
    settings: HostSettings,
    now: datetime | None = None,
) -> int | None:
    """Queue the shipment confirmation of one pushed shipment; return the row id.

    Returns ``None`` (and queues nothing) when the store's settings turn the
    confirmation off or the shipment says not to notify the customer. A
    shipment already queued keeps its row: the id is returned, nothing
    changes. An order without a customer e-mail gets a ``skipped`` row
    saying so.
    """
    prefs = settings.notifications
    if not prefs.shipment_confirmation or not shipment.notify_customer:
        return None
    existing = conn.execute(
        "SELECT id FROM notifications WHERE store = ? AND outbox_id = ? AND kind = ?",
        (store, outbox_id, KIND_SHIPMENT),
    ).fetchone()
    if existing is not None:
        return int(existing[0])
    stamp = _now(now)
    sender_email = settings.branding.sender_email or f"no-reply@{store}.invalid"
    domain = sender_email.rpartition("@")[2] or "localhost"
    message_id = message_id_for(store, outbox_id, order, shipment, domain)
    recipient = customer_email(order)
    state, error = "pending", None
    recipients: list[str] = []
    if recipient is None:
        state, error = "skipped", "the order has no customer e-mail address"
        message = b""
        subject = ""
    else:
        msg = build_shipment_confirmation(
            order, shipment, settings, store_name=store, recipient=recipient, message_id=message_id, date=stamp
        )
        message = msg.as_bytes(policy=email.policy.SMTP)
        subject = str(msg["Subject"])
        recipients = [recipient]
        if prefs.copy_to_seller and prefs.seller_email and prefs.seller_email != recipient:
            recipients.append(prefs.seller_email)
    with _tx(conn):
        conn.execute(
            "INSERT INTO notifications (store, outbox_id, kind, order_key, mail_from, recipients, subject, message_id,"
            " message, state, max_attempts, last_error, next_attempt_at, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (store, outbox_id, kind) DO NOTHING",
            (
                store,
                outbox_id,
                KIND_SHIPMENT,
                order.order_key,
                sender_email,
                json.dumps(recipients),
                subject,
                message_id,
                message,
                state,
                prefs.max_attempts,
                error,
                _iso(stamp),
                _iso(stamp),
            ),
        )
        row = conn.execute(
            "SELECT id FROM notifications WHERE store = ? AND outbox_id = ? AND kind = ?",
            (store, outbox_id, KIND_SHIPMENT),
        ).fetchone()
    return int(row[0])


def backoff(attempts: int) -> timedelta:
    """Wait before attempt ``attempts + 1``: 1 min, 2, 4, ... capped at 6 h."""
    return timedelta(seconds=min(BACKOFF_MAX, BACKOFF_BASE * 2 ** max(0, attempts - 1)))


def has_due(conn: sqlite3.Connection, *, store: str, now: datetime | None = None) -> bool:
    """Whether ``store`` has an e-mail waiting to be (re)sent now: see :func:`deliver_pending`."""
    stamp = _now(now)
    row = conn.execute(
        "SELECT 1 FROM notifications WHERE store = ? AND ((state = 'pending' AND next_attempt_at <= ?)"
        " OR (state = 'sending' AND claimed_at <= ?)) LIMIT 1",
        (store, _iso(stamp), _iso(stamp - timedelta(seconds=LEASE_SECONDS))),
    ).fetchone()
    return row is not None


def deliver_pending(
    conn: sqlite3.Connection,
    sender_for: Callable[[str], Sender] | Sender,
    *,
    store: str | None = None,
    now: datetime | None = None,
    lease_seconds: float = LEASE_SECONDS,
) -> DeliveryReport:
    """Send every notification that is due; return how many were sent, retried, failed.

    ``sender_for`` is a sender, or a function giving a store's sender.
    Due rows are ``pending`` ones whose ``next_attempt_at`` has come and
    ``sending`` ones claimed longer than ``lease_seconds`` ago (their sender
    crashed). Each row is claimed in a committed transaction before its
    send; a failure is recorded and never raised.
    """
    stamp = _now(now)
    due_at = _iso(stamp)
    stale = _iso(stamp - timedelta(seconds=lease_seconds))
    where = "((state = 'pending' AND next_attempt_at <= ?) OR (state = 'sending' AND claimed_at <= ?))"
    sql = f"SELECT id FROM notifications WHERE {where}"
    args: list[Any] = [due_at, stale]
    if store is not None:
        sql += " AND store = ?"
        args.append(store)
    ids = [int(r[0]) for r in conn.execute(sql + " ORDER BY id", args).fetchall()]
    sent = retrying = failed = 0
    senders: dict[str, Sender] = {}
    for nid in ids:
        with _tx(conn):
            claimed = conn.execute(
                f"UPDATE notifications SET state = 'sending', claimed_at = ?, attempts = attempts + 1"
                f" WHERE id = ? AND {where}",
                (due_at, nid, due_at, stale),
            ).rowcount
        if not claimed:
            continue  # someone else took it
        row = conn.execute(
            "SELECT store, mail_from, recipients, message_id, message, attempts, max_attempts"
            " FROM notifications WHERE id = ?",
            (nid,),
        ).fetchone()
        row_store, mail_from, recipients, message_id, message, attempts, max_attempts = tuple(row)
        try:
            if hasattr(sender_for, "send"):
                sender = sender_for
            else:
                sender = senders.get(row_store) or sender_for(row_store)
                senders[row_store] = sender
            sender.send(bytes(message), mail_from=mail_from, recipients=json.loads(recipients), message_id=message_id)
        except Exception as exc:
            permanent = isinstance(exc, DeliveryError) and exc.permanent
            reason = redact(str(exc) if isinstance(exc, ConnectorError) else f"{type(exc).__name__}: {exc}")
            if permanent or attempts >= max_attempts:
                failed += 1
                with _tx(conn):
                    conn.execute(
                        "UPDATE notifications SET state = 'failed', last_error = ?, claimed_at = NULL WHERE id = ?",
                        (reason, nid),
                    )
            else:
                retrying += 1
                with _tx(conn):
                    conn.execute(
                        "UPDATE notifications SET state = 'pending', last_error = ?, next_attempt_at = ?,"
                        " claimed_at = NULL WHERE id = ?",
                        (reason, _iso(stamp + backoff(attempts)), nid),
                    )
            continue
        sent += 1
        with _tx(conn):
            conn.execute(
                "UPDATE notifications SET state = 'sent', sent_at = ?, last_error = NULL, claimed_at = NULL"
                " WHERE id = ?",
                (_iso(_now(None) if now is None else stamp), nid),
            )
    return DeliveryReport(sent=sent, retrying=retrying, failed=failed)


def retry_failed(
    conn: sqlite3.Connection, *, store: str | None = None, ids: Sequence[int] = (), now: datetime | None = None
) -> int:
    """Put ``failed`` notifications (all, a store's, or the given ids) back to pending, due now; return how many."""
    sql = "UPDATE notifications SET state = 'pending', attempts = 0, next_attempt_at = ? WHERE state = 'failed'"
    args: list[Any] = [_iso(_now(now))]
    if store is not None:
        sql += " AND store = ?"
        args.append(store)
    if ids:
        sql += f" AND id IN ({','.join('?' * len(ids))})"
        args.extend(int(i) for i in ids)
    with _tx(conn):
        count = conn.execute(sql, args).rowcount
    return int(count)
