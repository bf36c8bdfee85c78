"""Shipment e-mails through the engine: exactly one per shipment across crashes, failed ones retried later."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from connector_core import notify
from connector_core.db import OrderBook
from connector_core.engine import Engine
from connector_core.models import Shipment
from connector_core.testing.smtp import RecordingHandler, loopback_smtp


class Crash(BaseException):
    """Stands for the process dying: not an Exception, so nothing on the way catches it."""


@pytest.fixture
def smtp() -> Iterator[RecordingHandler]:
    """A real SMTP server on loopback."""
    with loopback_smtp() as server:
        yield server


@pytest.fixture
def mailing(engine: Engine, book: OrderBook, smtp: RecordingHandler) -> Engine:
    """The ``shop`` store with shipment confirmations on, sent to the loopback SMTP server; orders synced."""
    book.update_store(
        "shop",
        store_settings={
            "branding": {"display_name": "Shop", "sender_email": "care@shop.example"},
            "notifications": {"shipment_confirmation": True},
            "smtp": {"host": "127.0.0.1", "port": smtp.port, "starttls": False},
        },
    )
    engine.sync("shop")
    return engine


def _ship(key: str) -> Shipment:
    return Shipment(store="shop", order_key=key, tracking_number=f"TR-{key}", ship_date=datetime.now(UTC))


def _recipients(server: RecordingHandler) -> list[str]:
    return [m["To"].addresses[0].addr_spec for m in server.messages]


def test_crash_after_push_before_mail_is_queued_still_mails_once(
    mailing: Engine, book: OrderBook, smtp: RecordingHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dying after the marketplace took the shipment but before the e-mail was queued: the re-push mails once."""
    mailing.record_shipment(_ship("BZ0002"))

    def die(*args: object, **kwargs: object) -> None:
        raise Crash

    with monkeypatch.context() as m:
        m.setattr(notify, "queue_for_shipment", die)
        with pytest.raises(Crash):
            mailing.push("shop")
    assert [e.order_key for e in book.pending_shipments("shop")] == ["BZ0002"]
    report = mailing.push("shop")
    assert (report.pushed, report.already_applied) == (1, 1)
    assert _recipients(smtp) == ["buyer2@example.org"]
    mailing.push("shop")
    assert len(smtp.messages) == 1


def test_crash_after_mail_is_queued_before_push_is_recorded_mails_once(
    mailing: Engine, book: OrderBook, smtp: RecordingHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dying while a push is recorded leaves neither the e-mail nor the push recorded; the re-push mails once."""
    mailing.record_shipment(_ship("BZ0003"))

    def die(*args: object, **kwargs: object) -> None:
        raise Crash

    with monkeypatch.context() as m:
        m.setattr(book, "mark_pushed", die)
        with pytest.raises(Crash):
            mailing.push("shop")
    # the e-mail is queued in the same transaction as the push is recorded: both rolled back together
    assert notify.list_notifications(book.conn, store="shop") == []
    assert [e.order_key for e in book.pending_shipments("shop")] == ["BZ0003"]
    mailing.push("shop")
    assert _recipients(smtp) == ["buyer3@example.org"]
    assert [n.state for n in notify.list_notifications(book.conn, store="shop")] == ["sent"]


def test_failed_mail_is_retried_by_a_push_with_nothing_to_push(
    mailing: Engine, book: OrderBook, smtp: RecordingHandler
) -> None:
    """An e-mail refused for a while is sent by a later push even when the outbox is empty."""
    smtp.fail_next.append("451 4.3.0 try again later")
    mailing.record_shipment(_ship("BZ0004"))
    report = mailing.push("shop")
    assert report.pushed == 1
    assert smtp.messages == []
    [row] = notify.list_notifications(book.conn, store="shop")
    assert (row.state, row.attempts) == ("pending", 1)
    # make the retry due now instead of after the backoff
    with book.conn:
        book.conn.execute(
            "UPDATE notifications SET next_attempt_at = ? WHERE id = ?",
            ((datetime.now(UTC) - timedelta(seconds=1)).isoformat().replace("+00:00", "Z"), row.id),
        )
    assert mailing.push("shop").pushed == 0
    assert _recipients(smtp) == ["buyer4@example.org"]
