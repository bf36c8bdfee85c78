"""The procrastinate app: its two tasks, deferring them, and reading the queue back."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import attrs

from connector_core.errors import ConfigError
from connector_core.secrets import redact

if TYPE_CHECKING:
    from connector_core.engine import Engine
    from connector_core.models import Shipment
    from connector_core.shipments import Recorded

try:
    import procrastinate
    from procrastinate import exceptions as pexc
except ImportError:  # pragma: no cover - depends on the installed extras
    procrastinate = None  # type: ignore[assignment]
    pexc = None  # type: ignore[assignment]

QUEUE_ENV = "CONNECTOR_HOST_QUEUE"

SYNC_TASK = "connector_core.sync_store"
PUSH_TASK = "connector_core.push_store"
STALLED_TASK = "connector_core.retry_stalled_jobs"
DUE_TASK = "connector_core.enqueue_due_stores"


def queue_url(queue: str | None, book: str | None) -> str:
    """The job queue's PostgreSQL URL: ``queue`` (``--queue`` or the env), else the book's URL if it is PostgreSQL.

    procrastinate keeps its jobs in PostgreSQL only, so a SQLite book needs
    the queue named separately; the error says how.
    """
    url = queue or os.environ.get(QUEUE_ENV)
    if not url and book and book.startswith(("postgresql://", "postgres://")):
        url = book
    if not url:
        raise ConfigError(
            f"no job queue: pass --queue postgresql://HOST/DB (or set ${QUEUE_ENV}); background jobs are kept in"
            " PostgreSQL"
        )
    if not url.startswith(("postgresql://", "postgres://")):
        raise ConfigError(f"--queue {shown_url(url)!r}: give a PostgreSQL URL such as postgresql://HOST/DB")
    return url


def _require() -> None:
    if procrastinate is None:
        raise ConfigError("background jobs need procrastinate and psycopg: pip install 'connector-host[postgres]'")


def shown_url(url: str) -> str:
    """``url`` with its password (if any) shown as ``***``, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def check_queue(url: str, timeout: int = 10) -> None:
    """Connect to the queue once, bounded by ``timeout`` seconds, so a wrong URL is one line saying so.

    Without it procrastinate's pool keeps retrying for half a minute and then
    fails with a traceback.
    """
    _require()
    import psycopg

    try:
        psycopg.connect(url, connect_timeout=timeout).close()
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0].strip() if str(exc).strip() else type(exc).__name__
        if parts_password := urlsplit(url).password:
            reason = reason.replace(parts_password, "***")
        raise ConfigError(f"job queue {shown_url(url)}: cannot connect ({redact(reason)}); check --queue") from None


def make_app(url: str, book: str | None = None) -> Any:
    """A procrastinate app on the queue at ``url`` whose tasks work the order book ``book``.

    The book target is captured here rather than passed in each job, so a
    worker decides which book it works and job rows carry only a store name.
    """
    _require()
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=url))

    @app.task(name=SYNC_TASK, pass_context=False)
    def sync_store(store: str) -> dict[str, Any]:
        """Sync one store; its pages are committed with their cursors as an inline sync commits them."""
        from connector_core.jobs.work import run_sync

        return _again_after_quota(app, SYNC_TASK, "sync", store, run_sync(book, store))

    @app.task(name=PUSH_TASK, pass_context=False)
    def push_store(store: str) -> dict[str, Any]:
        """Push one store's pending shipments."""
        from connector_core.jobs.work import run_push

        return _again_after_quota(app, PUSH_TASK, "push", store, run_push(book, store))

    @app.periodic(cron="* * * * *")
    @app.task(name=STALLED_TASK, queueing_lock=STALLED_TASK, pass_context=False)
    async def retry_stalled_jobs(timestamp: int) -> list[int]:
        """Every minute, in whichever worker takes it: retry the jobs of dead workers."""
        return await retry_stalled(app)

    @app.periodic(cron="* * * * *")
    @app.task(name=DUE_TASK, queueing_lock=DUE_TASK, pass_context=False)
    async def enqueue_due_stores(timestamp: int) -> list[str]:
        """Every minute, in whichever worker takes it: queue a sync of each store that is due, and a push
        of each store with shipments waiting."""
        syncs = await enqueue_due_async(app, book)
        pushes = await enqueue_pending_pushes_async(app, book)
        return [f"sync:{s}" for s in syncs] + [f"push:{s}" for s in pushes]

    return app


WORKER_INTERVAL = 300.0
"""Seconds between two syncs of a store whose ``schedule.sync_interval`` is 0, on the workers (``run``'s default)."""


def _due(book_target: str | None) -> list[str]:
    from connector_core import schedule
    from connector_core.db import open_book

    book = open_book(book_target)
    try:
        return schedule.due_stores(book, default_interval=WORKER_INTERVAL)
    finally:
        book.close()


def _with_pending_shipments(book_target: str | None) -> list[str]:
    from connector_core.db import open_book

    book = open_book(book_target)
    try:
        return [s.name for s in book.list_stores() if book.has_pending_shipments(s.name)]
    finally:
        book.close()


def enqueue_pending_pushes(app: Any, book_target: str | None) -> list[str]:
    """Queue a push of every store whose outbox holds pending shipments; the stores queued.

    What a push left pending (a transient failure, a lost lease, a worker
    that died mid-push) is so picked up again without anyone asking; a push
    already waiting (one queued for the end of a quota block among them)
    keeps its place.
    """
    return [store for store in _with_pending_shipments(book_target) if defer_push(app, store) is not None]


async def _defer_each_async(app: Any, task_name: str, kind: str, stores: list[str]) -> list[str]:
    """Queue a ``kind`` job of each store with procrastinate's async API; the stores queued (not those waiting)."""
    queued = []
    for store in stores:
        try:
            await app.tasks[task_name].configure(lock=store, queueing_lock=f"{kind}:{store}").defer_async(store=store)
        except pexc.AlreadyEnqueued:
            continue
        queued.append(store)
    return queued


async def enqueue_pending_pushes_async(app: Any, book_target: str | None) -> list[str]:
    """:func:`enqueue_pending_pushes` for the workers' periodic task."""
    return await _defer_each_async(app, PUSH_TASK, "push", _with_pending_shipments(book_target))


def _stores_of(jobs: Any) -> set[str]:
    """The stores the ``jobs`` (procrastinate jobs of this module's tasks) are about."""
    return {str(job.task_kwargs.get("store", "")) for job in jobs}


def enqueue_due(app: Any, book_target: str | None) -> list[str]:
    """Queue a sync of every store that is due (:mod:`connector_core.schedule`, most out-of-date first).

    A store with a sync already waiting is left as it is (its queueing lock),
    and one whose sync is running too, so running this often never piles
    syncs up. Returns the stores queued.
    """
    running = _stores_of(app.job_manager.list_jobs(task=SYNC_TASK, status="doing"))
    return [store for store in _due(book_target) if store not in running and defer_sync(app, store) is not None]


async def enqueue_due_async(app: Any, book_target: str | None) -> list[str]:
    """:func:`enqueue_due` for the workers' periodic task (procrastinate's async API).

    A store whose sync job is running is left out: the job may not have
    recorded its start in the book yet, which would make the store look due.
    """
    running = _stores_of(await app.job_manager.list_jobs_async(task=SYNC_TASK, status="doing"))
    due = [store for store in _due(book_target) if store not in running]
    return await _defer_each_async(app, SYNC_TASK, "sync", due)


STALLED_AFTER = 30.0
"""Seconds without a worker heartbeat (procrastinate beats every 10 s) after which its running jobs are retried."""


async def retry_stalled(app: Any, seconds_since_heartbeat: float = STALLED_AFTER) -> list[int]:
    """Put back in the queue the running jobs of workers that stopped beating (killed, machine lost).

    A sync commits each page with its cursor, so a retried sync goes on from
    the last page stored; a retried push finds the shipments already recorded
    as sent and leaves them.
    """
    ids = []
    for job in await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=seconds_since_heartbeat):
        await app.job_manager.retry_job(job)
        ids.append(int(job.id))
    return ids


def _defer(app: Any, task_name: str, kind: str, store: str, **options: Any) -> int | None:
    task = app.tasks[task_name]
    try:
        return int(task.configure(lock=store, queueing_lock=f"{kind}:{store}", **options).defer(store=store))
    except pexc.AlreadyEnqueued:
        return None


def _again_after_quota(app: Any, task_name: str, kind: str, store: str, result: dict[str, Any]) -> dict[str, Any]:
    """Queue the job again for when the partner's quota window reopens, if the job left work for then.

    The work the quota stopped (accepts, pages, shipments) waits in the book;
    the new job is scheduled at the end of the block, so no worker picks it
    up (nor the schedule queues another: its queueing lock) before then.
    """
    until = result.get("blocked_until")
    if until:
        from datetime import datetime

        result["queued_again"] = _defer(app, task_name, kind, store, schedule_at=datetime.fromisoformat(until))
    return result


def defer_sync(app: Any, store: str) -> int | None:
    """Queue a sync of ``store``; its job id, or ``None`` when one is already waiting."""
    return _defer(app, SYNC_TASK, "sync", store)


def defer_push(app: Any, store: str) -> int | None:
    """Queue a push of ``store``'s outbox; its job id, or ``None`` when one is already waiting."""
    return _defer(app, PUSH_TASK, "push", store)


def defer_push_in(app: Any, store: str, conn: Any) -> int | None:
    """:func:`defer_push` inside the transaction open on ``conn`` (the PostgreSQL book's connection).

    The job row is written by procrastinate on that connection, so it
    commits or rolls back with whatever else the transaction holds (the
    shipment it is to push). A push already waiting is kept, under a
    savepoint, without spoiling the transaction.
    """
    conn.execute("SAVEPOINT queue_push")
    try:
        job = app.tasks[PUSH_TASK].configure(lock=store, queueing_lock=f"push:{store}", connection=conn.raw)
        job_id = int(job.defer(store=store))
    except pexc.AlreadyEnqueued:
        conn.execute("ROLLBACK TO SAVEPOINT queue_push")
        return None
    conn.execute("RELEASE SAVEPOINT queue_push")
    return job_id


@attrs.frozen
class JobLine:
    """One job of the queue, as ``jobs list`` shows it."""

    id: int
    kind: str
    store: str
    state: str
    attempts: int
    not_before: str | None = None
    """When a waiting job may start (ISO, UTC), if it was queued for later (the end of a quota block)."""


def _later(when: Any) -> str | None:
    """``when`` (a job's ``scheduled_at``) as ISO UTC, if it is still ahead."""
    from datetime import UTC, datetime

    if when is None or when <= datetime.now(UTC):
        return None
    return str(when.astimezone(UTC).isoformat(timespec="seconds"))


def list_jobs(app: Any, state: str | None = None) -> list[JobLine]:
    """The queue's jobs of our two tasks, oldest first, optionally of one state (todo, doing, succeeded ...)."""
    lines = []
    for job in app.job_manager.list_jobs(status=state):
        if job.task_name not in (SYNC_TASK, PUSH_TASK):
            continue
        lines.append(
            JobLine(
                id=int(job.id),
                kind="sync" if job.task_name == SYNC_TASK else "push",
                store=str(job.task_kwargs.get("store", "")),
                state=str(getattr(job.status, "value", job.status)),
                attempts=int(job.attempts or 0),
                not_before=_later(job.scheduled_at),
            )
        )
    return sorted(lines, key=lambda j: j.id)


def ship_queued(
    engine: Engine, app: Any, shipment: Shipment, *, force: bool, in_book: bool
) -> tuple[Recorded, int | None]:
    """Record ``shipment`` and queue a push of its store; the record and the push job's id (``None``: one waits).

    With the queue in the book's own PostgreSQL database (``in_book``) the
    shipment and its push job are written in one transaction: both are
    there, or (an error, a crash) neither. Otherwise the job is queued just
    after the shipment is committed; a crash in between leaves the shipment
    for the next ``push`` or push job of the store.
    """
    if not in_book:
        done = engine.ship(shipment, force=force)
        return done, (defer_push(app, shipment.store) if done.state == "pending" else None)
    with engine.book.transaction():
        done = engine.ship(shipment, force=force)
        job = defer_push_in(app, shipment.store, engine.book.conn) if done.state == "pending" else None
    return done, job
