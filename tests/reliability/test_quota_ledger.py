"""The request ledger: with the quota's size given, no partner is sent more requests than its quota.

Spartoo counts requests per partner per clock hour and does not publish how
many; a store's ``requests_per_hour`` gives it. Every request of every store
of the partner then takes one from the book's ledger first, and the request
past the quota is refused before it is sent (a quota block, as a -429 would be).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from connector_spartoo.sandbox.server import SpartooSandbox
from ledger_kit import race
from reliability_kit import FAST, STORE, engine_on, settings_for, spartoo_host

from connector_core import quota
from connector_core.db import OrderBook
from connector_core.engine import Engine

HOUR = 3600.0


def test_an_aligned_window_gives_its_limit_then_refuses_until_the_next_window(tmp_path: Path) -> None:
    with OrderBook(tmp_path / "b.sqlite3") as book:

        def take(now: float, partner: str = "p") -> bool:
            return book.take_request("spartoo", partner, limit=3, window=HOUR, aligned=True, now=now)

        hour = 500 * HOUR
        assert [take(hour + s) for s in (0, 10, 20, 30, 3599)] == [True, True, True, False, False]
        assert take(hour, partner="other")  # each partner has its own count
        assert book.ledger_counts("spartoo", "p") == (3, 2)
        assert [take(hour + HOUR + s) for s in (0, 1, 2, 3)] == [True, True, True, False]  # the next clock hour
        assert book.ledger_counts("spartoo", "p") == (6, 3)


def test_a_rolling_window_lets_requests_back_in_as_the_count_drains(tmp_path: Path) -> None:
    with OrderBook(tmp_path / "b.sqlite3") as book:

        def take(now: float) -> bool:
            return book.take_request("m", "p", limit=2, window=10, aligned=False, now=now)

        assert [take(100), take(100), take(100)] == [True, True, False]
        assert not take(104)  # 0.8 drained: not yet room for one
        assert take(105)  # one drained (10 s / 2)
        assert not take(105)


def test_racing_processes_on_one_sqlite_book_get_exactly_the_limit(tmp_path: Path) -> None:
    given = race(str(tmp_path / "b.sqlite3"), tmp_path, processes=4, attempts=150, limit=333, now=7 * HOUR)
    assert sum(given) == 333
    assert sum(g > 0 for g in given) >= 2  # they really raced (SQLite's lock waits need not be fair)


def test_a_sync_stops_at_the_set_quota_before_spartoo_answers_429(tmp_path: Path) -> None:
    """requests_per_hour below the real quota: the sandbox counts exactly that many, never a -429; all deferred."""
    with (
        SpartooSandbox(orders=40, seed=3, sites=["com", "it"], quota_per_hour=100) as sandbox,
        OrderBook(tmp_path / "book.sqlite3") as book,
    ):
        engine = engine_on(book, {**sandbox.settings(), "requests_per_hour": 7})
        report = engine.sync(STORE)
        assert int(sandbox.counters()["requests"]) == 7
        assert report.quota_until is not None and report.deferred > 0
        until = datetime.fromisoformat(report.quota_until.replace("Z", "+00:00"))
        assert (until.minute, until.second) == (0, 0) and until > datetime.now(UTC)
        store = engine.store_context(STORE)
        marketplace, partner = quota.scope(engine, store)
        store.http.close()
        granted, refused = book.ledger_counts(marketplace, partner)
        assert granted == 7 and refused >= 1  # accepts run side by side: each may be refused before the block

        # A second store of the same partner, on its own engine (another process would do the same): not one request.
        book.add_store("twin", "spartoo", settings_for({**sandbox.settings(), "requests_per_hour": 7}))
        twin = Engine(spartoo_host(), book, http_policy=FAST).sync("twin")
        assert int(sandbox.counters()["requests"]) == 7
        assert twin.quota_until == report.quota_until


def test_without_a_size_the_ledger_counts_nothing(tmp_path: Path) -> None:
    with SpartooSandbox(orders=5, seed=3, sites=["com"]) as sandbox, OrderBook(tmp_path / "b.sqlite3") as book:
        engine_on(book, sandbox.settings()).sync(STORE)
        assert book.conn.execute("SELECT count(*) FROM quota_ledger").fetchone()[0] == 0
