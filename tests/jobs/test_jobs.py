"""The job queue: deferring syncs and pushes, the per-store locks, and a worker draining the queue."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from connector_core.cli import App, build_cli, cli
from connector_core.db import OrderBook
from connector_core.errors import ConfigError
from connector_core.jobs import defer_push, defer_sync, list_jobs, make_app, queue_url, retry_stalled
from connector_core.plugins import PluginHost, get_plugin_manager

sandbox_server = pytest.importorskip("connector_spartoo.sandbox.server")


def invoke(db: Path, *args: str, code: int = 0) -> str:
    host = PluginHost(get_plugin_manager(disabled=()))
    build_cli(host)
    result = CliRunner().invoke(cli, ["--db", str(db), *args], obj=App(host_factory=lambda: host))
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.output
    return result.stdout + result.stderr


def _assert_same_as_an_inline_sync(db: Path, settings: Path, tmp_path: Path) -> None:
    """The store ``sp`` of ``db`` holds as many orders (some) as an inline sync of the same sandbox stores."""
    inline = tmp_path / "inline.sqlite3"
    invoke(inline, "stores", "add", "spartoo", "--name", "sp", "--settings", str(settings))
    invoke(inline, "sync")
    with OrderBook(str(db)) as worked, OrderBook(str(inline)) as expected:
        assert worked.count_orders("sp") == expected.count_orders("sp") > 0


def test_a_second_waiting_sync_of_a_store_is_not_queued(queue_url: str) -> None:
    app = make_app(queue_url)
    with app.open():
        first = defer_sync(app, "shop")
        again = defer_sync(app, "shop")
        other = defer_sync(app, "other")
        push = defer_push(app, "shop")  # a push is another kind of job: it may wait beside the sync
        lines = list_jobs(app)
    assert first is not None and other is not None and push is not None
    assert again is None
    assert [(j.kind, j.store, j.state) for j in lines] == [
        ("sync", "shop", "todo"),
        ("sync", "other", "todo"),
        ("push", "shop", "todo"),
    ]


def test_the_queue_must_be_postgresql() -> None:
    with pytest.raises(ConfigError, match="--queue"):
        queue_url(None, "/tmp/orders.sqlite3")
    with pytest.raises(ConfigError, match="PostgreSQL URL"):
        queue_url("/tmp/q.sqlite3", None)
    assert queue_url(None, "postgresql://h/db") == "postgresql://h/db"


def test_sync_enqueue_then_a_worker_drains_it_into_the_book(queue_url: str, tmp_path: Path) -> None:
    db = tmp_path / "orders.sqlite3"
    with sandbox_server.SpartooSandbox(orders=25, sites=["com"], seed=3) as sb:
        settings = tmp_path / "spartoo.json"
        settings.write_text(json.dumps(sb.settings()), encoding="utf-8")
        invoke(db, "stores", "add", "spartoo", "--name", "sp", "--settings", str(settings))
        said = invoke(db, "sync", "--enqueue", "--queue", queue_url)
        assert "sp: sync queued as job" in said
        assert "already waiting" in invoke(db, "sync", "--enqueue", "--queue", queue_url)
        queued = json.loads(invoke(db, "jobs", "list", "--json", "--queue", queue_url))
        assert [(j["kind"], j["store"], j["state"]) for j in queued] == [("sync", "sp", "todo")]

        worker = subprocess.Popen(
            [str(Path(sys.executable).with_name("connector-host")), "--db", str(db), "worker", "--queue", queue_url],
            env={**os.environ},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 60
            state = "todo"
            while time.monotonic() < deadline:
                state = json.loads(invoke(db, "jobs", "list", "--json", "--queue", queue_url))[0]["state"]
                if state not in ("todo", "doing"):
                    break
                time.sleep(0.2)
        finally:
            worker.terminate()
            _, err = worker.communicate(timeout=30)
        assert state == "succeeded", err.decode(errors="replace")[-2000:]
        shown = invoke(db, "jobs", "list", "--state", "succeeded", "--queue", queue_url)
        assert all(word in shown for word in ("KIND", "STORE", "STATE", "ATTEMPTS"))
        cells = [[c.strip() for c in line.split("│")[1:-1]] for line in shown.splitlines() if "│" in line]
        assert [row[1:4] for row in cells] == [["sync", "sp", "succeeded"]], shown
        assert "no jobs" in invoke(db, "jobs", "list", "--state", "failed", "--queue", queue_url)
        # The same sandbox synced inline into a second book: the worker's book must hold what that one holds.
        _assert_same_as_an_inline_sync(db, settings, tmp_path)


def test_a_store_with_a_job_running_gets_no_second_one_while_other_stores_do(queue_url: str) -> None:
    """The queue hands out no job of a store whose other job is running (``lock``); other stores' jobs go on."""
    app = make_app(queue_url)

    async def fetch_three() -> list[str | None]:
        async with app.open_async():
            worker = await app.job_manager.register_worker()
            got = []
            for _ in range(3):
                job = await app.job_manager.fetch_job(None, worker)
                got.append(None if job is None else f"{job.task_name.rsplit('.', 1)[-1]}:{job.task_kwargs['store']}")
            return got

    with app.open():
        defer_sync(app, "shop")
        defer_push(app, "shop")
        defer_sync(app, "other")
    assert asyncio.run(fetch_three()) == ["sync_store:shop", "sync_store:other", None]


def test_an_unreachable_queue_is_one_line_without_its_password(tmp_path: Path) -> None:
    """A wrong --queue ends at once with one line naming the queue, its password masked."""
    out = invoke(tmp_path / "o.sqlite3", "jobs", "list", "--queue", "postgresql://u:s3cr3t-pw@127.0.0.1:1/q", code=1)
    assert "s3cr3t-pw" not in out
    assert "postgresql://u:***@127.0.0.1:1/q: cannot connect" in out
    assert len(out.strip().splitlines()) == 1


def _wait_state(db: Path, queue: str, wanted: set[str], seconds: float = 60) -> str:
    deadline = time.monotonic() + seconds
    state = ""
    while time.monotonic() < deadline:
        jobs = [j for j in json.loads(invoke(db, "jobs", "list", "--json", "--queue", queue)) if j["kind"] == "sync"]
        state = jobs[0]["state"] if jobs else ""
        if state in wanted:
            return state
        time.sleep(0.1)
    return state


def test_the_job_of_a_killed_worker_is_retried_by_another(queue_url: str, tmp_path: Path) -> None:
    db = tmp_path / "orders.sqlite3"
    exe = str(Path(sys.executable).with_name("connector-host"))
    with sandbox_server.SpartooSandbox(orders=300, sites=["com"], seed=4, latency=200) as sb:
        settings = tmp_path / "spartoo.json"
        settings.write_text(json.dumps(sb.settings()), encoding="utf-8")
        invoke(db, "stores", "add", "spartoo", "--name", "sp", "--settings", str(settings))
        invoke(db, "sync", "--enqueue", "--queue", queue_url)
        first = subprocess.Popen([exe, "--db", str(db), "worker", "--queue", queue_url], stderr=subprocess.DEVNULL)
        try:
            assert _wait_state(db, queue_url, {"doing"}) == "doing"
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=30)
        app = make_app(queue_url)

        async def retry() -> list[int]:
            async with app.open_async():
                return await retry_stalled(app, seconds_since_heartbeat=0)

        assert len(asyncio.run(retry())) == 1
        assert _wait_state(db, queue_url, {"todo"}, 5) == "todo"
        second = subprocess.Popen([exe, "--db", str(db), "worker", "--queue", queue_url], stderr=subprocess.PIPE)
        try:
            state = _wait_state(db, queue_url, {"succeeded", "failed"}, 120)
        finally:
            second.terminate()
            _, err = second.communicate(timeout=30)
        assert state == "succeeded", err.decode(errors="replace")[-2000:]
        _assert_same_as_an_inline_sync(db, settings, tmp_path)  # nothing lost or doubled by the kill


def test_a_job_maps_in_its_workers_own_process_even_when_map_workers_are_asked_for(tmp_path: Path) -> None:
    """A worker runs jobs in threads: a fork there would copy one thread only, so a job never forks map workers."""
    probe = f"""
from concurrent.futures import ThreadPoolExecutor
from connector_core.db import OrderBook
from connector_core.plugins import PluginHost, get_plugin_manager
from connector_core.runtime import Runtime
from connector_core.sync.runner import worker_count
with OrderBook({str(tmp_path / "o.sqlite3")!r}) as book:
    runtime = Runtime(PluginHost(get_plugin_manager(disabled=())), book)
    alone = worker_count(runtime)  # a plain `sync`: nothing but the main thread
    with ThreadPoolExecutor(1) as pool:  # as procrastinate runs a job's function
        in_a_job = pool.submit(worker_count, runtime).result(timeout=30)
print(alone, in_a_job)
"""
    env = {**os.environ, "CONNECTOR_HOST_WORKERS": "2"}
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["2", "0"]
