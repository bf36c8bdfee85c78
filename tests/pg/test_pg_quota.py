"""The request ledger and quota blocks on the PostgreSQL book, shared by processes on several machines."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from connector_spartoo.sandbox.server import SpartooSandbox
from ledger_kit import race

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reliability"))  # the reliability tests' helpers

from reliability_kit import STORE, engine_on

from connector_core.db import open_book


def test_four_processes_racing_for_the_ledger_get_exactly_the_limit(pg_url: str, tmp_path: Path) -> None:
    given = race(pg_url, tmp_path, processes=4, attempts=200, limit=500, now=9 * 3600.0)
    assert sum(given) == 500
    assert all(g > 0 for g in given)  # all four took requests in the same window
    with open_book(pg_url) as book:
        assert book.ledger_counts("spartoo", "racers") == (500, 300)


def test_a_block_written_by_one_connection_holds_for_every_other(pg_url: str) -> None:
    until = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=20)
    with open_book(pg_url) as one, open_book(pg_url) as other:
        one.block_quota("spartoo", "p", until, "-429")
        one.block_quota("spartoo", "p", until - timedelta(minutes=5), "an earlier end is not kept")
        assert other.quota_blocked_until("spartoo", "p") == until
        other.clear_quota("spartoo", "p")
        assert one.quota_blocked_until("spartoo", "p") is None


def test_a_quota_answer_mid_accepts_on_the_postgresql_book_defers_them(pg_url: str) -> None:
    """The sandbox answers -429 part way through the accepts: the sync ends cleanly, the rest wait unsent."""
    with SpartooSandbox(orders=40, seed=3, sites=["com"], quota_per_hour=12) as sandbox, open_book(pg_url) as book:
        report = engine_on(book, sandbox.settings()).sync(STORE)  # type: ignore[arg-type]
        assert report.quota_until is not None and report.deferred > 0
        pending = book.pending_accepts(STORE)
        assert len(pending) == report.deferred
        assert {e.attempts for e in pending} <= {0, 1}  # an accept that was never sent has its attempt given back
