"""The engine: sync (idempotent, cursor with its data, quarantine, status mapping, auto-accept) and push."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from bazaar_plugin import TOKEN, Bazaar, make_order

from connector_core.db import OrderBook
from connector_core.db import book as store_module
from connector_core.engine import Engine, SyncReport
from connector_core.errors import AuthError, TransientError, TransitionError
from connector_core.models import FieldOutcome, OrderStatus, Shipment
from connector_core.plugins import PluginHost
from connector_core.sync import runner as engine_module


def _ship(key: str, tracking: str = "TR-1", **kw: object) -> Shipment:
    return Shipment(store="shop", order_key=key, tracking_number=tracking, ship_date=datetime.now(UTC), **kw)


def test_sync_twice_keeps_one_copy(engine: Engine, book: OrderBook) -> None:
    """Syncing the same orders twice leaves one copy of each; the second sync reports them unchanged."""
    first = engine.sync("shop")
    assert (first.inserted, first.updated, first.rejected) == (5, 0, 0)
    book.set_cursor("shop", None)  # force a full re-fetch of the same orders
    second = engine.sync("shop")
    assert (second.inserted, second.updated, second.unchanged) == (0, 0, 5)
    assert book.count_orders("shop") == 5
    keys = [o.order_key for o in book.iter_orders("shop")]
    assert keys == ["BZ0001", "BZ0002", "BZ0003", "BZ0004", "BZ0005"]


def test_changed_order_is_updated(engine: Engine, book: OrderBook, bazaar: Bazaar) -> None:
    """An order changed on the marketplace is rewritten on the next sync."""
    engine.sync("shop")
    changed = make_order(3, status="ok", total="25.00")
    changed["seq"] = 6  # changed orders come back after the cursor
    bazaar.orders[2] = changed
    report = engine.sync("shop")
    assert (report.inserted, report.updated) == (0, 1)
    order = book.get_order("shop", "BZ0003")
    assert str(order.total) == "25.00"
    assert order.status is OrderStatus.AWAITING_SHIPMENT
    assert book.count_orders("shop") == 5


def test_cursor_is_saved_with_its_page(engine: Engine, book: OrderBook, bazaar: Bazaar) -> None:
    """When fetching fails after a page, that page's orders and cursor are kept; the next sync resumes there."""
    bazaar.fail_after_pages = 1
    with pytest.raises(TransientError):
        engine.sync("shop")
    assert book.get_cursor("shop") == {"seq": 2}
    assert book.count_orders("shop") == 2
    bazaar.fail_after_pages = None
    report = engine.sync("shop")
    assert report.inserted == 3
    assert book.get_cursor("shop") == {"seq": 5}


def test_rejected_payloads_recorded_while_good_ones_land(make_host: Callable[..., PluginHost], book: OrderBook) -> None:
    """Bad payloads (schema, mapping, parse) are quarantined with reason and path; the others are stored."""
    plugin = Bazaar(
        orders=[make_order(1), make_order(2, total="12"), make_order(3, address=False), make_order(4)], page_size=10
    )
    plugin.broken_payloads = ["<order><id>BZ9"]
    book.add_store("shop", "bazaar", {"token": TOKEN})
    report = Engine(make_host(plugin), book).sync("shop")
    assert (report.inserted, report.rejected) == (2, 3)
    assert sorted(o.order_key for o in book.iter_orders("shop")) == ["BZ0001", "BZ0004"]
    rows = {r.stage: r for r in book.list_rejected(store="shop")}
    assert set(rows) == {"validation", "mapping", "parse"}
    assert rows["validation"].order_key == "BZ0002"
    assert rows["validation"].path == "$.total"
    assert rows["mapping"].reason == "the order has no shipping address"
    assert rows["mapping"].path == "$.address"
    assert rows["parse"].payload == "<order><id>BZ9"
    assert '"id": "BZ0003"' in (rows["mapping"].payload or "")


def test_unexpected_mapping_exception_is_quarantined(make_host: Callable[..., PluginHost], book: OrderBook) -> None:
    """A plugin bug on one payload (any exception in map_order) is a 'mapping' reject, not a failed sync."""
    odd = make_order(2)
    odd["buyer"] = {}  # map_order indexes buyer["name"]: KeyError
    plugin = Bazaar(orders=[make_order(1), odd], page_size=10)
    book.add_store("shop", "bazaar", {"token": TOKEN})
    report = Engine(make_host(plugin), book).sync("shop")
    assert (report.inserted, report.rejected) == (1, 1)
    [row] = book.list_rejected(store="shop")
    assert (row.stage, row.order_key) == ("mapping", "BZ0002")
    assert row.reason.startswith("KeyError")


def test_custom_status_mapping_overrides_default(engine: Engine, book: OrderBook) -> None:
    """A store's own status mapping wins over the plugin's default; unknown codes go on hold."""
    book.set_status_map("shop", "new", "on_hold")
    engine.sync("shop")
    assert {o.status for o in book.iter_orders("shop")} == {OrderStatus.ON_HOLD}
    book.set_status_map("shop", "new", None)
    store = engine.store_context("shop")
    try:
        assert engine.host.map_status(store, "new") is OrderStatus.PENDING_FULFILLMENT
        assert engine.host.map_status(store, "zzz") is OrderStatus.ON_HOLD
    finally:
        store.http.close()


def test_unknown_status_code_puts_order_on_hold(make_host: Callable[..., PluginHost], book: OrderBook) -> None:
    """An order whose marketplace status the plugin does not know is stored on hold."""
    plugin = Bazaar(orders=[make_order(1, status="odd")])
    book.add_store("shop", "bazaar", {"token": TOKEN})
    Engine(make_host(plugin), book).sync("shop")
    assert book.get_order("shop", "BZ0001").status is OrderStatus.ON_HOLD


def test_progress_gets_counts_per_page(engine: Engine) -> None:
    """The progress callback is called after every committed page with running counts."""
    seen: list[SyncReport] = []
    engine.sync("shop", progress=seen.append)
    assert [(r.pages, r.inserted) for r in seen] == [(1, 2), (2, 4), (3, 5)]


def test_sync_stores_large_pages_in_bulk_mode(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """From its first large page a sync writes with WAL checkpoints deferred (bulk_writes); small syncs never do."""
    during: list[int] = []
    engine.sync("shop", progress=lambda _r: during.append(_autocheckpoint(engine)))
    assert during == [1000] * 3  # pages of 2, 2 and 1 orders: SQLite's default all along
    engine.book.conn.execute("DELETE FROM cursors")
    monkeypatch.setattr(engine_module, "MIN_PAGE", 2)
    during.clear()
    Engine(engine.host, engine.book, workers=0).sync("shop", progress=lambda _r: during.append(_autocheckpoint(engine)))
    assert during == [store_module.BULK_CHECKPOINT_PAGES] * 3
    assert _autocheckpoint(engine) == 1000  # the mode ends with the sync


def _autocheckpoint(engine: Engine) -> int:
    return int(engine.book.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0])


def test_bad_credentials_stop_sync_before_fetching(make_host: Callable[..., PluginHost], book: OrderBook) -> None:
    """connect's AuthError ends the sync with the plugin's message; nothing is fetched."""
    plugin = Bazaar(orders=[make_order(1)])
    book.add_store("shop", "bazaar", {"token": "wrong-token"})
    with pytest.raises(AuthError, match="token may be wrong"):
        Engine(make_host(plugin), book).sync("shop")
    assert ("fetch_orders", "shop") not in plugin.calls
    assert book.count_orders("shop") == 0


def test_auto_accept_after_commit(make_host: Callable[..., PluginHost], book: OrderBook) -> None:
    """With auto-accept on, new orders are accepted and their new status recorded in the book."""
    plugin = Bazaar(orders=[make_order(1), make_order(2, status="void")])
    book.add_store("shop", "bazaar", {"token": TOKEN, "auto_accept": True})
    report = Engine(make_host(plugin), book).sync("shop")
    assert report.accepted == 1
    accepted = book.get_order("shop", "BZ0001")
    assert (accepted.status, accepted.marketplace_status.code) == (OrderStatus.AWAITING_SHIPMENT, "ok")
    assert book.get_order("shop", "BZ0002").status is OrderStatus.CANCELLED


def test_accept_and_cancel(engine: Engine, book: OrderBook, bazaar: Bazaar) -> None:
    """accept and cancel change the order on the marketplace and in the book; illegal changes raise."""
    engine.sync("shop")
    change = engine.accept("shop", "BZ0001")
    assert change.marketplace_status.code == "ok"
    assert book.get_order("shop", "BZ0001").status is OrderStatus.AWAITING_SHIPMENT
    assert engine.accept("shop", "BZ0001").already_applied is True
    engine.cancel("shop", "BZ0002", "out of stock")
    assert book.get_order("shop", "BZ0002").status is OrderStatus.CANCELLED
    bazaar.orders[2]["status"] = "sent"
    with pytest.raises(TransitionError, match="cannot be cancelled"):
        engine.cancel("shop", "BZ0003")


def test_push_sends_records_and_marks_shipped(engine: Engine, book: OrderBook, bazaar: Bazaar) -> None:
    """push sends the shipment, stores the per-field result and marks the order shipped locally."""
    engine.sync("shop")
    outbox_id = engine.record_shipment(_ship("BZ0001", carrier="UPS", service="Express"))
    report = engine.push("shop")
    assert (report.pushed, report.failed, report.retry) == (1, 0, 0)
    assert [s.tracking_number for s in bazaar.pushed] == ["TR-1"]
    entry = book.get_shipment(outbox_id)
    assert entry.state == "pushed"
    assert entry.result is not None
    assert entry.result.outcome("carrier") is FieldOutcome.SENT
    assert entry.result.outcome("service") is FieldOutcome.UNSUPPORTED
    assert book.get_order("shop", "BZ0001").status is OrderStatus.SHIPPED
    assert engine.push("shop").pushed == 0  # nothing left to push


def test_transient_push_failure_stays_pending(engine: Engine, book: OrderBook, bazaar: Bazaar) -> None:
    """A transient failure leaves the shipment pending with one more attempt and the error; it goes next time."""
    engine.sync("shop")
    outbox_id = engine.record_shipment(_ship("BZ0002"))
    bazaar.push_failures = 1
    report = engine.push("shop")
    assert (report.pushed, report.retry) == (0, 1)
    entry = book.get_shipment(outbox_id)
    assert (entry.state, entry.attempts, entry.last_error) == ("pending", 1, "bazaar is busy, try again")
    assert engine.push("shop").pushed == 1
    assert book.get_shipment(outbox_id).state == "pushed"


def test_transient_failures_give_up_after_max_attempts(host: PluginHost, book: OrderBook, bazaar: Bazaar) -> None:
    """After max_push_attempts transient failures the shipment is marked failed."""
    book.add_store("shop", "bazaar", {"token": TOKEN})
    engine = Engine(host, book, max_push_attempts=2)
    engine.sync("shop")
    outbox_id = engine.record_shipment(_ship("BZ0002"))
    bazaar.push_failures = 5
    assert engine.push("shop").retry == 1
    assert engine.push("shop").failed == 1
    assert book.get_shipment(outbox_id).state == "failed"


def test_refused_push_is_failed_with_reason(engine: Engine, book: OrderBook, bazaar: Bazaar) -> None:
    """A permanent refusal marks the shipment failed with the marketplace's reason."""
    engine.sync("shop")
    outbox_id = engine.record_shipment(_ship("BZ0003"))
    bazaar.refuse_push = True
    report = engine.push("shop")
    assert report.failed == 1
    entry = book.get_shipment(outbox_id)
    assert entry.state == "failed"
    assert entry.last_error == "order BZ0003 is cancelled: it cannot be shipped"
    assert book.get_order("shop", "BZ0003").status is OrderStatus.PENDING_FULFILLMENT


def test_repush_is_already_applied(engine: Engine, book: OrderBook, bazaar: Bazaar) -> None:
    """A shipment pushed again after a crash is reported already applied, not doubled."""
    engine.sync("shop")
    outbox_id = engine.record_shipment(_ship("BZ0004"))
    engine.push("shop")
    book.requeue_shipment(outbox_id)  # as if the answer was lost before it was recorded
    report = engine.push("shop")
    assert (report.pushed, report.already_applied) == (1, 1)
    assert len(bazaar.pushed) == 1


def test_already_applied_with_another_tracking_number_is_a_conflict(
    engine: Engine, book: OrderBook, bazaar: Bazaar
) -> None:
    """A marketplace's "already there" for a number it never got, the order shipped with another: a conflict."""
    engine.sync("shop")
    engine.record_shipment(_ship("BZ0004"))
    assert engine.push("shop").pushed == 1
    second = engine.record_shipment(_ship("BZ0004", tracking="TR-2"))
    bazaar.pushed.append(_ship("BZ0004", tracking="TR-2"))  # the plugin will answer already_applied
    report = engine.push("shop")
    assert (report.pushed, report.conflicts) == (0, 1)
    assert book.get_shipment(second).state == "conflict"


def test_a_run_left_running_by_a_dead_process_is_ended_by_the_next_one(engine: Engine, book: OrderBook) -> None:
    """A killed host leaves its runs row "running"; the next sync (or push) of the store, holding its lease, ends it."""
    dead_sync = book.start_run("sync", "shop")
    engine.sync("shop")
    engine.record_shipment(_ship("BZ0001"))
    dead_push = book.start_run("push", "shop")
    engine.push("shop")
    for dead in (dead_sync, dead_push):
        left = book.get_run(dead)
        assert (left.state, left.ended_at is not None) == ("interrupted", True)
        assert "killed, or cut off" in (left.error or "")
    assert {r.state for r in book.list_runs(store="shop").rows if r.id not in (dead_sync, dead_push)} == {"done"}


def test_a_concurrent_push_ends_a_push_run_left_by_a_dead_process(engine: Engine, book: OrderBook) -> None:
    """The push over several senders holds the store's lease alone too: a push row left running is ended."""
    engine.sync("shop")
    engine.record_shipment(_ship("BZ0001"))
    engine.record_shipment(_ship("BZ0004"))
    dead_push = book.start_run("push", "shop")
    assert engine.push("shop", concurrency=2).pushed == 2
    assert book.get_run(dead_push).state == "interrupted"
