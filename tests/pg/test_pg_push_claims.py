"""Two pushers of one store on the PostgreSQL book share its outbox: each shipment claimed, sent and recorded once."""

from __future__ import annotations

import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from connector_spartoo.sandbox.server import SpartooSandbox

from connector_core.db import open_book
from connector_core.db.postgres.book import PostgresBook
from connector_core.errors import LeaseBusyError
from connector_core.models import Shipment
from connector_core.push.outbox import PushReport

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reliability"))  # the reliability tests' helpers

from reliability_kit import STORE, engine_on


def test_shared_push_leases_admit_each_other_and_keep_a_sync_out(book: PostgresBook, pg_url: str) -> None:
    with open_book(pg_url) as other, open_book(pg_url) as third:
        with (
            book.lease("shop", purpose="push", shared=True),
            other.lease("shop", purpose="push", shared=True),
            pytest.raises(LeaseBusyError, match="push"),
        ):
            third.lease("shop", purpose="sync")
        with book.lease("shop", purpose="sync"), pytest.raises(LeaseBusyError, match="sync"):
            other.lease("shop", purpose="push", shared=True)


def test_two_pushers_at_once_send_every_shipment_exactly_once(pg_url: str) -> None:
    with SpartooSandbox(orders=40, seed=8, sites=["com"], latency=30) as sandbox:
        with open_book(pg_url) as book:
            engine = engine_on(book, sandbox.settings())  # type: ignore[arg-type]
            engine.sync(STORE)
            keys = [o.order_key for o in book.iter_orders(STORE) if o.marketplace_status.code == "2"][:24]
            for n, key in enumerate(keys):
                shipment = Shipment(store=STORE, order_key=key, tracking_number=f"TRK-{n}", ship_date=datetime.now(UTC))
                engine.record_shipment(shipment)
        before = sandbox.counters()["requests_by_script"].get("xml_maj_orders.php", 0)
        reports: list[PushReport] = []
        errors: list[BaseException] = []
        start = threading.Barrier(2, timeout=30)

        def push() -> None:
            try:
                with open_book(pg_url) as own:
                    pusher = engine_on(own, sandbox.settings())  # type: ignore[arg-type]
                    start.wait()
                    reports.append(pusher.push(STORE))
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=push) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors, errors
        assert sorted(r.pushed for r in reports) != [0, len(keys)]  # both pushed: neither waited for the other
        assert sum(r.pushed for r in reports) == len(keys)
        assert sandbox.counters()["requests_by_script"]["xml_maj_orders.php"] - before == len(keys)  # once each
        with open_book(pg_url) as book:
            assert {e.state for e in book.list_outbox(store=STORE)} == {"pushed"}
            shipped = {o.order_key for o in book.iter_orders(STORE) if o.marketplace_status.code == "3"}
        assert set(keys) <= shipped


def test_a_released_lease_frees_the_store_at_once(book: PostgresBook) -> None:
    # a bare close leaves the lock to the server's exit of that session, a moment later
    for _ in range(200):
        with book.lease("shop", purpose="push", shared=True):
            pass
        with book.lease("shop", purpose="sync"):
            pass


def test_a_pusher_beside_another_ends_only_the_runs_whose_session_is_gone(pg_url: str) -> None:
    """With the lease shared, a push ends a run left by a dead process, never a live pusher's run."""
    with SpartooSandbox(orders=20, seed=8, sites=["com"]) as sandbox, open_book(pg_url) as book:
        engine = engine_on(book, sandbox.settings())  # type: ignore[arg-type]
        engine.sync(STORE)
        key = next(o.order_key for o in book.iter_orders(STORE) if o.marketplace_status.code == "2")
        shipment = Shipment(store=STORE, order_key=key, tracking_number="TRK-1", ship_date=datetime.now(UTC))
        engine.record_shipment(shipment)
        live = open_book(pg_url)
        try:
            live_run = live.start_run("push", STORE)
            doomed = open_book(pg_url)
            dead_run = doomed.start_run("push", STORE)
            pid = doomed.conn.execute("SELECT pg_backend_pid()").fetchone()[0]
            doomed.close()  # its process is gone: so is its session
            deadline = time.monotonic() + 10
            while book.conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ?", (pid,)).fetchone()[0]:
                assert time.monotonic() < deadline, "the closed session did not end"
                time.sleep(0.05)
            with live.lease(STORE, purpose="push", shared=True):  # another pusher shares the store's lease
                assert engine.push(STORE).pushed == 1
        finally:
            live.close()
        assert book.get_run(dead_run).state == "interrupted"
        assert book.get_run(live_run).state == "running"  # its process lives: not ours to end
