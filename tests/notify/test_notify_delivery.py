"""Queueing and delivering shipment confirmations: real SMTP on loopback, retries, crashes, .eml outbox."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime, timedelta
from pathlib import Path

import attrs
import pytest
from notify_data import BRANDED, make_order, make_shipment

from connector_core import host_settings
from connector_core.db import OrderBook
from connector_core.notify import (
    EmlOutboxSender,
    SmtpSender,
    deliver_pending,
    get_notification,
    list_notifications,
    queue_for_shipment,
    retry_failed,
    sender_for_settings,
)
from connector_core.secrets import redact
from connector_core.testing.smtp import loopback_smtp

T0 = datetime(2024, 5, 3, 15, 0, tzinfo=UTC)


def _queue(book: OrderBook, settings: host_settings.HostSettings, outbox_id: int = 1, **order_changes: object) -> int:
    order = make_order(**order_changes)
    book.save_page("lumiere", [order])
    nid = queue_for_shipment(
        book.conn,
        store="lumiere",
        outbox_id=outbox_id,
        order=order,
        shipment=make_shipment(order),
        settings=settings,
        now=T0,
    )
    assert nid is not None
    return nid


def test_real_smtp_server_receives_exactly_one_branded_message(
    book: OrderBook, settings: host_settings.HostSettings
) -> None:
    """One queued shipment arrives once at a loopback SMTP server, with subject, recipient, tracking and branding."""
    _queue(book, settings)
    with loopback_smtp() as server:
        sender = SmtpSender("127.0.0.1", server.port, starttls=False, timeout=10)
        first = deliver_pending(book.conn, sender, now=T0)
        again = deliver_pending(book.conn, sender, now=T0 + timedelta(days=1))
        assert (first.sent, again.sent) == (1, 0)
        [got] = server.received
    msg = got.message
    assert got.rcpt_tos == ("alice@buyer.example",)
    assert got.mail_from == "care@lumiere.example"
    assert msg["Subject"] == "Maison Lumière: your order A1 has shipped"
    assert msg["To"].addresses[0].addr_spec == "alice@buyer.example"
    assert msg.get_content_type() == "multipart/alternative"
    text = msg.get_body(preferencelist=("plain",)).get_content()
    html = msg.get_body(preferencelist=("html",)).get_content()
    assert "TRK123456FR" in text and "TRK123456FR" in html
    assert "Maison Lumière" in html and "#AA3366" in html
    assert 'src="https://img.example/shoe.jpg"' in html
    [row] = list_notifications(book.conn)
    assert (row.state, row.attempts, row.message_id) == ("sent", 1, msg["Message-ID"])


def test_copy_to_seller_goes_to_the_envelope_only(book: OrderBook) -> None:
    """With copy_to_seller the seller is a blind recipient: in the envelope, not in the headers."""
    doc = {
        **BRANDED,
        "notifications": {**BRANDED["notifications"], "copy_to_seller": True, "seller_email": "boss@lumiere.example"},
    }
    settings = host_settings.load(doc)
    _queue(book, settings)
    with loopback_smtp() as server:
        deliver_pending(book.conn, SmtpSender("127.0.0.1", server.port, starttls=False, timeout=10), now=T0)
        [got] = server.received
    assert got.rcpt_tos == ("alice@buyer.example", "boss@lumiere.example")
    assert "boss@lumiere.example" not in got.raw.decode()


def test_queueing_twice_keeps_one_message(book: OrderBook, settings: host_settings.HostSettings) -> None:
    """Queueing the same shipment again (a re-push) returns the same row and sends nothing more."""
    first = _queue(book, settings)
    second = _queue(book, settings)
    assert first == second
    with loopback_smtp() as server:
        report = deliver_pending(book.conn, SmtpSender("127.0.0.1", server.port, starttls=False, timeout=10), now=T0)
        assert report.sent == 1
        assert len(server.received) == 1


def test_temporary_smtp_failure_is_retried_later_and_delivered_once(
    book: OrderBook, settings: host_settings.HostSettings
) -> None:
    """A 451 answer leaves the mail pending with one attempt counted; the next due run delivers it once."""
    nid = _queue(book, settings)
    with loopback_smtp() as server:
        server.fail_next.append("451 4.3.0 mailbox busy, try later")
        sender = SmtpSender("127.0.0.1", server.port, starttls=False, timeout=10)
        first = deliver_pending(book.conn, sender, now=T0)
        row = get_notification(book.conn, nid)
        assert row is not None
        assert (first.sent, first.retrying, row.state, row.attempts) == (0, 1, "pending", 1)
        assert "451" in (row.last_error or "")
        not_due = deliver_pending(book.conn, sender, now=T0 + timedelta(seconds=5))
        assert not_due.sent == 0 and server.received == []
        later = deliver_pending(book.conn, sender, now=T0 + timedelta(hours=1))
        assert later.sent == 1
        assert len(server.received) == 1
    row = get_notification(book.conn, nid)
    assert row is not None
    assert (row.state, row.attempts, row.last_error) == ("sent", 2, None)


def test_permanent_refusal_marks_failed_and_retry_requeues(
    book: OrderBook, settings: host_settings.HostSettings
) -> None:
    """A 550 answer fails the mail at once; `retry_failed` makes it due again and it is then delivered."""
    nid = _queue(book, settings)
    with loopback_smtp() as server:
        server.fail_next.append("550 5.1.1 no such user")
        sender = SmtpSender("127.0.0.1", server.port, starttls=False, timeout=10)
        assert deliver_pending(book.conn, sender, now=T0).failed == 1
        assert get_notification(book.conn, nid).state == "failed"  # type: ignore[union-attr]
        assert deliver_pending(book.conn, sender, now=T0 + timedelta(days=1)).sent == 0
        assert retry_failed(book.conn, store="lumiere", now=T0) == 1
        assert deliver_pending(book.conn, sender, now=T0 + timedelta(seconds=1)).sent == 1
        assert len(server.received) == 1


def test_unreachable_server_counts_attempts_until_max(book: OrderBook) -> None:
    """With no server listening, each due run counts an attempt; after max_attempts the mail is failed."""
    doc = {**BRANDED, "notifications": {**BRANDED["notifications"], "max_attempts": 2}}
    settings = host_settings.load(doc)
    nid = _queue(book, settings)
    with loopback_smtp() as server:
        port = server.port
    sender = SmtpSender("127.0.0.1", port, starttls=False, timeout=5)  # the server is gone: connection refused
    assert deliver_pending(book.conn, sender, now=T0).retrying == 1
    assert deliver_pending(book.conn, sender, now=T0 + timedelta(days=1)).failed == 1
    row = get_notification(book.conn, nid)
    assert row is not None
    assert (row.state, row.attempts) == ("failed", 2)
    assert "could not reach SMTP server 127.0.0.1" in (row.last_error or "")


def test_crash_while_sending_is_resent_with_same_message_id(
    book: OrderBook, settings: host_settings.HostSettings
) -> None:
    """A row left 'sending' by a crashed sender is sent after the lease, with the Message-ID stored before the crash."""
    nid = _queue(book, settings)
    stored_id = get_notification(book.conn, nid).message_id  # type: ignore[union-attr]
    book.conn.execute(
        "UPDATE notifications SET state = 'sending', attempts = 1, claimed_at = ? WHERE id = ?",
        ("2024-05-03T15:00:00.000000Z", nid),
    )
    with loopback_smtp() as server:
        sender = SmtpSender("127.0.0.1", server.port, starttls=False, timeout=10)
        within_lease = deliver_pending(book.conn, sender, now=T0 + timedelta(seconds=30), lease_seconds=600)
        assert within_lease.sent == 0
        after_lease = deliver_pending(book.conn, sender, now=T0 + timedelta(hours=1), lease_seconds=600)
        assert after_lease.sent == 1
        [got] = server.received
    assert got.message["Message-ID"] == stored_id


def test_login_failure_never_reveals_the_password(book: OrderBook, settings: host_settings.HostSettings) -> None:
    """A refused SMTP login is recorded with an actionable message and without the password."""
    nid = _queue(book, settings)
    with loopback_smtp(user="shop", password="right-password-1") as server:
        bad = SmtpSender("127.0.0.1", server.port, starttls=False, user="shop", password="wrong-Pa55word-9", timeout=10)
        assert "wrong-Pa55word-9" not in repr(bad)
        assert deliver_pending(book.conn, bad, now=T0).retrying == 1
        row = get_notification(book.conn, nid)
        assert row is not None
        assert "smtp.password" in (row.last_error or "")
        assert "wrong-Pa55word-9" not in (row.last_error or "")
        assert redact("pw wrong-Pa55word-9") == "pw ***"
        good = SmtpSender(
            "127.0.0.1", server.port, starttls=False, user="shop", password="right-password-1", timeout=10
        )
        assert deliver_pending(book.conn, good, now=T0 + timedelta(hours=1)).sent == 1
        assert len(server.received) == 1


def test_eml_outbox_is_the_default_without_smtp(
    book: OrderBook, settings: host_settings.HostSettings, tmp_path: Path
) -> None:
    """Without SMTP settings messages become .eml files; sending again rewrites the same single file."""
    nid = _queue(book, settings)
    sender = sender_for_settings(settings, tmp_path / "mail")
    assert isinstance(sender, EmlOutboxSender)
    assert deliver_pending(book.conn, lambda store: sender, now=T0).sent == 1
    book.conn.execute("UPDATE notifications SET state = 'pending' WHERE id = ?", (nid,))
    assert deliver_pending(book.conn, lambda store: sender, now=T0).sent == 1
    files = sorted((tmp_path / "mail").glob("*.eml"))
    assert len(files) == 1
    parsed = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert parsed["Subject"] == "Maison Lumière: your order A1 has shipped"
    assert parsed["Message-ID"] == get_notification(book.conn, nid).message_id  # type: ignore[union-attr]
    assert "TRK123456FR" in parsed.get_body(preferencelist=("plain",)).get_content()


def test_smtp_settings_choose_the_smtp_sender(tmp_path: Path) -> None:
    """With smtp.host set the store's sender is SMTP, and its password stays out of the repr."""
    settings = host_settings.load({"smtp": {"host": "127.0.0.1", "port": 2525, "password": "s3cret-value"}})
    sender = sender_for_settings(settings, tmp_path)
    assert isinstance(sender, SmtpSender)
    assert (sender.host, sender.port, sender.starttls) == ("127.0.0.1", 2525, True)
    assert "s3cret-value" not in repr(sender) and "s3cret-value" not in repr(settings)


def test_nothing_is_queued_when_turned_off(book: OrderBook) -> None:
    """With shipment_confirmation off, or a shipment that says not to notify, no row is made."""
    order = make_order()
    book.save_page("lumiere", [order])
    off = host_settings.load({})
    assert (
        queue_for_shipment(
            book.conn, store="lumiere", outbox_id=1, order=order, shipment=make_shipment(order), settings=off
        )
        is None
    )
    on = host_settings.load(BRANDED)
    quiet = make_shipment(order, notify_customer=False)
    assert queue_for_shipment(book.conn, store="lumiere", outbox_id=2, order=order, shipment=quiet, settings=on) is None
    assert list_notifications(book.conn) == []


def test_order_without_email_is_skipped_with_reason(book: OrderBook, settings: host_settings.HostSettings) -> None:
    """An order with no customer e-mail gets a 'skipped' row saying why, and nothing is sent."""
    order = make_order()
    nid = _queue(book, settings, customer=attrs.evolve(order.customer, email=None))
    row = get_notification(book.conn, nid)
    assert row is not None
    assert (row.state, row.last_error) == ("skipped", "the order has no customer e-mail address")
    assert deliver_pending(book.conn, EmlOutboxSender(Path("/nonexistent/never-written")), now=T0).sent == 0


@pytest.mark.parametrize("store_filter,expected", [("lumiere", 1), ("other", 0)])
def test_delivery_can_be_limited_to_one_store(
    book: OrderBook, settings: host_settings.HostSettings, tmp_path: Path, store_filter: str, expected: int
) -> None:
    """deliver_pending(store=...) sends only that store's mail."""
    _queue(book, settings)
    report = deliver_pending(book.conn, EmlOutboxSender(tmp_path / "out"), store=store_filter, now=T0)
    assert report.sent == expected
