"""The order path makes no round trips: status changes, existence checks and recorded pushes touch no document."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from bazaar_plugin import TOKEN

from connector_core.db import OrderBook
from connector_core.db import rows as rows_module
from connector_core.engine import Engine
from connector_core.models import MarketplaceStatus, OrderStatus, Shipment
from connector_core.push import outbox
from connector_core.sync.accepts import drain_accepts
from connector_core.testing.smtp import loopback_smtp


@contextmanager
def statements(book: OrderBook) -> Iterator[list[str]]:
    """Every SQL statement the book's connection runs inside the block."""
    seen: list[str] = []
    book.conn.set_trace_callback(seen.append)
    try:
        yield seen
    finally:
        book.conn.set_trace_callback(None)


@pytest.fixture
def no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading an order's document back fails the test."""

    def refuse(*args: object) -> None:
        raise AssertionError("an order's document was decoded")

    monkeypatch.setattr(rows_module, "from_columns", refuse)


def _writes(seen: list[str]) -> list[str]:
    """The write statements the host ran. SQLite's trace reports a statement once more for each trigger
    program it runs (the status history's), with the same text: such repeats are one statement."""
    issued = [s for i, s in enumerate(seen) if i == 0 or s != seen[i - 1]]
    return [s.split()[0] for s in issued if s.split()[0] in {"BEGIN", "INSERT", "UPDATE", "DELETE", "COMMIT"}]


def test_a_status_change_is_one_update_of_the_order(engine: Engine, book: OrderBook, monkeypatch) -> None:
    """Recording a status the host changed runs one UPDATE in one transaction, decoding nothing."""
    engine.sync("shop")
    calls: list[object] = []
    monkeypatch.setattr(rows_module, "from_columns", lambda *a: calls.append(a))
    with statements(book) as seen:
        book.update_order_status("shop", "BZ0001", OrderStatus.CANCELLED, MarketplaceStatus("void", "Cancelled"))
    monkeypatch.undo()
    assert calls == []
    assert _writes(seen) == ["BEGIN", "UPDATE", "COMMIT"]
    order = book.get_order("shop", "BZ0001")
    assert (order.status, order.marketplace_status) == (OrderStatus.CANCELLED, MarketplaceStatus("void", "Cancelled"))


def test_the_host_status_survives_a_resync_of_the_same_document(engine: Engine, book: OrderBook, bazaar) -> None:
    """An unchanged document synced again keeps the host's status; a changed one replaces it."""
    engine.sync("shop")
    book.update_order_status("shop", "BZ0002", OrderStatus.ON_HOLD, MarketplaceStatus("odd", "Odd"))
    book.set_cursor("shop", None)
    engine.sync("shop")
    assert book.get_order("shop", "BZ0002").marketplace_status.code == "odd"
    next(o for o in bazaar.orders if o["id"] == "BZ0002")["status"] = "sent"
    book.set_cursor("shop", None)
    engine.sync("shop")
    order = book.get_order("shop", "BZ0002")
    assert (order.status, order.marketplace_status.code) == (OrderStatus.SHIPPED, "sent")


def test_recording_a_shipment_checks_the_order_without_decoding_it(
    engine: Engine, book: OrderBook, no_decoding: None
) -> None:
    """add_shipment finds the order with SELECT 1: its document is never read back."""
    engine.sync("shop")
    outbox_id = engine.record_shipment(
        Shipment(store="shop", order_key="BZ0003", tracking_number="T-1", ship_date=datetime.now(UTC))
    )
    assert book.get_shipment(outbox_id).order_key == "BZ0003"


def test_a_recorded_push_is_one_transaction(engine: Engine, book: OrderBook) -> None:
    """Recording one push (outbox row, order status) is a single BEGIN ... COMMIT."""
    engine.sync("shop")
    outbox_id = engine.record_shipment(
        Shipment(store="shop", order_key="BZ0004", tracking_number="T-4", ship_date=datetime.now(UTC))
    )
    store = engine.store_context("shop")
    try:
        attempt = outbox.attempt_push(engine, store, outbox_id, "BZ0004", book.get_shipment(outbox_id).shipment)
        with statements(book) as seen:
            outcome = outbox.record_push(engine, store, attempt)
    finally:
        store.http.close()
    assert outcome.state == "pushed"
    assert [s for s in _writes(seen) if s in {"BEGIN", "COMMIT"}] == ["BEGIN", "COMMIT"]
    assert book.get_order("shop", "BZ0004").status is OrderStatus.SHIPPED


def test_a_batch_of_recorded_pushes_is_one_transaction(engine: Engine, book: OrderBook) -> None:
    """Pushes that finished together are recorded by one BEGIN ... COMMIT."""
    engine.sync("shop")
    keys = ["BZ0003", "BZ0004", "BZ0005"]
    ids = [
        engine.record_shipment(
            Shipment(store="shop", order_key=k, tracking_number=f"T-{k}", ship_date=datetime.now(UTC))
        )
        for k in keys
    ]
    store = engine.store_context("shop")
    try:
        attempts = [
            outbox.attempt_push(engine, store, i, k, book.get_shipment(i).shipment)
            for i, k in zip(ids, keys, strict=True)
        ]
        with statements(book) as seen:
            outcomes = outbox.record_pushes(engine, store, attempts)
    finally:
        store.http.close()
    assert [o.state for o in outcomes] == ["pushed"] * 3
    assert [s for s in _writes(seen) if s in {"BEGIN", "COMMIT"}] == ["BEGIN", "COMMIT"]
    assert {book.get_order("shop", k).status for k in keys} == {OrderStatus.SHIPPED}


def test_the_recorder_gathers_pushes_that_finish_close_together(monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch is the first finished push and every other one within BATCH_WAIT, at most BATCH_MAX."""
    import queue
    import threading
    import time

    from connector_core.push import concurrent

    results: queue.SimpleQueue = queue.SimpleQueue()
    for n in range(3):
        results.put(n)
    assert concurrent._next_batch(results, left=3) == [0, 1, 2]  # all there: no wait for more than left
    for n in range(concurrent.BATCH_MAX + 5):
        results.put(n)
    assert len(concurrent._next_batch(results, left=1000)) == concurrent.BATCH_MAX
    while not results.empty():
        results.get_nowait()
    monkeypatch.setattr(concurrent, "BATCH_WAIT", 2.0)  # long enough for a loaded machine's timer thread
    results.put("first")
    threading.Timer(0.05, results.put, args=("soon",)).start()
    assert concurrent._next_batch(results, left=2) == ["first", "soon"]  # left reached: no wait past it
    monkeypatch.setattr(concurrent, "BATCH_WAIT", 0.2)
    results.put("alone")
    started = time.monotonic()
    assert concurrent._next_batch(results, left=10) == ["alone"]
    assert 0.15 <= time.monotonic() - started < 5  # waited its BATCH_WAIT, then stopped: bounded


def test_a_page_of_auto_accepts_is_claimed_and_recorded_in_one_write_each(
    make_host, bazaar, book: OrderBook, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The accepts of a page are queued with it, claimed in one write before sending, recorded in one after."""
    book.add_store("auto", "bazaar", {"token": TOKEN, "auto_accept": True, "page_size": 5})
    engine = Engine(make_host(bazaar), book, workers=0)
    from connector_core.sync import runner

    real = runner.drain_accepts
    writes: list[list[str]] = []

    def counted(*args, **kwargs):
        with statements(book) as seen:
            result = real(*args, **kwargs)
        writes.append(_writes(seen))
        return result

    monkeypatch.setattr(runner, "drain_accepts", counted)
    report = engine.sync("auto")
    assert report.accepted == 5
    assert [w.count("BEGIN") for w in writes] == [2]  # the claim, then the results: not one per order
    assert {o.status for o in book.iter_orders("auto")} == {OrderStatus.AWAITING_SHIPMENT}
    assert [a.state for a in book.list_accepts(store="auto")] == ["done"] * 5


def test_an_interrupted_sync_leaves_its_accepts_to_the_next(
    make_host, bazaar, book: OrderBook, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sync stopped right after storing its page keeps the accept intents; the next sync sends them."""
    book.add_store("auto", "bazaar", {"token": TOKEN, "auto_accept": True, "page_size": 5})
    engine = Engine(make_host(bazaar), book, workers=0)
    from connector_core.sync import runner

    class Killed(BaseException):
        pass

    def die(*args: object, **kwargs: object) -> None:
        raise Killed

    with monkeypatch.context() as m:
        m.setattr(runner, "drain_accepts", die)
        with pytest.raises(Killed):
            engine.sync("auto")
    assert book.count_orders("auto") == 5
    assert book.count_pending_accepts("auto") == 5
    report = engine.sync("auto")  # nothing new to fetch: the accepts are drained all the same
    assert report.accepted == 5 and book.count_pending_accepts("auto") == 0
    assert {o.status for o in book.iter_orders("auto")} == {OrderStatus.AWAITING_SHIPMENT}


def test_one_smtp_session_per_delivery_run(engine: Engine, book: OrderBook) -> None:
    """Three shipment e-mails in one push go over one SMTP connection (one client port)."""
    with loopback_smtp() as smtp:
        book.update_store(
            "shop",
            store_settings={
                "branding": {"display_name": "Shop", "sender_email": "care@shop.example"},
                "notifications": {"shipment_confirmation": True},
                "smtp": {"host": "127.0.0.1", "port": smtp.port, "starttls": False},
            },
        )
        engine.sync("shop")
        for key in ("BZ0001", "BZ0002", "BZ0003"):
            engine.record_shipment(
                Shipment(store="shop", order_key=key, tracking_number=f"T-{key}", ship_date=datetime.now(UTC))
            )
        report = engine.push("shop")
        assert report.pushed == 3
        assert len(smtp.received) == 3
        peers = {r.peer for r in smtp.received}
        assert len(peers) == 1 and None not in peers


def test_accepts_sent_before_a_crash_are_not_sent_again(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A drain killed after some accepts reached Spartoo: the next sync reads those orders back, sends each once."""
    from connector_spartoo.sandbox.server import SpartooSandbox

    from connector_core.plugins import PluginHost

    class Killed(BaseException):
        pass

    with SpartooSandbox(orders=40, seed=5) as sandbox, OrderBook(tmp_path / "b.sqlite3") as book:
        host = PluginHost.create()
        book.add_store("sp", "spartoo", {**sandbox.settings(), "initial_lookback_days": 40})
        engine = Engine(host, book, workers=0, accept_concurrency=1)
        real = host.accept_order
        sent: list[str] = []

        def dies_after_three(store, order):  # type: ignore[no-untyped-def]
            change = real(store, order)  # reaches the sandbox
            sent.append(order.order_key)
            if len(sent) == 3:
                raise Killed
            return change

        with monkeypatch.context() as m:
            m.setattr(host, "accept_order", dies_after_three)
            with pytest.raises(Killed):
                engine.sync("sp")
        assert len(sent) == 3 and book.count_pending_accepts("sp") > 3
        # the next drain sees no fresh copy of those orders (as when a sync fetches nothing new)
        store = engine.store_context("sp")
        try:
            report = drain_accepts(engine, store)
        finally:
            store.http.close()
        assert book.count_pending_accepts("sp") == 0 and report.accepted > 3
        updates = {o["order_key"]: o["update_requests"] for o in sandbox.orders()}
        assert all(updates[key] == 1 for key in sent)
        assert max(updates.values()) == 1
