"""Each store's sync schedule: `run` syncs the stores that are due, the most out-of-date first."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bazaar_plugin import TOKEN
from click.testing import CliRunner

from connector_core import schedule
from connector_core.cli import App, cli
from connector_core.db import OrderBook
from connector_core.plugins import PluginHost

HOURLY = {"schedule": {"sync_interval": 3600}}


def test_slots_put_the_never_synced_first_then_the_oldest_and_say_when_each_is_due(book: OrderBook) -> None:
    """Never synced: due now; interval 0: due every cycle; otherwise the last sync's start plus the interval."""
    for name in ("a", "b", "c", "d"):
        book.add_store(name, "bazaar", {"token": TOKEN}, store_settings=HOURLY if name != "d" else None)
    for name in ("b", "a", "d"):  # b synced first (oldest), then a, then d
        book.finish_run(book.start_run("sync", name), "done", {})
    slots = schedule.slots(book)
    assert [s.store for s in slots] == ["c", "b", "a", "d"]
    by_name = {s.store: s for s in slots}
    assert by_name["c"].last_sync is None and by_name["c"].next_sync is None
    a = by_name["a"]
    assert a.interval == 3600 and a.last_sync is not None
    assert a.next_sync == a.last_sync + timedelta(seconds=3600)
    assert by_name["d"].interval == 0 and by_name["d"].next_sync is None
    now = datetime.now(UTC)
    assert schedule.due_stores(book, now) == ["c", "d"]  # a and b wait for their hour
    assert schedule.due_stores(book, now + timedelta(hours=2)) == ["c", "b", "a", "d"]


def test_a_failed_sync_counts_too(book: OrderBook) -> None:
    """A store whose last sync failed waits for its interval like any other: it is not retried every cycle."""
    book.add_store("a", "bazaar", {"token": TOKEN}, store_settings=HOURLY)
    book.finish_run(book.start_run("sync", "a"), "failed", {}, error="site down")
    assert schedule.due_stores(book) == []


def test_run_syncs_only_the_stores_that_are_due(host: PluginHost, db_path: Path) -> None:
    """With an hourly store and an every-cycle store, two quick cycles sync the hourly store once."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    with OrderBook(db_path) as book:
        book.add_store("hourly", "bazaar", {"token": TOKEN}, store_settings=HOURLY)
        book.add_store("often", "bazaar", {"token": TOKEN})
    result = CliRunner().invoke(
        cli,
        ["--db", str(db_path), "run", "--interval", "0", "--max-cycles", "2"],
        obj=App(host_factory=lambda: host),
    )
    assert result.exit_code == 0, result.output
    cycles = [line for line in result.output.splitlines() if re.search(r"cycle \d+:", line)]
    assert "cycle 1: 2 of 2 store(s) synced," in cycles[0]
    assert "cycle 2: 1 of 2 store(s) synced (1 not due yet)," in cycles[1]
    with OrderBook(db_path) as book:
        assert book.list_runs(store="hourly", kind="sync").total == 1
        assert book.list_runs(store="often", kind="sync").total == 2
