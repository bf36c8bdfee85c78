"""Two host processes on one order book: leases keep them from syncing or pushing the same store twice."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import attrs
import pytest
from connector_spartoo.sandbox.server import SpartooSandbox
from reliability_kit import FAST, STORE, engine_on

from connector_core.db import OrderBook
from connector_core.db.leases import LeaseBusyError, make_owner, try_acquire
from connector_core.models import Shipment

CLI = [sys.executable, "-c", "from connector_core.cli import main; main()"]


@pytest.fixture
def sandbox() -> Iterator[SpartooSandbox]:
    with SpartooSandbox(orders=120, seed=6, sites=["com", "it"], latency=5) as s:
        yield s


def _env(db: Path) -> dict[str, str]:
    env = {**os.environ, "CONNECTOR_HOST_DB": str(db), "CONNECTOR_HOST_HTTP_POLICY": json.dumps(attrs.asdict(FAST))}
    env.pop("CONNECTOR_HOST_EXTRA", None)
    return env


def _both(db: Path, *args: str) -> list[subprocess.CompletedProcess[str]]:
    """Start two host processes with the same command at once; wait for both."""
    procs = [
        subprocess.Popen([*CLI, *args], env=_env(db), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        results.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return results


def test_two_processes_sync_and_push_each_thing_once(sandbox: SpartooSandbox, tmp_path: Path) -> None:
    """Two concurrent syncs import and accept each order once; two concurrent pushes ship each order once."""
    db = tmp_path / "book.sqlite3"
    with OrderBook(db) as book:
        engine_on(book, sandbox.settings())
    runs = _both(db, "sync", "--store", STORE, "--json")
    assert [r.returncode for r in runs] == [0, 0], [r.stderr for r in runs]
    reports = [json.loads(r.stdout)[0] for r in runs]
    valid = [r for r in sandbox.orders() if r["valid"]]
    assert sum(r["inserted"] for r in reports) == len(valid)  # the second run found them all in the book
    accepted = sum(r["accepted"] for r in reports)
    assert accepted > 0
    assert accepted == sum(r["update_count"] for r in sandbox.orders())  # one real change per accept
    assert all(r["update_requests"] == r["update_count"] for r in sandbox.orders())  # no accept sent twice

    with OrderBook(db) as book:
        engine = engine_on(book, sandbox.settings())
        keys = [o.order_key for o in book.iter_orders(STORE) if o.marketplace_status.code == "2"][:20]
        for i, key in enumerate(keys):
            engine.record_shipment(
                Shipment(store=STORE, order_key=key, tracking_number=f"CC{i:04d}", ship_date=datetime.now(UTC))
            )
    runs = _both(db, "push", "--store", STORE, "--json")
    assert [r.returncode for r in runs] == [0, 0], [r.stderr for r in runs]
    pushed = [json.loads(r.stdout)[0]["pushed"] for r in runs]
    assert sum(pushed) == len(keys)
    rows = {r["order_key"]: r for r in sandbox.orders()}
    assert all(rows[k]["status"] == "3" and rows[k]["update_requests"] == rows[k]["update_count"] for k in keys)


def test_a_held_lease_refuses_a_second_taker_and_is_released(tmp_path: Path) -> None:
    """While one owner holds a store's lease another cannot take it (LeaseBusyError); after release it can."""
    with OrderBook(tmp_path / "a.sqlite3") as first, OrderBook(tmp_path / "a.sqlite3") as second:
        with first.lease("shop", purpose="sync"):
            with pytest.raises(LeaseBusyError, match="another host process"):
                second.lease("shop", purpose="push")
            second.lease("other-shop", purpose="sync").release()  # leases are per store
        with second.lease("shop", purpose="push") as lease:
            assert lease.lost is False
        assert first.conn.execute("SELECT count(*) FROM leases").fetchone()[0] == 0


def test_a_stale_lease_is_taken_over(tmp_path: Path) -> None:
    """An expired lease, or one whose owner process is gone, is taken over at once."""
    with OrderBook(tmp_path / "a.sqlite3") as book:
        live_other_host = "elsewhere:1:abc"
        assert try_acquire(book.conn, "shop", live_other_host, "sync", ttl=-1.0) is None  # already expired
        assert try_acquire(book.conn, "shop", make_owner(), "sync", ttl=60.0) is None
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
        gone = f"{make_owner().split(':')[0]}:{dead.stdout.strip()}:dead"
        book.conn.execute("UPDATE leases SET owner = ?, expires_at = ? WHERE name = 'shop'", (gone, time.time() + 600))
        with book.lease("shop", purpose="sync") as lease:  # the owner process no longer exists
            assert lease.owner != gone
        assert try_acquire(book.conn, "shop", "elsewhere:2:x", "sync", ttl=600.0) is None
        with pytest.raises(LeaseBusyError):  # another machine's live lease is respected until it expires
            book.lease("shop", purpose="sync")


def test_a_busy_database_is_waited_for(tmp_path: Path) -> None:
    """A write while another connection holds the write lock waits for it instead of failing."""
    path = tmp_path / "a.sqlite3"
    with OrderBook(path) as book:
        other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")
        release = threading.Timer(0.5, lambda: other.execute("COMMIT"))
        release.start()
        try:
            book.add_store("shop", "bazaar", {"token": "t"})  # blocks on the lock, then succeeds
        finally:
            release.join()
            other.close()
        assert book.has_store("shop")
