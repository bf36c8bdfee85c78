"""Customer e-mails: the shipment confirmation, queued and delivered once.

When a shipment has been pushed and the store's host settings say so
(``notifications.shipment_confirmation``), :func:`queue_for_shipment` renders
the confirmation (:mod:`connector_core.notify.render`) with the store's branding and stores the finished message
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
import json
import sqlite3
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, ExitStack
from datetime import datetime, timedelta
from typing import Any

import attrs

from connector_core import clock
from connector_core.clock import utc_iso
from connector_core.db.connection import transaction
from connector_core.errors import ConnectorError, DeliveryError
from connector_core.host_settings import HostSettings
from connector_core.models import Order, Shipment
from connector_core.notify.render import KIND_SHIPMENT, build_shipment_confirmation, customer_email, message_id_for
from connector_core.notify.senders import Sender, session
from connector_core.secrets import redact

STATES = ("pending", "sending", "sent", "failed", "skipped")
LEASE_SECONDS = 600.0
BACKOFF_BASE = 60.0
BACKOFF_MAX = 6 * 3600.0


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
    return utc_iso(value, fixed=True)


def _now(now: datetime | None) -> datetime:
    return now if now is not None else clock.now()


def _tx(conn: sqlite3.Connection) -> AbstractContextManager[sqlite3.Connection]:
    return transaction(conn, savepoint="notify")


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
    with ExitStack() as sessions:  # one session (one SMTP connection) per sender for the whole run
        return _deliver(conn, ids, sender_for, sessions, stamp, due_at, stale, where, now)


def _deliver(
    conn: sqlite3.Connection,
    ids: list[int],
    sender_for: Callable[[str], Sender] | Sender,
    sessions: ExitStack,
    stamp: datetime,
    due_at: str,
    stale: str,
    where: str,
    now: datetime | None,
) -> DeliveryReport:
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
            key = "" if hasattr(sender_for, "send") else row_store
            sender = senders.get(key)  # type: ignore[assignment]
            if sender is None:
                sender = sender_for if hasattr(sender_for, "send") else sender_for(row_store)  # type: ignore[operator]
                sessions.enter_context(session(sender))
                senders[key] = sender
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
