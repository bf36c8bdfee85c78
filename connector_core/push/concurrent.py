"""Many stores at once, and one store's outbox drained by several workers.

Marketplace calls spend their time waiting on the network, so the host runs
them on bounded worker threads. SQLite is never shared between threads: each
worker has its own :class:`~connector_core.store.OrderBook` connection on the
same file (WAL mode: readers do not block, writers queue on SQLite's lock for
up to the book's busy timeout), and each store is still synced or pushed
under its lease.

* :func:`sync_all`: one full :meth:`Engine.sync` per store, ``concurrency``
  stores at a time; a store that fails does not stop the others. With
  ``processes=N`` the stores are shared out among N forked processes (the
  threads split between them), so parsing and mapping use N cores instead of
  one interpreter's: plugins' hooks then run in those processes.
* :func:`push_concurrently`: the store's pending shipments handed out to
  ``concurrency`` workers. Each shipment is pushed by exactly one worker;
  the workers only talk to the marketplace, and the calling thread records
  the finished pushes as :meth:`Engine.push` records them, a batch of them
  per write transaction. Delivery stays at-least-once and a re-push stays
  idempotent (the plugin answers ``already_applied``). With ``processes=N``
  the workers run in N forked processes (threads split between them) and
  send each attempt back; this process keeps the lease, checks it before each
  batch, and records everything. The processes are forked before the lease is
  taken, so no transaction of this process is open while a fork copies it;
  each opens its own connection. A worker process that dies stops the push
  with a :class:`ConnectorError`; its unrecorded shipments stay pending.
"""

from __future__ import annotations

import copy
import multiprocessing
import multiprocessing.connection
import pickle
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING

from connector_core.engine import SyncReport
from connector_core.errors import ConfigError, ConnectorError
from connector_core.store import OrderBook
from connector_core.workers import can_fork, enter_forked_child, start_forked

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from connector_core.engine import Engine, PushAttempt, PushOutcome, PushReport
    from connector_core.store import OutboxEntry
    from connector_core.store_context import StoreContext

DEFAULT_CONCURRENCY = 8
MAX_PROCESSES = 64


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
            worker = _own_engine(engine)
            with lock:
                opened.append(worker.book)
            local.engine = worker
        return worker

    try:
        yield get
    finally:
        for book in opened:
            book.close()


def _own_engine(engine: Engine) -> Engine:
    """A copy of ``engine`` on a connection of its own to the same order book (close its ``book``)."""
    mine = copy.copy(engine)
    mine.book = OrderBook(engine.book.path)
    return mine


def check_processes(processes: int) -> int:
    """A process count from the caller: a whole number from 1 to :data:`MAX_PROCESSES`."""
    if isinstance(processes, bool) or not isinstance(processes, int) or not 1 <= processes <= MAX_PROCESSES:
        raise ConfigError(f"processes must be a whole number from 1 to {MAX_PROCESSES}, got {processes!r}")
    return processes


def sync_all(
    engine: Engine, stores: Sequence[str], *, concurrency: int = DEFAULT_CONCURRENCY, processes: int = 1
) -> list[SyncReport | ConnectorError]:
    """Sync every store in ``stores``, ``concurrency`` at a time.

    Returns one entry per store, in the order given: its :class:`SyncReport`,
    or the :class:`ConnectorError` that stopped that store's sync.

    ``processes`` > 1 shares the stores out among that many forked processes
    (where the platform can fork), ``concurrency`` threads in all; each
    process opens its own connections to the order book. A process that dies
    leaves a :class:`ConnectorError` for each of its stores not reported.
    SQLite's own state is copied by a fork: call it while no thread of this
    process is inside an order-book transaction (it runs on threads instead
    when ``engine.book`` is).
    """
    _check(concurrency)
    check_processes(processes)
    if processes > 1 and len(stores) > 1 and can_fork() and not engine.book.conn.in_transaction:
        return _sync_in_processes(engine, stores, concurrency, min(processes, len(stores)))
    if concurrency == 1 or len(stores) <= 1:
        return [_sync_one(lambda: engine, name) for name in stores]
    with _worker_engines(engine) as worker, ThreadPoolExecutor(concurrency, thread_name_prefix="sync") as pool:
        return list(pool.map(lambda name: _sync_one(worker, name), stores))


def _sync_one(worker: Callable[[], Engine], name: str) -> SyncReport | ConnectorError:
    try:
        return worker().sync(name)
    except ConnectorError as err:
        return err


def _shares(total: int, parts: int) -> list[int]:
    """``total`` threads split as evenly as possible among ``parts`` processes, at least one each."""
    return [max(1, total // parts + (1 if i < total % parts else 0)) for i in range(parts)]


def _sync_in_processes(
    engine: Engine, stores: Sequence[str], concurrency: int, processes: int
) -> list[SyncReport | ConnectorError]:
    context = multiprocessing.get_context("fork")
    groups = [list(range(i, len(stores), processes)) for i in range(processes)]  # round robin: sizes differ by 1
    children: list[tuple[multiprocessing.process.BaseProcess, Connection, list[int]]] = []
    results: dict[int, SyncReport | ConnectorError] = {}
    try:
        for indices, threads in zip(groups, _shares(concurrency, processes), strict=True):
            reader, writer = context.Pipe(duplex=False)
            child = context.Process(
                target=_sync_child,
                args=(writer, [reader, *(r for _, r, _ in children)], engine, [stores[i] for i in indices], threads),
                name="connector-host sync",
                daemon=True,
            )
            start_forked(child)
            writer.close()
            children.append((child, reader, indices))
        waiting = {reader: (child, indices) for child, reader, indices in children}
        while waiting:
            for ready in multiprocessing.connection.wait(list(waiting)):
                assert isinstance(ready, multiprocessing.connection.Connection)
                done, indices = waiting.pop(ready)
                try:
                    reports: list[SyncReport | ConnectorError] = pickle.loads(ready.recv_bytes())
                except (EOFError, OSError):
                    done.join(5)
                    reports = [
                        ConnectorError(
                            f"the process syncing {stores[i]!r} ended before reporting (exit code {done.exitcode})",
                            store=stores[i],
                        )
                        for i in indices
                    ]
                results.update(zip(indices, reports, strict=True))
    finally:
        for process, reader, _ in children:
            if process.is_alive() and len(results) < len(stores):
                process.terminate()  # interrupted: each store's sync is crash-safe, its lease goes stale
            process.join(5)
            reader.close()
    return [results[i] for i in range(len(stores))]


def _sync_child(
    conn: Connection, parent_ends: list[Connection], engine: Engine, stores: list[str], concurrency: int
) -> None:
    """Child body: sync ``stores`` on connections of its own and send the reports back in one message."""
    enter_forked_child(parent_ends)
    mine = _own_engine(engine)  # the inherited connection stays the parent's, untouched
    try:
        reports = sync_all(mine, stores, concurrency=concurrency)
        try:
            data = pickle.dumps(reports, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # an error a plugin raised that cannot travel: its message does
            data = pickle.dumps(
                [r if isinstance(r, SyncReport) else ConnectorError(str(r), store=r.store) for r in reports],
                protocol=pickle.HIGHEST_PROTOCOL,
            )
        conn.send_bytes(data)
    finally:
        mine.book.close()
        conn.close()


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


def push_concurrently(
    engine: Engine, store_name: str, *, concurrency: int = DEFAULT_CONCURRENCY, processes: int = 1
) -> PushReport:
    """Push the store's pending shipments with ``concurrency`` workers (see the module docstring).

    ``processes`` > 1 runs the workers (the marketplace calls) in that many
    forked processes, ``concurrency`` threads in all; this process still
    holds the lease and records every push.
    """
    from connector_core.engine import PushReport

    _check(concurrency)
    check_processes(processes)
    if concurrency == 1 and processes == 1:
        return engine.push(store_name)
    pending = engine.book.pending_shipments(store_name)
    if not pending:
        return PushReport(store=store_name)
    senders: _PushProcesses | None = None
    if processes > 1 and len(pending) > 1 and can_fork() and not engine.book.conn.in_transaction:
        # forked first, before the lease and its renewal thread: no transaction of this process is open
        # while the children copy it, and they open connections of their own
        senders = _PushProcesses(engine, store_name, concurrency, min(processes, len(pending)))
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

            def record_all() -> None:
                left = len(entries)
                while left:
                    finished = [results.get()]  # wait for one, then take every other one already there
                    while True:
                        try:
                            finished.append(results.get_nowait())
                        except queue.Empty:
                            break
                    left -= len(finished)
                    lease.check()
                    outcomes.extend(_record_batch(engine, store, finished))

            if senders is not None:
                senders.start(entries, results)
                try:
                    record_all()
                finally:
                    senders.close()
            else:
                with (
                    _worker_engines(engine) as worker,
                    ThreadPoolExecutor(concurrency, thread_name_prefix="push") as pool,
                ):
                    futures = [pool.submit(push_one, i) for i in range(len(entries))]
                    try:
                        record_all()
                    finally:
                        for future in futures:
                            future.cancel()
            outcomes.sort(key=lambda o: o.outbox_id)
            engine.deliver_notifications(store)
    finally:
        if senders is not None:
            senders.close()
        store.http.close()
    return PushReport.from_outcomes(store_name, outcomes)


class _PushProcesses:
    """Forked processes that push a store's shipments; each attempt comes back to this process.

    The processes are forked first and wait; :meth:`start` deals them the
    entries (round robin) once the caller holds the lease and has read them.
    """

    def __init__(self, engine: Engine, store_name: str, concurrency: int, processes: int) -> None:
        context = multiprocessing.get_context("fork")
        self._children: list[tuple[multiprocessing.process.BaseProcess, Connection, Connection]] = []
        self._collectors: list[threading.Thread] = []
        self._threads = _shares(concurrency, processes)
        try:
            for threads in self._threads:
                work_out, work_in = context.Pipe(duplex=False)  # child reads work_out, this process writes work_in
                done_out, done_in = context.Pipe(duplex=False)  # this process reads done_out
                inherited = [work_in, done_out, *(c for _, w, d in self._children for c in (w, d))]
                child = context.Process(
                    target=_push_child,
                    args=(work_out, done_in, inherited, engine, store_name, threads),
                    name="connector-host push",
                    daemon=True,
                )
                start_forked(child)
                work_out.close()
                done_in.close()
                self._children.append((child, work_in, done_out))
        except BaseException:
            self.close()
            raise

    def start(self, entries: Sequence[OutboxEntry], results: queue.SimpleQueue[PushAttempt | BaseException]) -> None:
        """Deal ``entries`` out; a thread per process passes its attempts on to ``results``."""
        count = len(self._children)
        for i, (child, work_in, done_out) in enumerate(self._children):
            share = list(entries[i::count])
            work_in.send_bytes(pickle.dumps(share, protocol=pickle.HIGHEST_PROTOCOL))
            work_in.close()
            collector = threading.Thread(
                target=_collect, args=(done_out, child, len(share), results), name="push results", daemon=True
            )
            collector.start()
            self._collectors.append(collector)

    def close(self) -> None:
        """Stop the processes (any still pushing: what was not recorded stays pending, pushed again next time)."""
        for _, work_in, _ in self._children:
            work_in.close()  # a process still waiting for its share sees the end and exits
        for process, _, _ in self._children:
            process.join(2)  # done with its share, it is closing its connections
            if process.is_alive():
                process.terminate()
                process.join(5)
        for collector in self._collectors:
            collector.join(5)
        for _, _, done_out in self._children:
            done_out.close()
        self._children, self._collectors = [], []


def _collect(
    reader: Connection,
    child: multiprocessing.process.BaseProcess,
    expected: int,
    results: queue.SimpleQueue[PushAttempt | BaseException],
) -> None:
    """Pass a push process's attempts on to ``results``; one error in their place if it ends early."""
    received = 0
    try:
        while received < expected:
            results.put(pickle.loads(reader.recv_bytes()))
            received += 1
    except (EOFError, OSError):
        child.join(5)
        results.put(
            ConnectorError(
                f"a push process ended after {received} of its {expected} shipments"
                f" (exit code {child.exitcode}); the rest stay pending"
            )
        )


def _push_child(
    work: Connection,
    done: Connection,
    inherited: list[Connection],
    engine: Engine,
    store_name: str,
    concurrency: int,
) -> None:
    """Child body: wait for a share of shipments, push it on ``concurrency`` threads, send each attempt back."""
    enter_forked_child(inherited)
    try:
        entries: list[OutboxEntry] = pickle.loads(work.recv_bytes())
    except (EOFError, OSError):
        return  # nothing to push after all
    finally:
        work.close()
    mine = _own_engine(engine)  # the inherited connection stays the parent's, untouched
    store = mine.store_context(store_name)
    lock = threading.Lock()

    def push_one(entry: OutboxEntry) -> None:
        try:
            message: PushAttempt | BaseException = worker()._attempt_push(
                store, entry.id, entry.order_key, entry.shipment
            )
        except Exception as exc:  # a plugin bug: the parent records the others, then raises it
            message = exc
        try:
            data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:
            data = pickle.dumps(
                ConnectorError(f"{type(message).__name__}: {message}"), protocol=pickle.HIGHEST_PROTOCOL
            )
        with lock:
            done.send_bytes(data)

    try:
        with _worker_engines(mine) as worker, ThreadPoolExecutor(concurrency, thread_name_prefix="push") as pool:
            list(pool.map(push_one, entries))
    finally:
        store.http.close()
        mine.book.close()
        done.close()
