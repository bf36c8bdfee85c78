"""Crash safety of the outbox and the quarantine: a re-push after a lost acknowledgement changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from connector_spartoo.sandbox.server import SpartooSandbox
from reliability_kit import STORE, engine_on

from connector_core.db import OrderBook, Reject
from connector_core.models import Shipment


@pytest.fixture
def sandbox() -> Iterator[SpartooSandbox]:
    with SpartooSandbox(orders=30, seed=8, sites=["com"]) as s:
        yield s


def test_crash_between_push_and_acknowledgement_repushes_safely(sandbox: SpartooSandbox, tmp_path: Path) -> None:
    """A shipment that reached Spartoo but was never marked pushed is pushed again as already_applied, no update."""
    with OrderBook(tmp_path / "book.sqlite3") as book:
        engine = engine_on(book, sandbox.settings())
        engine.sync(STORE)
        order = next(o for o in book.iter_orders(STORE) if o.marketplace_status.code == "2")
        shipment = Shipment(
            store=STORE, order_key=order.order_key, tracking_number="TRK-9", ship_date=datetime.now(UTC)
        )
        outbox_id = engine.record_shipment(shipment)
        store = engine.store_context(STORE)
        try:
            engine.host.push_shipment(store, order, shipment)  # it lands on Spartoo; then the host dies
        finally:
            store.http.close()
        before = next(r for r in sandbox.orders() if r["order_key"] == order.order_key)
        assert book.get_shipment(outbox_id).state == "pending"

        report = engine.push(STORE)  # the restarted host drains its outbox

        after = next(r for r in sandbox.orders() if r["order_key"] == order.order_key)
        assert (report.pushed, report.already_applied, report.failed) == (1, 1, 0)
        assert book.get_shipment(outbox_id).state == "pushed"
        assert (after["status"], after["tracking_number"]) == ("3", "TRK-9")
        assert after["update_requests"] == before["update_requests"]  # nothing sent again
        assert after["update_count"] == before["update_count"]


def test_a_reject_seen_again_is_stored_once(tmp_path: Path) -> None:
    """The same payload rejected for the same reason in a later page is not quarantined twice; a new reason is."""
    with OrderBook(tmp_path / "book.sqlite3") as book:
        book.add_store("shop", "bazaar", {"token": "t"})
        reject = Reject(stage="mapping", reason="no shipping address", order_key="com:1", payload='{"a": 1}')
        book.save_page("shop", [], [reject])
        book.save_page("shop", [], [reject])
        book.save_page("shop", [], [Reject(stage="mapping", reason="bad total", order_key="com:1", payload="{}")])
        assert sorted(r.reason for r in book.list_rejected(store="shop")) == ["bad total", "no shipping address"]
