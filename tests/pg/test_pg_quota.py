"""The request ledger and quota blocks on the PostgreSQL book, shared by processes on several machines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from ledger_kit import race

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
