"""Syncing one store: connect, fetch since the saved cursor, map, store page by page, accept.

``sync`` = connect -> fetch since the saved cursor -> per page: the mapping
pipeline (:mod:`connector_core.sync.pipeline`: validate the raw payload,
``map_order``, status mapping, enrichment, validate the canonical JSON) ->
store the page, its rejects, the accept intents it needs and its cursor in
one transaction -> drain the accept outbox. A payload that fails anywhere is
quarantined with its reason and JSON path; the page goes on without it.

A large sync (a first page of :data:`~connector_core.sync.workers.MIN_PAGE`
orders or more) maps its pages in worker processes while this process
fetches and stores (:mod:`connector_core.sync.workers`), and writes in bulk
mode (:meth:`OrderBook.bulk_writes`).

The sync runs under the store's lease, so two host processes on one order
book never sync the same store at once.
"""

from __future__ import annotations

import contextlib
import logging
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import attrs

from connector_core import catalogue, history
from connector_core.db.leases import Lease
from connector_core.db.rows import OrderRow, PageStats, Reject, order_from_row, prepare_row
from connector_core.errors import ConnectorError, MarketplaceError, PayloadError, TransientError, WorkerFailed
from connector_core.forking import auto_workers, single_threaded
from connector_core.models import CatalogueEntry, FetchPage, Order, StatusChange
from connector_core.runtime import Runtime
from connector_core.secrets import redact
from connector_core.store_context import StoreContext
from connector_core.sync.pipeline import MappedPage, Pipeline, raw_schema_of
from connector_core.sync.workers import MIN_PAGE, MapWorkers

log = logging.getLogger("connector_core.sync")

REFETCH_PER_PAGE = 50
"""At most this many rejected orders of one page are fetched again (``fetch_order``)."""
CATALOGUE_SNAPSHOT_MAX = 500_000
"""Map workers get the catalogue as a snapshot; a larger catalogue keeps the mapping in process."""
REFETCH_STAGES = frozenset({"parse", "validation"})
"""Reject stages worth a second fetch: a copy that is malformed or fails the raw schema may be a
transfer fault. Mapping and canonical rejects of a well-formed document are deterministic."""
MAX_ACCEPT_ATTEMPTS = 10
"""An accept that failed for a passing reason this many times is given up (``failed``)."""


@attrs.frozen
class SyncReport:
    """What one sync of one store did. Also handed to the progress callback after each page."""

    store: str
    pages: int = 0
    fetched: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    accepted: int = 0
    accept_errors: int = 0
    cursor: Any = None
    interrupted: bool = False
    """Stopped early at a page boundary (Ctrl-C, SIGTERM): every page before it is stored with its cursor."""

    @property
    def stored(self) -> int:
        """Orders written or confirmed unchanged."""
        return self.inserted + self.updated + self.unchanged


@attrs.frozen
class AcceptReport:
    """What one drain of a store's accept outbox did."""

    accepted: int = 0
    retry: int = 0
    failed: int = 0


Progress = Callable[[SyncReport], None]


class StopSignal(Protocol):
    """What tells a sync to stop at the next page boundary (a :class:`threading.Event` will do)."""

    def is_set(self) -> bool: ...


def pipeline_for(runtime: Runtime, store: StoreContext) -> Pipeline:
    """The mapping pipeline of ``store``, enriching from the order book's catalogue when its settings say so."""
    products = runtime.host_settings(store).products
    conn = getattr(runtime.book, "conn", None)
    source = None
    if products.use_catalogue and conn is not None:
        source = lambda skus: catalogue.lookup_for(conn, skus)  # noqa: E731
    return Pipeline(runtime.host, store, raw_schema_of(runtime.host, store.marketplace), products, source)


def sync_store(
    runtime: Runtime, store_name: str, progress: Progress | None = None, stop: StopSignal | None = None
) -> SyncReport:
    """Import the store's new and changed orders; see the module docstring.

    When ``stop`` is set, the sync ends after the page it is storing (the
    report says ``interrupted``). The sync is recorded in the run history.
    """
    store = runtime.store_context(store_name)
    workers = worker_count(runtime)  # before the lease's own renewal thread starts
    try:
        with (
            history.recording(runtime.book, "sync", store_name, history.sites_of(store.settings)) as run,
            runtime.book.lease(store_name, purpose="sync", ttl=runtime.lease_ttl, wait=runtime.lease_wait) as lease,
        ):

            def track(report: SyncReport) -> None:
                _count(run, report)
                if progress is not None:
                    progress(report)

            report = _sync(runtime, store, track, lease, workers, stop)
            _count(run, report)
            run.state = "interrupted" if report.interrupted else "done"
            return report
    finally:
        store.http.close()


def _count(run: history.RunLog, report: SyncReport) -> None:
    run.update(
        fetched=report.fetched,
        stored=report.stored,
        rejected=report.rejected,
        accepted=report.accepted,
        deferred=int(getattr(report, "deferred", 0)),
        errors=report.accept_errors,
    )
    run.cursor = report.cursor


def worker_count(runtime: Runtime) -> int:
    """Map workers for the next sync: the runtime's choice, else the default when no other thread runs."""
    if runtime.workers is not None:
        return runtime.workers
    # a fork copies only the calling thread: by default, only a single-threaded host forks
    return auto_workers() if single_threaded() else 0


def _sync(
    runtime: Runtime,
    store: StoreContext,
    progress: Progress | None,
    lease: Lease,
    workers: int,
    stop: StopSignal | None,
) -> SyncReport:
    host, book = runtime.host, runtime.book
    host.connect(store)
    if runtime.host_settings(store).products.import_marketplace_catalogue:
        refresh_catalogue(runtime, store)
    since = book.get_cursor(store.name)
    pipeline = pipeline_for(runtime, store)
    report = SyncReport(store=store.name, cursor=since)
    pool: MapWorkers | None = None
    in_flight: deque[FetchPage] = deque()  # pages handed to the workers, in fetch order

    def finish(page: FetchPage, mapped: MappedPage) -> None:
        nonlocal report
        report = _store_page(runtime, pipeline, page, mapped, lease, report)
        if progress is not None:
            progress(report)

    def without_workers(err: WorkerFailed) -> None:
        nonlocal pool
        log.warning("%s: %s; mapping the rest of this sync in process", store.name, err)
        assert pool is not None
        pool.close()
        pool = None
        while in_flight:  # mapping is deterministic: the pages a worker held are mapped here instead
            page = in_flight.popleft()
            finish(page, pipeline.map_page(page.orders, keep_orders=True))

    with contextlib.ExitStack() as stack:
        large = False
        stack.callback(lambda: pool.close() if pool is not None else None)
        for page in host.fetch_orders(store, since=since):
            if not large and len(page.orders) >= MIN_PAGE:  # the first large page: this sync is an import
                large = True
                stack.enter_context(book.bulk_writes())  # fewer WAL checkpoints
                if workers:
                    pool = _start_workers(runtime, pipeline, workers)  # tried once per sync
            if pool is None:
                finish(page, pipeline.map_page(page.orders, keep_orders=True))
            else:
                try:
                    pool.submit(list(page.orders))
                    in_flight.append(page)
                    while pool.full:
                        finish(in_flight[0], pool.receive())
                        in_flight.popleft()
                except WorkerFailed as err:
                    if not in_flight or in_flight[-1] is not page:
                        in_flight.append(page)
                    without_workers(err)
            if stop is not None and stop.is_set():  # a page boundary: the pages in flight are stored below
                report = attrs.evolve(report, interrupted=True)
                break
        while pool is not None and in_flight:
            try:
                finish(in_flight[0], pool.receive())
                in_flight.popleft()
            except WorkerFailed as err:
                without_workers(err)
    if report.pages == 0 and not report.interrupted:  # nothing fetched: accepts left over still go out
        drained = drain_accepts(runtime, store, lease=lease)
        report = attrs.evolve(
            report, accepted=drained.accepted, accept_errors=report.accept_errors + drained.failed + drained.retry
        )
    return report


def _start_workers(runtime: Runtime, pipeline: Pipeline, count: int) -> MapWorkers | None:
    snapshot: dict[str, CatalogueEntry] = {}
    conn = getattr(runtime.book, "conn", None)
    if pipeline.products.use_catalogue and conn is not None:
        taken = catalogue.snapshot(conn, limit=CATALOGUE_SNAPSHOT_MAX)
        if taken is None:
            log.info("%s: the catalogue is too large to hand to workers; mapping in process", pipeline.store.name)
            return None
        snapshot = taken
    try:
        return MapWorkers(pipeline.with_catalogue(snapshot), count)
    except (OSError, ConnectorError) as exc:
        log.warning("%s: could not start map workers (%s); mapping in process", pipeline.store.name, exc)
        return None


def _store_page(
    runtime: Runtime, pipeline: Pipeline, page: FetchPage, mapped: MappedPage, lease: Lease, report: SyncReport
) -> SyncReport:
    """Store one mapped page with its cursor and accept intents (one transaction), then drain the accepts."""
    store = pipeline.store
    rejects = [
        Reject(stage=r.stage, reason=redact(r.reason), order_key=r.order_key, path=r.path, payload=r.payload)
        for r in page.rejects
    ]
    rejects.extend(mapped.rejects)
    rows = list(mapped.rows)
    accept = [rows[i].order_key for i in mapped.accept]
    orders: dict[str, Order] = {}
    if mapped.orders is not None:
        orders = {mapped.orders[i].order_key: mapped.orders[i] for i in mapped.accept}
    rejects = _refetch(runtime, pipeline, rejects, rows, accept, orders)
    lease.check()
    stats = runtime.book.save_rows(store.name, rows, rejects, page.cursor, accept=accept)
    by_key = {row.order_key: row for row in rows}
    drained = drain_accepts(runtime, store, orders=orders, rows=by_key, lease=lease)
    report = _add(report, page, stats, drained.accepted, drained.failed + drained.retry + mapped.accept_errors)
    log.info(
        "%s: page %d: %d new, %d updated, %d unchanged, %d rejected",
        store.name,
        report.pages,
        stats.inserted,
        stats.updated,
        stats.unchanged,
        stats.rejected,
    )
    return report


def _refetch(
    runtime: Runtime,
    pipeline: Pipeline,
    rejects: list[Reject],
    rows: list[OrderRow],
    accept: list[str],
    orders: dict[str, Order],
) -> list[Reject]:
    """Fetch each rejected order once more (``fetch_order``): a document damaged in transit is recovered.

    Only rejects of the :data:`REFETCH_STAGES` (malformed XML, raw schema)
    are fetched again; a mapping reject such as "no usable shipping
    address" would fail the same way. A recovered order joins ``rows`` (and
    ``accept`` if the plugin wants it accepted); its reject is still stored,
    stamped retried, so the quarantine keeps the damaged payload for audit.
    At most :data:`REFETCH_PER_PAGE` refetches per page, so a plugin that
    rejects everything does not double the traffic.
    """
    store = pipeline.store
    out: list[Reject] = []
    budget = REFETCH_PER_PAGE
    for reject in rejects:
        if reject.order_key is None or budget <= 0 or reject.stage not in REFETCH_STAGES:
            out.append(reject)
            continue
        budget -= 1
        order: Order | None = None
        document: dict[str, Any] | None = None
        try:
            raw = runtime.host.fetch_order(store, reject.order_key)
            if raw is not None:
                order, document = pipeline.process(raw)
        except PayloadError:
            order = None  # the marketplace's own copy fails too: a real reject
        except ConnectorError as err:
            log.info("%s: could not fetch %s again: %s", store.name, reject.order_key, err)
            order = None
        if order is None or document is None:
            out.append(reject)
            continue
        log.info("%s: %s was rejected (%s) but fetched again cleanly", store.name, reject.order_key, reject.stage)
        rows.append(prepare_row(order, document))
        if pipeline.wants_accept(order):
            accept.append(order.order_key)
            orders[order.order_key] = order
        out.append(attrs.evolve(reject, retried=True))
    return out


def drain_accepts(
    runtime: Runtime,
    store: StoreContext,
    *,
    orders: Mapping[str, Order] | None = None,
    rows: Mapping[str, OrderRow] | None = None,
    lease: Lease | None = None,
) -> AcceptReport:
    """Send the store's pending accepts (the accept outbox) and record them in one write.

    ``orders`` and ``rows`` are orders the caller already holds (the page
    just stored): they are not read back from the book. A passing failure
    leaves the accept pending for the next sync (given up after
    :data:`MAX_ACCEPT_ATTEMPTS`); a refusal marks it failed with the reason.
    """
    book = runtime.book
    pending = book.pending_accepts(store.name)
    if not pending:
        return AcceptReport()
    done: list[str] = []
    retry: list[tuple[str, str]] = []
    failed: list[tuple[str, str]] = []
    statuses: list[tuple[str, Any, Any]] = []
    for entry in pending:
        if lease is not None:
            lease.check()
        key = entry.order_key
        try:
            order = (orders or {}).get(key)
            if order is None:
                row = (rows or {}).get(key)
                order = order_from_row(row) if row is not None else book.get_order(store.name, key)
            change = runtime.host.accept_order(store, order)
            statuses.append(
                (key, runtime.host.map_status(store, change.marketplace_status.code), change.marketplace_status)
            )
            done.append(key)
        except TransientError as err:
            if entry.attempts + 1 >= MAX_ACCEPT_ATTEMPTS:
                failed.append((key, f"gave up after {entry.attempts + 1} attempts: {err.message}"))
            else:
                retry.append((key, err.message))
            log.warning("%s: could not accept %s: %s", store.name, key, err)
        except (MarketplaceError, PayloadError) as err:
            failed.append((key, err.message))
            log.warning("%s: could not accept %s: %s", store.name, key, err)
        except ConnectorError as err:  # e.g. the order left the book meanwhile
            failed.append((key, err.message))
            log.warning("%s: could not accept %s: %s", store.name, key, err)
    with book.transaction():
        book.finish_accepts(store.name, done, retry, failed)
        if statuses:
            book.update_statuses(store.name, statuses)
    return AcceptReport(accepted=len(done), retry=len(retry), failed=len(failed))


def apply_change(runtime: Runtime, store: StoreContext, order_key: str, change: StatusChange) -> None:
    """Record a status change the marketplace confirmed (accept, cancel): one ``UPDATE`` of the order."""
    status = runtime.host.map_status(store, change.marketplace_status.code)
    runtime.book.update_order_status(store.name, order_key, status, change.marketplace_status)


def refresh_catalogue(runtime: Runtime, store: StoreContext) -> None:
    """Import the store's marketplace catalogue before a sync; a failure is logged, never raised."""
    conn = getattr(runtime.book, "conn", None)
    try:
        entries = runtime.host.fetch_catalogue(store)
        if entries is not None and conn is not None:
            catalogue.upsert_entries(conn, entries, source=f"store:{store.name}")
    except ConnectorError as err:  # a catalogue refresh never stops the order import
        log.warning("%s: catalogue refresh failed: %s", store.name, err)


def _add(report: SyncReport, page: FetchPage, stats: PageStats, accepted: int, accept_errors: int) -> SyncReport:
    return attrs.evolve(
        report,
        pages=report.pages + 1,
        fetched=report.fetched + len(page.orders) + len(page.rejects),
        inserted=report.inserted + stats.inserted,
        updated=report.updated + stats.updated,
        unchanged=report.unchanged + stats.unchanged,
        rejected=report.rejected + stats.rejected,
        accepted=report.accepted + accepted,
        accept_errors=report.accept_errors + accept_errors,
        cursor=page.cursor if page.cursor is not None else report.cursor,
    )
