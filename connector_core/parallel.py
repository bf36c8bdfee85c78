"""Many stores at once, and one store's outbox drained by several workers.

Marketplace calls spend their time waiting on the network, so the host runs
them on bounded worker threads. SQLite is never shared between threads: each
worker has its own :class:`~connector_core.store.OrderBook` connection on the
same file (WAL mode: readers do not block, writers queue on SQLite's lock for
up to the book's busy timeout), and each store is still synced or pushed
under its lease.

* :func:`sync_all`: one full :meth:`Engine.sync` per store, ``concurrency``
  stores at a time; a store that fails does not stop the others.
* :func:`push_concurrently`: the store's pending shipments handed out to
  ``concurrency`` workers. Each shipment is pushed by exactly one worker;
  the workers only talk to the marketplace, and the calling thread records
  the finished pushes as :meth:`Engine.push` records them, a batch of them
  per write transaction. Delivery stays at-least-once and a re-push stays
  idempotent (the plugin answers ``already_applied``).
"""

from __future__ import annotations

import copy
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING

from connector_core.errors import ConfigError, ConnectorError
from connector_core.store import OrderBook

if TYPE_CHECKING:
    from connector_core.engine import Engine, PushAttempt, PushOutcome, PushReport, SyncReport
    from connector_core.store_context import StoreContext

DEFAULT_CONCURRENCY = 8


def _check(concurrency: int) -> int:
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ConfigError(f"concurrency must be a whole number >= 1, got {concurrency!r}")
    return concurrency


@contextmanager
def _worker_engines(engine: Engine) -> Iterator[Callable[[], Engine]]:
    """A per-thread copy of ``engine`` with its own connection to the same order book."""
    local = threading.local()
    opened: list[OrderBook] = []
    lock = threading.Lock()

    def get() -> Engine:
        worker: Engine | None = getattr(local, "engine", None)
        if worker is None:
            book = OrderBook(engine.book.path)
            with lock:
                opened.append(book)
            worker = copy.copy(engine)
            worker.book = book
            local.engine = worker
        return worker

    try:
        yield get
    finally:
        for book in opened:
            book.close()


def sync_all(
    engine: Engine, stores: Sequence[str], *, concurrency: int = DEFAULT_CONCURRENCY
) -> list[SyncReport | ConnectorError]:
    """Sync every store in ``stores``, ``concurrency`` at a time.

    Returns one entry per store, in the order given: its :class:`SyncReport`,
    or the :class:`ConnectorError` that stopped that store's sync.
    """
    _check(concurrency)
    if concurrency == 1 or len(stores) <= 1:
        return [_sync_one(lambda: engine, name) for name in stores]
    with _worker_engines(engine) as worker, ThreadPoolExecutor(concurrency, thread_name_prefix="sync") as pool:
        return list(pool.map(lambda name: _sync_one(worker, name), stores))


def _sync_one(worker: Callable[[], Engine], name: str) -> SyncReport | ConnectorError:
    try:
        return worker().sync(name)
    except ConnectorError as err:
        return err


def _record_batch(
    engine: Engine, store: StoreContext, finished: list[PushAttempt | BaseException]
) -> list[PushOutcome]:
    """Record the finished pushes in one write transaction on the caller's connection; then re-raise
    the first error a worker met (the pushes it did not record are pushed again next time)."""
    attempts = [a for a in finished if not isinstance(a, BaseException)]
    outcomes: list[PushOutcome] = []
    if attempts:
        with engine.book.transaction():
            outcomes = [engine._record_push(store, attempt) for attempt in attempts]
    failure = next((a for a in finished if isinstance(a, BaseException)), None)
    if failure is not None:
        raise failure
    return outcomes


def push_concurrently(engine: Engine, store_name: str, *, concurrency: int = DEFAULT_CONCURRENCY) -> PushReport:
    """Push the store's pending shipments with ``concurrency`` workers (see the module docstring)."""
    from connector_core.engine import PushReport

    _check(concurrency)
    if concurrency == 1:
        return engine.push(store_name)
    if not engine.book.pending_shipments(store_name):
        return PushReport(store=store_name)
    store = engine.store_context(store_name)
    outcomes: list[PushOutcome] = []
    try:
        with engine.book.lease(store_name, purpose="push", ttl=engine.lease_ttl, wait=engine.lease_wait) as lease:
            entries = engine.book.pending_shipments(store_name)  # read again under the lease

            results: queue.SimpleQueue[PushAttempt | BaseException] = queue.SimpleQueue()

            def push_one(index: int) -> None:
                try:
                    lease.check()
                    entry = entries[index]
                    results.put(worker()._attempt_push(store, entry.id, entry.order_key, entry.shipment))
                except BaseException as exc:
                    results.put(exc)

            with (
                _worker_engines(engine) as worker,
                ThreadPoolExecutor(concurrency, thread_name_prefix="push") as pool,
            ):
                futures = [pool.submit(push_one, i) for i in range(len(entries))]
                try:
                    left = len(entries)
                    while left:
                        finished = [results.get()]  # wait for one, then take every other one already there
                        while True:
                            try:
                                finished.append(results.get_nowait())
                            except queue.Empty:
                                break
                        left -= len(finished)
                        outcomes.extend(_record_batch(engine, store, finished))
                finally:
                    for future in futures:
                        future.cancel()
            outcomes.sort(key=lambda o: o.outbox_id)
            engine.deliver_notifications(store)
    finally:
        store.http.close()
    return PushReport.from_outcomes(store_name, outcomes)
