"""Helpers of the multi-worker tests: worker processes, the queue and the book read straight from PostgreSQL.

The tests judge what happened from data the host and the sandbox leave
behind (the ``runs`` rows, the order rows, procrastinate's job rows,
``pg_locks``, the sandbox's per-order update counters), so these helpers
read those tables directly rather than through the host's own listings.
Every wait polls with a deadline and fails naming what it waited for.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from click.testing import CliRunner

from connector_core.cli import App, build_cli, cli
from connector_core.db import open_book
from connector_core.db.postgres.leases import LEASE_SPACE
from connector_core.engine import Engine
from connector_core.jobs import make_app, retry_stalled
from connector_core.models import Shipment
from connector_core.plugins import PluginHost, get_plugin_manager

EXE = str(Path(sys.executable).with_name("connector-host"))
T = TypeVar("T")


def invoke(db: str, *args: str) -> str:
    """Run one ``connector-host`` command in this process; its output (it must succeed, without a traceback)."""
    host = PluginHost(get_plugin_manager(disabled=()))
    build_cli(host)
    result = CliRunner().invoke(cli, ["--db", db, *args], obj=App(host_factory=lambda: host))
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert "Traceback" not in result.output
    return result.stdout + result.stderr


def add_store(db: str, name: str, settings: dict[str, Any], folder: Path) -> None:
    """``stores add spartoo --name NAME`` with ``settings`` written to a file of ``folder``."""
    path = folder / f"{name}.json"
    path.write_text(json.dumps(settings), encoding="utf-8")
    invoke(db, "stores", "add", "spartoo", "--name", name, "--settings", str(path))


def wait_for(what: str, probe: Callable[[], T | None], seconds: float, poll: float = 0.1) -> T:
    """Poll ``probe`` until it returns something truthy (returned), at most ``seconds``; else fail naming ``what``."""
    deadline = time.monotonic() + seconds
    while True:
        got = probe()
        if got:
            return got
        if time.monotonic() >= deadline:
            raise AssertionError(f"gave up after {seconds:.0f} s waiting for {what}")
        time.sleep(poll)


class Worker:
    """One ``connector-host worker`` subprocess; its stderr goes to a file (a pipe nobody reads could block it)."""

    def __init__(self, book: str, queue: str, log: Path, *, concurrency: int = 1, prefix: Sequence[str] = ()) -> None:
        self.log = log
        self._out = open(log, "wb")  # noqa: SIM115 - closed by stop()/kill()
        self.proc = subprocess.Popen(
            [*prefix, EXE, "--db", book, "worker", "--queue", queue, "--concurrency", str(concurrency)],
            env={**os.environ},
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )

    def tail(self, chars: int = 3000) -> str:
        """The end of what the worker wrote, for a failure message."""
        if not self._out.closed:
            self._out.flush()
        return self.log.read_text(errors="replace")[-chars:]

    def kill(self) -> None:
        """SIGKILL: no handler runs, no connection is closed politely."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._out.close()

    def stop(self) -> None:
        """SIGTERM (procrastinate finishes its running jobs), SIGKILL if it is still there after 60 s."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        self._out.close()


def query(url: str, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Rows of one statement on a fresh autocommit connection (bounded connect)."""
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        return list(conn.execute(sql, args).fetchall())


def jobs(queue: str) -> list[tuple[int, str, str, str, int, int | None]]:
    """Our sync and push jobs: (id, kind, store, status, attempts, worker_id), oldest first."""
    rows = query(
        queue,
        "SELECT id, task_name, args->>'store', status::text, attempts, worker_id FROM procrastinate_jobs"
        " WHERE task_name IN ('connector_core.sync_store', 'connector_core.push_store') ORDER BY id",
    )
    return [(i, t.rsplit(".", 1)[-1].split("_", 1)[0], s, st, a, w) for i, t, s, st, a, w in rows]


def retry_dead(queue: str) -> list[int]:
    """Put back in the queue every running job whose worker stopped beating (threshold 0: now)."""
    app = make_app(queue)

    async def run() -> list[int]:
        async with app.open_async():
            return await retry_stalled(app, seconds_since_heartbeat=0)

    return asyncio.run(run())


def store_locks(url: str) -> list[tuple[int, int]]:
    """Granted store-lease advisory locks on the server: (backend pid, objid)."""
    return [
        (int(pid), int(objid))
        for pid, objid in query(
            url,
            "SELECT pid, objid FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = %s",
            (LEASE_SPACE,),
        )
    ]


def store_lock_of(url: str, store: str) -> list[int]:
    """Backend pids holding ``store``'s lease lock (at most one when leases work)."""
    rows = query(
        url,
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = %s"
        " AND objid = hashtext(%s)::oid",
        (LEASE_SPACE, f"store:{store}"),
    )
    return [int(r[0]) for r in rows]


def book_orders(book: str) -> dict[str, list[str]]:
    """Every store's order keys in the book, one entry per row (a doubled row would show twice)."""
    got: dict[str, list[str]] = {}
    for store, key in query(book, "SELECT store, order_key FROM orders ORDER BY store, order_key"):
        got.setdefault(store, []).append(key)
    return got


def runs(book: str, kind: str = "sync") -> list[tuple[str, datetime, datetime | None, str]]:
    """The book's run history of one kind: (store, started, ended or None, state)."""
    rows = query(book, "SELECT store, started_at, ended_at, state FROM runs WHERE kind = %s ORDER BY id", (kind,))
    return [
        (store, datetime.fromisoformat(start), datetime.fromisoformat(end) if end else None, state)
        for store, start, end, state in rows
    ]


def overlaps(history: Sequence[tuple[str, datetime, datetime | None, str]]) -> list[str]:
    """Pairs of one store's runs whose [start, end] intervals meet (a run still open counts as endless)."""
    by_store: dict[str, list[tuple[datetime, datetime | None]]] = {}
    for store, start, end, _ in history:
        by_store.setdefault(store, []).append((start, end))
    found = []
    for store, spans in by_store.items():
        spans.sort(key=lambda s: s[0])
        for (a_start, a_end), (b_start, b_end) in itertools.pairwise(spans):
            if a_end is None or b_start <= a_end:
                found.append(f"{store}: {a_start.isoformat()}..{a_end} and {b_start.isoformat()}..{b_end}")
    return found


def ship_all(book: str, store: str, tracking: str) -> dict[str, str]:
    """A shipment in the outbox for each of the store's accepted orders; order key -> tracking number."""
    engine = Engine(PluginHost(get_plugin_manager()), open_book(book))
    try:
        planned = {}
        for order in engine.book.iter_orders(store):
            if order.marketplace_status.code != "2":
                continue
            number = f"{tracking}-{order.order_number}"
            engine.record_shipment(
                Shipment(store=store, order_key=order.order_key, tracking_number=number, ship_date=datetime.now(UTC))
            )
            planned[order.order_key] = number
        return planned
    finally:
        engine.book.close()
