"""One store's outbox drained by several senders: threads, or threads in forked processes.

Marketplace calls spend their time waiting on the network, so the push runs
them on bounded worker threads. SQLite is never shared between threads: each
sender has its own connection on the same file (WAL mode: readers do not
block). The store's pending shipments are handed out to ``concurrency``
senders; each shipment is pushed by exactly one of them
(:func:`~connector_core.push.outbox.attempt_push`: marketplace calls only),
and the calling thread records the finished pushes
(:func:`~connector_core.push.outbox.record_pushes`), a batch of them per write
transaction: it waits up to :data:`BATCH_WAIT` after the first of a batch
for more to finish, so one commit covers many pushes. Delivery stays
at-least-once and a re-push stays idempotent (the plugin answers
``already_applied``).

With ``processes=N`` the senders run in N forked processes (threads split
between them) and send each attempt back; this process keeps the lease,
checks it before each batch, and records everything. The processes are forked
before the lease is taken (:mod:`connector_core.forking`), so no transaction
of this process is open while a fork copies it; each opens its own
connection. A sender process that dies stops the push with a
:class:`ConnectorError`; its unrecorded shipments stay pending.
"""

from __future__ import annotations

import multiprocessing
import pickle
import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from connector_core import history
from connector_core.db.rows import OutboxEntry
from connector_core.errors import ConnectorError
from connector_core.forking import (
    can_fork,
    check_concurrency,
    check_processes,
    enter_forked_child,
    shares,
    start_forked,
)
from connector_core.push import outbox
from connector_core.push.outbox import PushAttempt, PushOutcome, PushReport, deliver_notifications, push_store
from connector_core.runtime import Runtime, per_thread
from connector_core.store_context import StoreContext

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

DEFAULT_CONCURRENCY = 8


def _record_batch(
    runtime: Runtime, store: StoreContext, finished: list[PushAttempt | BaseException]
) -> list[PushOutcome]:
    """Record the finished pushes in one write transaction on the caller's connection; then re-raise
    the first error a worker met (the pushes it did not record are pushed again next time)."""
    attempts = [a for a in finished if not isinstance(a, BaseException)]
    outcomes = outbox.record_pushes(runtime, store, attempts) if attempts else []
    failure = next((a for a in finished if isinstance(a, BaseException)), None)
    if failure is not None:
        raise failure
    return outcomes


BATCH_WAIT = 0.02
"""Seconds the recorder waits for more finished pushes after the first of a batch (a crash re-pushes them)."""
BATCH_MAX = 64


def _next_batch(
    results: queue.SimpleQueue[PushAttempt | BaseException], left: int
) -> list[PushAttempt | BaseException]:
    """Wait for one finished push, then gather more for up to :data:`BATCH_WAIT` (at most ``left``, and
    :data:`BATCH_MAX`): a batch of several pushes costs one commit where one per push would cost many."""
    finished = [results.get()]
    limit = min(left, BATCH_MAX)
    deadline = time.monotonic() + BATCH_WAIT
    while len(finished) < limit:
        wait = deadline - time.monotonic()
        try:
            finished.append(results.get(timeout=wait) if wait > 0 else results.get_nowait())
        except queue.Empty:
            break
    return finished


def push_concurrently(
    runtime: Runtime, store_name: str, *, concurrency: int = DEFAULT_CONCURRENCY, processes: int = 1
) -> PushReport:
    """Push the store's pending shipments with ``concurrency`` workers (see the module docstring).

    ``processes`` > 1 runs the workers (the marketplace calls) in that many
    forked processes, ``concurrency`` threads in all; this process still
    holds the lease and records every push.
    """
    check_concurrency(concurrency)
    check_processes(processes)
    if concurrency == 1 and processes == 1:
        return push_store(runtime, store_name)
    pending = runtime.book.pending_shipments(store_name)
    if not pending:
        return PushReport(store=store_name)
    senders: _PushProcesses | None = None
    if processes > 1 and len(pending) > 1 and can_fork() and not runtime.book.conn.in_transaction:
        # forked first, before the lease and its renewal thread: no transaction of this process is open
        # while the children copy it, and they open connections of their own
        senders = _PushProcesses(runtime, store_name, concurrency, min(processes, len(pending)))
    store = runtime.store_context(store_name)
    outcomes: list[PushOutcome] = []
    try:
        with (
            history.recording(runtime.book, "push", store_name, history.sites_of(store.settings)) as run,
            runtime.book.lease(store_name, purpose="push", ttl=runtime.lease_ttl, wait=runtime.lease_wait) as lease,
        ):
            runtime.book.close_abandoned_runs("push", store_name, keep=run.id)  # the lease is ours alone
            entries = runtime.book.pending_shipments(store_name)  # read again under the lease

            results: queue.SimpleQueue[PushAttempt | BaseException] = queue.SimpleQueue()

            def push_one(index: int) -> None:
                try:
                    lease.check()
                    entry = entries[index]
                    results.put(outbox.attempt_push(worker(), store, entry.id, entry.order_key, entry.shipment))
                except BaseException as exc:
                    results.put(exc)

            tally = outbox.PushTally(run)

            def record_all() -> None:
                left = len(entries)
                while left:
                    finished = _next_batch(results, left)
                    left -= len(finished)
                    lease.check()
                    recorded = _record_batch(runtime, store, finished)
                    outcomes.extend(recorded)
                    tally.add(recorded)

            if senders is not None:
                senders.start(entries, results)
                try:
                    record_all()
                finally:
                    senders.close()
            else:
                with (
                    per_thread(runtime) as worker,
                    ThreadPoolExecutor(concurrency, thread_name_prefix="push") as pool,
                ):
                    futures = [pool.submit(push_one, i) for i in range(len(entries))]
                    try:
                        record_all()
                    finally:
                        for future in futures:
                            future.cancel()
            outcomes.sort(key=lambda o: o.outbox_id)
            deliver_notifications(runtime, store)
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

    def __init__(self, runtime: Runtime, store_name: str, concurrency: int, processes: int) -> None:
        context = multiprocessing.get_context("fork")
        self._children: list[tuple[multiprocessing.process.BaseProcess, Connection, Connection]] = []
        self._collectors: list[threading.Thread] = []
        self._threads = shares(concurrency, processes)
        try:
            for threads in self._threads:
                work_out, work_in = context.Pipe(duplex=False)  # child reads work_out, this process writes work_in
                done_out, done_in = context.Pipe(duplex=False)  # this process reads done_out
                inherited = [work_in, done_out, *(c for _, w, d in self._children for c in (w, d))]
                child = context.Process(
                    target=_push_child,
                    args=(work_out, done_in, inherited, runtime, store_name, threads),
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
    runtime: Runtime,
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
    mine = runtime.own_copy()  # the inherited connection stays the parent's, untouched
    store = mine.store_context(store_name)
    lock = threading.Lock()

    def push_one(entry: OutboxEntry) -> None:
        try:
            message: PushAttempt | BaseException = outbox.attempt_push(
                worker(), store, entry.id, entry.order_key, entry.shipment
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
        with per_thread(mine) as worker, ThreadPoolExecutor(concurrency, thread_name_prefix="push") as pool:
            list(pool.map(push_one, entries))
    finally:
        store.http.close()
        mine.book.close()
        done.close()
