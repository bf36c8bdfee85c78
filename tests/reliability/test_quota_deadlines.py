"""Waits and quotas, durable and concurrent accepts: a quota block defers, every wait is bounded."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import attrs
import httpx
import pytest
from connector_spartoo.sandbox.server import SpartooSandbox
from reliability_kit import FAST, STORE, engine_on, settings_for, spartoo_host

from connector_core import http, quota
from connector_core.db import OrderBook
from connector_core.engine import Engine
from connector_core.errors import DeadlineError, Interrupted, QuotaError
from connector_core.http import HttpPolicy, RetryingClient
from connector_core.models import Shipment
from connector_core.store_context import StoreContext

HERE = Path(__file__).resolve().parent


def _requests(sandbox: SpartooSandbox) -> int:
    return int(sandbox.counters()["requests"])


def test_quota_answer_blocks_the_partner_defers_accepts_and_the_next_window_drains_them(tmp_path: Path) -> None:
    """A -429 mid-accepts: orders kept, sync ends with quota_until; no call while blocked; after the reset all sent."""
    with (
        SpartooSandbox(orders=40, seed=3, sites=["com"], quota_per_hour=12) as sandbox,
        OrderBook(tmp_path / "book.sqlite3") as book,
    ):
        engine = engine_on(book, sandbox.settings())
        first = engine.sync(STORE)
        assert first.inserted == book.count_orders(STORE) > 0
        assert first.quota_until is not None and first.deferred > 0
        assert first.deferred == book.count_pending_accepts(STORE)
        until = datetime.fromisoformat(first.quota_until.replace("Z", "+00:00"))
        assert (until.minute, until.second) == (0, 0) and until > datetime.now(UTC)  # the next clock hour
        calls = _requests(sandbox)
        second = engine.sync(STORE)  # still blocked: not one request
        assert _requests(sandbox) == calls
        assert (second.quota_until, second.deferred) == (first.quota_until, first.deferred)
        sandbox.state.quota_per_hour = 100_000  # the window resets ...
        store = engine.store_context(STORE)
        book.clear_quota(*quota.scope(engine, store))  # ... and the hour has passed
        store.http.close()
        third = engine.sync(STORE)
        assert third.quota_until is None and third.accepted == first.deferred
        assert book.count_pending_accepts(STORE) == 0
        valid = {r["order_key"] for r in sandbox.orders() if r["valid"]}
        assert not [r for r in sandbox.orders() if r["order_key"] in valid and r["status"] == "11"]


def test_a_blocked_quota_defers_pushes_without_a_call_or_a_counted_attempt(tmp_path: Path) -> None:
    """While the partner is blocked, push sends nothing: the shipment stays pending with the block's reason."""
    with SpartooSandbox(orders=10, seed=4, sites=["com"]) as sandbox, OrderBook(tmp_path / "b.sqlite3") as book:
        engine = engine_on(book, sandbox.settings())
        engine.sync(STORE)
        order = next(o for o in book.iter_orders(STORE) if o.marketplace_status.code == "2")
        engine.record_shipment(
            Shipment(store=STORE, order_key=order.order_key, tracking_number="TRK-1", ship_date=datetime.now(UTC))
        )
        store = engine.store_context(STORE)
        quota.block(engine, store, QuotaError("-429", retry_after=600))
        store.http.close()
        calls = _requests(sandbox)
        report = engine.push(STORE)
        assert _requests(sandbox) == calls
        assert (report.pushed, report.retry) == (0, 1)
        assert "quota used up until" in (report.outcomes[0].error or "")
        assert book.list_outbox(store=STORE)[0].attempts == 0


def test_quota_block_is_keyed_by_a_fingerprint_of_the_partner_never_the_id(tmp_path: Path) -> None:
    """Two stores of one partner share a block; the quotas table never holds the partner ID itself."""
    with OrderBook(tmp_path / "b.sqlite3") as book:
        settings = settings_for({"partner_id": "EF40F969744AF620", "base_url": "http://127.0.0.1:9/{site}/"})
        book.add_store("a", "spartoo", settings)
        book.add_store("b", "spartoo", settings)
        engine = Engine(spartoo_host(), book, http_policy=FAST)
        a, b = engine.store_context("a"), engine.store_context("b")
        quota.block(engine, a, QuotaError("Spartoo -429"))
        assert quota.blocked_until(engine, b) is not None
        dump = "\n".join(str(tuple(r)) for r in book.conn.execute("SELECT * FROM quotas"))
        assert "EF40F969744AF620" not in dump and quota.fingerprint("EF40F969744AF620") in dump
        a.http.close()
        b.http.close()


@pytest.fixture
def trickle() -> Iterator[str]:
    """A loopback HTTP server that promises 100 kB and sends one byte every 50 ms."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                try:
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
                    while not stop.wait(0.05):
                        conn.sendall(b"x")
                except OSError:
                    continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/mp/xml_maj_orders.php"
    stop.set()
    server.close()
    thread.join(5)


def test_a_trickling_answer_ends_at_the_request_deadline_naming_the_site(trickle: str) -> None:
    """1 byte per 50 ms under a 60 s read timeout: the 0.5 s request deadline ends it with a DeadlineError."""
    policy = HttpPolicy(read_timeout=60, request_deadline=0.5, max_attempts=3)
    with RetryingClient(policy) as client, pytest.raises(DeadlineError, match=r"127\.0\.0\.1.*request deadline"):
        client.request("POST", trickle, data={"x": "1"})


def test_a_sync_past_its_deadline_makes_no_request(tmp_path: Path) -> None:
    """A sync whose deadline has passed raises a DeadlineError naming the site before any request reaches it."""
    with SpartooSandbox(orders=5, seed=5, sites=["com"]) as sandbox, OrderBook(tmp_path / "b.sqlite3") as book:
        engine = engine_on(book, sandbox.settings())
        engine.http_policy = attrs.evolve(FAST, sync_deadline=0.0)
        with pytest.raises(DeadlineError, match=r"127\.0\.0\.1"):
            engine.sync(STORE)
        assert _requests(sandbox) == 0


def test_interrupt_ends_a_retry_wait() -> None:
    """interrupt() (what run's SIGTERM handler calls) ends a 30 s backoff wait with Interrupted."""
    timer = threading.Timer(0.05, http.interrupt)
    timer.start()
    try:
        with pytest.raises(Interrupted):
            http.interruptible_sleep(30)
    finally:
        timer.cancel()
        http.resume()


def test_retries_are_told_to_the_notice_callback() -> None:
    """Each retry is told in one line (what failed, the wait), so a terminal user sees why nothing moves."""
    answers = iter([httpx.Response(503), httpx.Response(200)])
    told: list[str] = []
    with RetryingClient(FAST, transport=httpx.MockTransport(lambda r: next(answers)), sleep=lambda s: None) as c:
        c.notice = told.append
        c.request("GET", "http://127.0.0.1:9/x")
    assert len(told) == 1 and "HTTP 503" in told[0] and "retrying in" in told[0]


CHILD = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {here!r})
    from reliability_kit import engine_on, STORE
    from connector_core.db import OrderBook
    book = OrderBook({db!r})
    engine = engine_on(book, {settings!r}, accept_concurrency=1)
    engine.sync(STORE)
    """
)


def test_sigkill_after_the_page_commit_only_delays_the_accepts(tmp_path: Path) -> None:
    """A sync killed while accepting: its page and accept intents are stored; the next sync sends every accept."""
    db = tmp_path / "book.sqlite3"
    with SpartooSandbox(orders=60, seed=6, sites=["com"], latency=40) as sandbox:
        with OrderBook(db) as book:
            book.add_store(STORE, "spartoo", settings_for(sandbox.settings()))
        accepted_before = sum(r["status"] == "2" for r in sandbox.orders())
        code = CHILD.format(here=str(HERE), db=str(db), settings=sandbox.settings())
        child = subprocess.Popen([sys.executable, "-c", code], env={**os.environ})
        killed_with_pending = 0
        try:
            with OrderBook(db) as watcher:
                end = time.monotonic() + 60
                while time.monotonic() < end and child.poll() is None:
                    pending = watcher.count_pending_accepts(STORE)  # the page and its intents are committed
                    sent = sum(r["status"] == "2" for r in sandbox.orders()) - accepted_before
                    if sent >= 2 and pending > 0:  # some accepts reached Spartoo, none recorded yet
                        child.send_signal(signal.SIGKILL)
                        killed_with_pending = pending
                        break
                    time.sleep(0.01)
        finally:
            child.wait(30)
        assert killed_with_pending > 0, "the child finished before it could be killed mid-accepts"
        sandbox.set_faults()
        with OrderBook(db) as book:
            engine = engine_on(book, sandbox.settings())
            engine.lease_wait = 0.0
            book.conn.execute("DELETE FROM leases")  # the killed process's lease (its pid is gone)
            report = engine.sync(STORE)
            assert book.count_pending_accepts(STORE) == 0
            assert report.accepted >= killed_with_pending
        waiting = [r for r in sandbox.orders() if r["valid"] and r["status"] == "11"]
        assert waiting == []


class _Counting(httpx.BaseTransport):
    """Passes requests to the sandbox, counting how many accepts are in flight at once."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.lock = threading.Lock()
        self.now = self.most = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        accept = request.url.path.endswith("xml_maj_orders.php")
        if accept:
            with self.lock:
                self.now += 1
                self.most = max(self.most, self.now)
        try:
            response = self.inner.handle_request(request)
            response.read()
            return response
        finally:
            if accept:
                with self.lock:
                    self.now -= 1

    def close(self) -> None:
        """Shared by every client of the test: closed once, at its end (:meth:`shut`)."""

    def shut(self) -> None:
        self.inner.close()


def test_accepts_are_drained_concurrently_within_the_concurrency_bound(tmp_path: Path) -> None:
    """With accept_concurrency 4, several accepts are in flight at once and never more than 4; all are done."""
    counting = _Counting()

    class Injected(Engine):
        def store_context(self, store_name: str) -> StoreContext:
            ctx = super().store_context(store_name)
            ctx.http.close()
            return attrs.evolve(ctx, http=RetryingClient(self.http_policy, transport=counting))

    with (
        SpartooSandbox(orders=40, seed=7, sites=["com"], latency=30) as sandbox,
        OrderBook(tmp_path / "b.sqlite3") as book,
    ):
        book.add_store(STORE, "spartoo", settings_for(sandbox.settings()))
        engine = Injected(spartoo_host(), book, http_policy=FAST, accept_concurrency=4)
        try:
            report = engine.sync(STORE)
        finally:
            counting.shut()
        assert report.accepted > 4 and book.count_pending_accepts(STORE) == 0
    assert 1 < counting.most <= 4
