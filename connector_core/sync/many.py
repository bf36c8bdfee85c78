"""Many stores at once: one full sync per store, ``concurrency`` at a time, over threads or processes.

Each thread has its own connection to the order book (WAL: readers do not
block, writers queue on SQLite's lock up to the book's busy timeout), and
each store is still synced under its lease. A store that fails does not stop
the others. With ``processes=N`` the stores are shared out among N forked
processes (:mod:`connector_core.forking`), so parsing and mapping use N cores
instead of one interpreter's: plugins' hooks then run in those processes.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import pickle
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from connector_core.errors import ConnectorError, Interrupted
from connector_core.forking import (
    can_fork,
    check_concurrency,
    check_processes,
    enter_forked_child,
    shares,
    start_forked,
)
from connector_core.runtime import Runtime, per_thread
from connector_core.sync.runner import SyncReport, sync_store

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

DEFAULT_CONCURRENCY = 8


def sync_all(
    runtime: Runtime, stores: Sequence[str], *, concurrency: int = DEFAULT_CONCURRENCY, processes: int = 1
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
    when ``runtime.book`` is).
    """
    check_concurrency(concurrency)
    check_processes(processes)
    if processes > 1 and len(stores) > 1 and can_fork() and not runtime.book.conn.in_transaction:
        return _sync_in_processes(runtime, stores, concurrency, min(processes, len(stores)))
    if concurrency == 1 or len(stores) <= 1:
        return [_sync_one(lambda: runtime, name) for name in stores]
    with per_thread(runtime) as worker, ThreadPoolExecutor(concurrency, thread_name_prefix="sync") as pool:
        return list(pool.map(lambda name: _sync_one(worker, name), stores))


def _sync_one(worker: Callable[[], Runtime], name: str) -> SyncReport | ConnectorError:
    try:
        return sync_store(worker(), name)
    except ConnectorError as err:
        return err
    except Interrupted:
        raise
    except Exception as exc:  # a bug met by one store is that store's error; the others go on
        return ConnectorError(f"internal error {type(exc).__name__}: {exc}", store=name)


def _sync_in_processes(
    runtime: Runtime, stores: Sequence[str], concurrency: int, processes: int
) -> list[SyncReport | ConnectorError]:
    context = multiprocessing.get_context("fork")
    groups = [list(range(i, len(stores), processes)) for i in range(processes)]  # round robin: sizes differ by 1
    children: list[tuple[multiprocessing.process.BaseProcess, Connection, list[int]]] = []
    results: dict[int, SyncReport | ConnectorError] = {}
    try:
        for indices, threads in zip(groups, shares(concurrency, processes), strict=True):
            reader, writer = context.Pipe(duplex=False)
            child = context.Process(
                target=_sync_child,
                args=(writer, [reader, *(r for _, r, _ in children)], runtime, [stores[i] for i in indices], threads),
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
    conn: Connection, parent_ends: list[Connection], runtime: Runtime, stores: list[str], concurrency: int
) -> None:
    """Child body: sync ``stores`` on connections of its own and send the reports back in one message."""
    enter_forked_child(parent_ends)
    mine = runtime.own_copy()  # the inherited connection stays the parent's, untouched
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
