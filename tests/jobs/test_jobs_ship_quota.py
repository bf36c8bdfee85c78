"""A shipment and its push job in one transaction; a job stopped by the quota queued again for the window's end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from connector_core.cli import App, build_cli, cli
from connector_core.db import open_book
from connector_core.engine import Engine
from connector_core.jobs import list_jobs, make_app
from connector_core.jobs.queue import ship_queued
from connector_core.models import Shipment
from connector_core.plugins import PluginHost, get_plugin_manager

sandbox_server = pytest.importorskip("connector_spartoo.sandbox.server")
EXE = str(Path(sys.executable).with_name("connector-host"))


def invoke(db: str, *args: str, code: int = 0) -> str:
    host = PluginHost(get_plugin_manager(disabled=()))
    build_cli(host)
    result = CliRunner().invoke(cli, ["--db", db, *args], obj=App(host_factory=lambda: host))
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.output
    return result.stdout + result.stderr


def _store(db: str, settings: dict[str, object], tmp_path: Path) -> None:
    path = tmp_path / "spartoo.json"
    path.write_text(json.dumps({**settings, "initial_lookback_days": 40}), encoding="utf-8")
    invoke(db, "stores", "add", "spartoo", "--name", "sp", "--settings", str(path))


def _accepted_order(db: str) -> str:
    with open_book(db) as book:
        return next(o.order_key for o in book.iter_orders("sp") if o.marketplace_status.code == "2")


def _jobs(queue: str, kind: str) -> list[tuple[str, datetime | None]]:
    """(state, scheduled_at) of the queue's ``kind`` jobs, oldest first."""
    with psycopg.connect(queue, connect_timeout=10) as conn:
        rows = conn.execute(
            "SELECT status, scheduled_at FROM procrastinate_jobs WHERE task_name = %s ORDER BY id",
            (f"connector_core.{kind}_store",),
        ).fetchall()
    return [(str(r[0]), r[1]) for r in rows]


def _work_until_done(db: str, queue: str, kind: str, seconds: float = 90) -> list[tuple[str, datetime | None]]:
    """Run one worker until every ``kind`` job is finished or waits for a later time; those jobs then."""
    worker = subprocess.Popen([EXE, "--db", db, "worker", "--queue", queue], env={**os.environ}, stderr=subprocess.PIPE)
    jobs: list[tuple[str, datetime | None]] = []
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            jobs = _jobs(queue, kind)
            now = datetime.now(UTC)
            if jobs and all(s not in ("todo", "doing") or (s == "todo" and at and at > now) for s, at in jobs):
                break
            time.sleep(0.2)
    finally:
        worker.terminate()
        _, err = worker.communicate(timeout=30)
    assert jobs and "failed" not in [s for s, _ in jobs], err.decode(errors="replace")[-2000:]
    return jobs


def test_ship_enqueue_writes_the_shipment_and_its_push_job_together_and_a_worker_pushes_it(
    queue_url: str, tmp_path: Path
) -> None:
    """The queue is the book's own database: `ship --enqueue` commits both; a worker then pushes the shipment."""
    db = queue_url  # the book and the queue in one PostgreSQL database
    with sandbox_server.SpartooSandbox(orders=12, sites=["com"], seed=5) as sb:
        _store(db, sb.settings(), tmp_path)
        invoke(db, "sync")
        key = _accepted_order(db)
        said = invoke(db, "ship", key, "--store", "sp", "--tracking", "TRK-77", "--enqueue")
        assert f"shipment for {key} is in the outbox as #" in said and "push queued as job" in said
        with open_book(db) as book:
            assert [e.state for e in book.list_outbox(store="sp")] == ["pending"]
        assert [s for s, _ in _work_until_done(db, queue_url, "push")] == ["succeeded"]
        with open_book(db) as book:
            assert [e.state for e in book.list_outbox(store="sp")] == ["pushed"]
        pushed = next(r for r in sb.orders() if r["order_key"] == key)
        assert pushed["status"] == "3" and "TRK-77" in json.dumps(pushed)


def test_a_rolled_back_shipment_takes_its_push_job_with_it(queue_url: str, tmp_path: Path) -> None:
    db = queue_url
    with sandbox_server.SpartooSandbox(orders=8, sites=["com"], seed=6) as sb:
        _store(db, sb.settings(), tmp_path)
        invoke(db, "sync")
        key = _accepted_order(db)
    app = make_app(queue_url)
    with open_book(db) as book, app.open():
        engine = Engine(PluginHost(get_plugin_manager(disabled=())), book)
        shipment = Shipment(store="sp", order_key=key, tracking_number="TRK-1", ship_date=datetime.now(UTC))
        with pytest.raises(RuntimeError, match="crash"), book.transaction():
            done, job = ship_queued(engine, app, shipment, force=False, in_book=True)
            assert done.new and job is not None
            raise RuntimeError("crash before the commit")
        assert book.list_outbox(store="sp") == [] and list_jobs(app) == []
        done, job = ship_queued(engine, app, shipment, force=False, in_book=True)
        again, second = ship_queued(engine, app, shipment, force=False, in_book=True)
        assert (again.outbox_id, again.new, second) == (done.outbox_id, False, None)  # the same shipment, one job
        assert [(j.kind, j.id) for j in list_jobs(app)] == [("push", job)]


def test_a_sync_job_stopped_by_the_quota_is_queued_again_for_the_next_window(queue_url: str, tmp_path: Path) -> None:
    db = str(tmp_path / "orders.sqlite3")
    with sandbox_server.SpartooSandbox(orders=30, sites=["com", "it"], seed=7) as sb:
        _store(db, {**sb.settings(), "requests_per_hour": 4}, tmp_path)
        assert "sync queued as job" in invoke(db, "sync", "--enqueue", "--queue", queue_url)
        jobs = _work_until_done(db, queue_url, "sync")
        assert int(sb.counters()["requests"]) == 4  # the quota set, not one request more
    waiting = [at for state, at in jobs if state == "todo"]
    assert jobs[0][0] == "succeeded" and len(waiting) == 1  # the sync ran, and one more waits ...
    assert waiting[0] is not None and waiting[0] > datetime.now(UTC)
    assert (waiting[0].minute, waiting[0].second) == (0, 0)  # ... for the next clock hour
    listed = [j for j in json.loads(invoke(db, "jobs", "list", "--json", "--queue", queue_url)) if j["state"] == "todo"]
    assert [datetime.fromisoformat(j["not_before"]) for j in listed] == [waiting[0]]  # the operator sees when
    # nothing piles up meanwhile: the waiting sync holds the store's queueing lock
    assert "already waiting" in invoke(db, "sync", "--enqueue", "--queue", queue_url)


def test_one_worker_with_concurrency_runs_two_stores_at_once(queue_url: str, tmp_path: Path) -> None:
    """`worker --concurrency 2`: the syncs of two slow stores overlap in time (procrastinate's job events)."""
    db = str(tmp_path / "orders.sqlite3")
    with sandbox_server.SpartooSandbox(orders=60, sites=["com", "it", "es"], seed=9, latency=300) as sb:
        for name in ("north", "south"):
            path = tmp_path / f"{name}.json"
            path.write_text(json.dumps({**sb.settings(), "initial_lookback_days": 40}), encoding="utf-8")
            invoke(db, "stores", "add", "spartoo", "--name", name, "--settings", str(path))
        invoke(db, "sync", "--enqueue", "--queue", queue_url)
        worker = subprocess.Popen(
            [EXE, "--db", db, "worker", "--queue", queue_url, "--concurrency", "2"], stderr=subprocess.PIPE
        )
        try:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and [s for s, _ in _jobs(queue_url, "sync")] != ["succeeded"] * 2:
                time.sleep(0.2)
        finally:
            worker.terminate()
            _, err = worker.communicate(timeout=30)
    assert [s for s, _ in _jobs(queue_url, "sync")] == ["succeeded"] * 2, err.decode(errors="replace")[-2000:]
    with psycopg.connect(queue_url, connect_timeout=10) as conn:
        spans = conn.execute(
            "SELECT e.job_id, min(e.at) FILTER (WHERE e.type = 'started'),"
            " max(e.at) FILTER (WHERE e.type = 'succeeded')"
            " FROM procrastinate_events e JOIN procrastinate_jobs j ON j.id = e.job_id"
            " WHERE j.task_name = 'connector_core.sync_store' GROUP BY e.job_id ORDER BY e.job_id"
        ).fetchall()
    (_, start_a, end_a), (_, start_b, end_b) = spans
    assert start_a < end_b and start_b < end_a  # the two syncs ran side by side
