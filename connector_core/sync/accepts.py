"""Draining a store's accept outbox: many accepts in flight at once, inside the marketplace's quota.

Accept intents are written with the page that needs them (``save_rows(...,
accept=keys)``), so a crash, a deadline or a quota block only delays them:
every sync drains what is pending, whichever page it came from.
:func:`drain_accepts` sends them on up to ``concurrency`` threads (accepts
spend their time waiting on the marketplace; each thread only calls the
plugin's ``accept_order`` and ``map_status``, the orders are read from the
book beforehand by the calling thread) and records every outcome in one
write transaction on the caller's connection, the same split as the
concurrent push (:mod:`connector_core.push.concurrent`).

Within the quota: before the first call the partner's quota block is
checked (:mod:`connector_core.quota`) and nothing is sent while it lasts; the
first quota answer blocks the partner, the accepts not yet sent stay pending
untouched (no attempt counted) and the drain ends.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import attrs

from connector_core import quota
from connector_core.db.leases import Lease
from connector_core.db.rows import AcceptEntry, OrderRow, order_from_row
from connector_core.errors import (
    ConnectorError,
    Interrupted,
    MarketplaceError,
    PayloadError,
    QuotaError,
    TransientError,
)
from connector_core.forking import check_concurrency
from connector_core.models import Order
from connector_core.runtime import Runtime
from connector_core.store_context import StoreContext
from connector_core.sync.pipeline import pipeline_for

log = logging.getLogger("connector_core.sync")

MAX_ACCEPT_ATTEMPTS = 10
"""An accept that failed for a passing reason this many times is given up (``failed``)."""


@attrs.frozen
class AcceptReport:
    """What one drain of a store's accept outbox did; ``deferred`` accepts wait for the quota."""

    accepted: int = 0
    retry: int = 0
    failed: int = 0
    deferred: int = 0
    quota_until: datetime | None = None


@attrs.define
class _Outcomes:
    done: list[str] = attrs.Factory(list)
    retry: list[tuple[str, str]] = attrs.Factory(list)
    failed: list[tuple[str, str]] = attrs.Factory(list)
    statuses: list[tuple[str, Any, Any]] = attrs.Factory(list)
    quota: QuotaError | None = None
    sent: set[str] = attrs.Factory(set)
    lock: threading.Lock = attrs.Factory(threading.Lock)


def drain_accepts(
    runtime: Runtime,
    store: StoreContext,
    *,
    orders: Mapping[str, Order] | None = None,
    rows: Mapping[str, OrderRow] | None = None,
    lease: Lease | None = None,
    concurrency: int | None = None,
) -> AcceptReport:
    """Send the store's pending accepts and record them in one write (see the module docstring).

    ``orders`` and ``rows`` are orders the caller already holds (the page
    just stored): they are not read back from the book. A passing failure
    leaves the accept pending for the next sync (given up after
    :data:`MAX_ACCEPT_ATTEMPTS`); a refusal marks it failed with the reason.
    """
    book = runtime.book
    pending = book.pending_accepts(store.name)
    if not pending:
        return AcceptReport()
    until = quota.blocked_until(runtime, store)
    if until is not None:
        return AcceptReport(deferred=len(pending), quota_until=until)
    threads = check_concurrency(concurrency if concurrency is not None else runtime.accept_concurrency)
    results = _Outcomes()
    work: list[tuple[AcceptEntry, Order]] = []
    for entry in pending:  # orders read here, on this thread's connection; the senders touch no book
        key = entry.order_key
        try:
            order = (orders or {}).get(key)
            if order is None:
                row = (rows or {}).get(key)
                order = order_from_row(row) if row is not None else book.get_order(store.name, key)
        except ConnectorError as err:  # e.g. the order left the book meanwhile
            results.failed.append((key, err.message))
            continue
        work.append((entry, order))
    unreadable = len(results.failed)
    if lease is not None:
        lease.check()
    # an attempt is counted, and committed, before anything is sent: after a crash or a timeout the
    # next drain knows which accepts may already have reached the marketplace
    book.claim_accepts(store.name, [entry.order_key for entry, _ in work])
    work = _refreshed(runtime, store, work, results)
    stop = threading.Event()
    if results.quota is not None:
        stop.set()

    def send(item: tuple[AcceptEntry, Order]) -> None:
        if stop.is_set():
            return
        _accept_one(runtime, store, item[0], item[1], results, stop)

    if threads == 1 or len(work) <= 1:
        for item in work:
            send(item)
    else:
        with ThreadPoolExecutor(min(threads, len(work)), thread_name_prefix="accept") as pool:
            list(pool.map(send, work))
    quota_until = quota.block(runtime, store, results.quota) if results.quota is not None else None
    unsent = [entry.order_key for entry, _ in work if entry.order_key not in results.sent]
    with book.transaction():
        book.finish_accepts(store.name, results.done, results.retry, results.failed, unsent)
        if results.statuses:
            book.update_statuses(store.name, results.statuses)
    deferred = len(work) - len(results.done) - len(results.retry) - (len(results.failed) - unreadable)
    return AcceptReport(
        accepted=len(results.done),
        retry=len(results.retry),
        failed=len(results.failed),
        deferred=max(deferred, 0),
        quota_until=quota_until,
    )


def _accept_one(
    runtime: Runtime, store: StoreContext, entry: AcceptEntry, order: Order, out: _Outcomes, stop: threading.Event
) -> None:
    key = entry.order_key
    with out.lock:
        out.sent.add(key)
    try:
        change = runtime.host.accept_order(store, order)
        status = runtime.host.map_status(store, change.marketplace_status.code)
        with out.lock:
            out.statuses.append((key, status, change.marketplace_status))
            out.done.append(key)
        return
    except QuotaError as err:  # the quota is used up: this one and every one not yet sent wait, uncounted
        stop.set()
        with out.lock:
            out.quota = out.quota or err
        return
    except TransientError as err:
        if entry.attempts + 1 >= MAX_ACCEPT_ATTEMPTS:
            outcome = ("failed", f"gave up after {entry.attempts + 1} attempts: {err.message}")
        else:
            outcome = ("retry", err.message)
    except (MarketplaceError, PayloadError, ConnectorError) as err:
        outcome = ("failed", err.message)
    except Interrupted:  # SIGTERM: the drain stops, nothing of it recorded, every accept stays pending
        stop.set()
        raise
    except Exception as exc:  # a plugin bug on one order: that accept alone fails, with what went wrong
        log.warning("%s: accepting %s failed", store.name, key, exc_info=True)
        outcome = ("failed", f"{type(exc).__name__}: {exc}")
    log.warning("%s: could not accept %s: %s", store.name, key, outcome[1])
    with out.lock:
        (out.retry if outcome[0] == "retry" else out.failed).append((key, outcome[1]))


def _refreshed(
    runtime: Runtime, store: StoreContext, work: list[tuple[AcceptEntry, Order]], out: _Outcomes
) -> list[tuple[AcceptEntry, Order]]:
    """``work`` with each accept that may have been sent before given the order as the marketplace has it now.

    An accept with attempts counted earlier (the process died mid-drain, or
    the answer timed out) may already have been applied: the plugin then sees
    the accepted order and answers ``already_applied`` instead of sending it
    again. A plugin without ``fetch_order``, or a fetch that fails, leaves the
    book's copy; a quota answer stops the drain (nothing more is sent).
    """
    pipeline = None
    fresh: list[tuple[AcceptEntry, Order]] = []
    for entry, order in work:
        if entry.attempts > 0 and out.quota is None:
            try:
                raw = runtime.host.fetch_order(store, entry.order_key)
                if raw is not None:
                    pipeline = pipeline or pipeline_for(runtime, store)
                    order = pipeline.process(raw)[0]
            except QuotaError as err:
                out.quota = err
            except ConnectorError as err:
                log.info(
                    "%s: could not read %s again before re-sending its accept: %s", store.name, entry.order_key, err
                )
        fresh.append((entry, order))
    return fresh
