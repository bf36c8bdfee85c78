"""The workers' schedule: each store is queued for a sync when it is due, never twice while one waits."""

from __future__ import annotations

import asyncio
from pathlib import Path

from click.testing import CliRunner

from connector_core.cli import App, build_cli, cli
from connector_core.db import OrderBook
from connector_core.jobs import enqueue_due, enqueue_due_async, list_jobs, make_app
from connector_core.plugins import PluginHost, get_plugin_manager

HOURLY = {"schedule": {"sync_interval": 3600}}


def _book(db: Path) -> None:
    """``fresh`` (hourly, synced just now), ``old`` (hourly, never synced), ``often`` (interval 0, synced now)."""
    with OrderBook(db) as book:
        for name, settings in (("fresh", HOURLY), ("old", HOURLY), ("often", None)):
            book.add_store(name, "spartoo", {"partner_id": "X", "sites": ["com"]}, store_settings=settings)
        book.finish_run(book.start_run("sync", "fresh"), "done", {})
        book.finish_run(book.start_run("sync", "often"), "done", {})


def test_due_stores_are_queued_most_out_of_date_first_and_only_once(queue_url: str, tmp_path: Path) -> None:
    """The never-synced store is queued; those synced within their interval (0: the workers' 5 minutes) wait."""
    db = tmp_path / "orders.sqlite3"
    _book(db)
    app = make_app(queue_url, str(db))
    with app.open():
        assert enqueue_due(app, str(db)) == ["old"]  # "often" (interval 0) synced within the workers' 5 minutes
        assert enqueue_due(app, str(db)) == []  # already waiting: nothing piles up
        assert [(j.kind, j.store, j.state) for j in list_jobs(app)] == [("sync", "old", "todo")]


def test_the_workers_periodic_task_queues_the_same(queue_url: str, tmp_path: Path) -> None:
    """The async form the workers run every minute does what `jobs enqueue-due` does."""
    db = tmp_path / "orders.sqlite3"
    _book(db)
    app = make_app(queue_url, str(db))

    async def twice() -> list[list[str]]:
        async with app.open_async():
            return [await enqueue_due_async(app, str(db)), await enqueue_due_async(app, str(db))]

    assert asyncio.run(twice()) == [["old"], []]
    assert "connector_core.enqueue_due_stores" in app.tasks
    assert any(
        p.task.name == "connector_core.enqueue_due_stores" for p in app.periodic_registry.periodic_tasks.values()
    )


def test_jobs_enqueue_due_says_what_it_queued(queue_url: str, tmp_path: Path) -> None:
    """`jobs enqueue-due` names the stores it queued."""
    db = tmp_path / "orders.sqlite3"
    _book(db)
    host = PluginHost(get_plugin_manager(disabled=()))
    build_cli(host)
    result = CliRunner().invoke(
        cli, ["--db", str(db), "jobs", "enqueue-due", "--queue", queue_url], obj=App(host_factory=lambda: host)
    )
    assert result.exit_code == 0, result.output
    assert "queued a sync of 1 store(s): old" in result.output


def test_a_store_is_queued_again_once_its_interval_has_passed(queue_url: str, tmp_path: Path) -> None:
    """Most out-of-date first: once every interval has passed, the oldest last sync goes first."""
    from datetime import UTC, datetime, timedelta

    from connector_core import schedule

    db = tmp_path / "orders.sqlite3"
    _book(db)
    later = datetime.now(UTC) + timedelta(hours=2)
    with OrderBook(db) as book:
        assert schedule.due_stores(book, later, default_interval=300) == ["old", "fresh", "often"]


def test_stores_with_shipments_waiting_get_a_push_queued_once(queue_url: str, tmp_path: Path) -> None:
    """A shipment a push left pending (a transient failure, a lost lease) is queued again by the schedule."""
    import sys
    from datetime import UTC, datetime

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
    from test_core_order_book import _orders

    from connector_core.jobs.queue import enqueue_pending_pushes, enqueue_pending_pushes_async
    from connector_core.models import Shipment

    db = tmp_path / "orders.sqlite3"
    with OrderBook(db) as book:
        book.add_store("shop", "bazaar", {"token": "t"})
        book.add_store("idle", "bazaar", {"token": "t"})
        book.save_page("shop", _orders([1]), cursor={"seq": 1})
        book.add_shipment(Shipment(store="shop", order_key="BZ0001", tracking_number="T1", ship_date=datetime.now(UTC)))
    app = make_app(queue_url, str(db))
    with app.open():
        assert enqueue_pending_pushes(app, str(db)) == ["shop"]
        assert enqueue_pending_pushes(app, str(db)) == []  # one waits already
        assert [(j.kind, j.store) for j in list_jobs(app)] == [("push", "shop")]

    async def periodic() -> list[str]:
        async with app.open_async():
            return await enqueue_pending_pushes_async(app, str(db))

    assert asyncio.run(periodic()) == []  # the workers' form sees the same waiting job


def test_a_store_whose_sync_is_running_is_not_queued_again(queue_url: str, tmp_path: Path) -> None:
    """A job that has started but not yet recorded its run leaves the store looking due: the schedule skips it."""
    db = tmp_path / "orders.sqlite3"
    _book(db)
    app = make_app(queue_url, str(db))

    async def start_one() -> str:
        async with app.open_async():
            worker = await app.job_manager.register_worker()
            job = await app.job_manager.fetch_job(None, worker)  # now "doing", as a worker's would be
            assert job is not None
            return str(job.task_kwargs["store"])

    with app.open():
        assert enqueue_due(app, str(db)) == ["old"]
    assert asyncio.run(start_one()) == "old"
    with app.open():
        assert enqueue_due(app, str(db)) == []  # "old" has never recorded a run, but its sync is running

    async def periodic() -> list[str]:
        async with app.open_async():
            return await enqueue_due_async(app, str(db))

    assert asyncio.run(periodic()) == []
