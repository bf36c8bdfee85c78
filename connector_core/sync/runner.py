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

Bounded: no request of a sync runs past its ``sync_deadline`` (the HTTP
policy) and no page is fetched after it. A quota answer blocks the store's
partner (:mod:`connector_core.quota`): the sync keeps what it stored, leaves
its accepts pending (:mod:`connector_core.sync.accepts`) and ends at once,
its report saying until when (``quota_until``) and how many accepts wait
(``deferred``). A page's ``failure`` (a site's document that could not be
read) lands in the report's ``failures``. Within one page, the last
payload of an order key wins.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, NamedTuple, Protocol

import attrs

from connector_core import catalogue, history, quota
from connector_core.clock import utc_iso
from connector_core.db.leases import Lease
from connector_core.db.rows import OrderRow, PageStats, Reject, prepare_row
from connector_core.errors import ConnectorError, DeadlineError, PayloadError, QuotaError, WorkerFailed
from connector_core.forking import auto_workers, single_threaded
from connector_core.models import CatalogueEntry, FetchPage, Order, StatusChange
from connector_core.runtime import Runtime
from connector_core.secrets import redact
from connector_core.store_context import StoreContext
from connector_core.sync.accepts import AcceptReport, drain_accepts
from connector_core.sync.pipeline import MappedPage, Pipeline, pipeline_for
from connector_core.sync.workers import MIN_PAGE, MapWorkers, Sent, raws_of

log = logging.getLogger("connector_core.sync")

REFETCH_PER_PAGE = 50
"""At most this many rejected orders of one page are fetched again (``fetch_order``)."""
CATALOGUE_SNAPSHOT_MAX = 500_000
"""Map workers get the catalogue as a snapshot; a larger catalogue keeps the mapping in process."""
REFETCH_STAGES = frozenset({"parse", "validation"})
"""Reject stages worth a second fetch: a copy that is malformed or fails the raw schema may be a
transfer fault. Mapping and canonical rejects of a well-formed document are deterministic."""
LOCAL_PAGES = 4
"""At most this many pages mapped by the syncing process itself wait behind its workers' (see ``store_mapped``)."""


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
    deferred: int = 0
    """Accepts left pending because the quota is used up (sent by the first sync after ``quota_until``)."""
    quota_until: str | None = None
    """When the marketplace's quota block of this store's partner ends (ISO UTC), if the sync met one."""
    failures: tuple[str, ...] = ()
    """What could not be read or done (a malformed site document, the sync deadline), one line each."""

    @property
    def stored(self) -> int:
        """Orders written or confirmed unchanged."""
        return self.inserted + self.updated + self.unchanged


Progress = Callable[[SyncReport], None]


class StopSignal(Protocol):
    """What tells a sync to stop at the next page boundary (a :class:`threading.Event` will do)."""

    def is_set(self) -> bool: ...


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
            runtime.book.close_abandoned_runs("sync", store_name, keep=run.id)  # the lease is ours alone

            def track(report: SyncReport) -> None:
                _count(run, report)
                if progress is not None:
                    progress(report)

            report = _sync(runtime, store, track, lease, workers, stop)
            _count(run, report)
            run.state = "interrupted" if report.interrupted else "failed" if report.failures else "done"
            if report.failures:  # a site's unreadable document, the deadline: in the history too
                run.error = "; ".join(report.failures)
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
    deadline = time.monotonic() + runtime.http_policy.sync_deadline
    store.http.until = deadline  # no request of this sync runs past it
    since = book.get_cursor(store.name)
    report = SyncReport(store=store.name, cursor=since)
    blocked = quota.blocked_until(runtime, store)
    if blocked is not None:  # no call at all for a blocked partner: the sync ends at once
        return _deferred(runtime, store, report, blocked)
    try:
        host.connect(store)
        if runtime.host_settings(store).products.import_marketplace_catalogue:
            refresh_catalogue(runtime, store)
    except QuotaError as err:
        return _deferred(runtime, store, report, quota.block(runtime, store, err))
    pipeline = pipeline_for(runtime, store)
    pool: MapWorkers | None = None
    in_flight: deque[_InFlight] = deque()  # pages handed to the workers, in fetch order
    stopped: list[str] = []
    quota_until: list[datetime] = []

    def fetched() -> Iterator[FetchPage]:
        """The plugin's pages until the end, the sync deadline, or a quota answer (the pages so far are kept)."""
        pages = iter(host.fetch_orders(store, since=since))
        try:
            while not quota_until:
                if time.monotonic() > deadline:
                    stopped.append(
                        f"sync deadline of {runtime.http_policy.sync_deadline:.0f}s reached: "
                        "what was fetched is stored, the next sync goes on from there"
                    )
                    return
                try:
                    page = next(pages)
                except StopIteration:
                    return
                yield _last_wins(page)
        except QuotaError as err:
            quota_until.append(quota.block(runtime, store, err))
        except DeadlineError as err:
            stopped.append(err.message)
        finally:
            close = getattr(pages, "close", None)
            if close is not None:
                close()

    def finish(page: FetchPage, mapped: MappedPage, count: int | None = None) -> None:
        nonlocal report
        report = _store_page(runtime, pipeline, page, mapped, lease, report, count)
        if report.quota_until is not None and not quota_until:
            quota_until.append(datetime.fromisoformat(report.quota_until.replace("Z", "+00:00")))
        if progress is not None:
            progress(report)

    def without_workers(err: WorkerFailed) -> None:
        nonlocal pool
        log.warning("%s: %s; mapping the rest of this sync in process", store.name, err)
        assert pool is not None
        pool.close()
        pool = None
        while in_flight:  # mapping is deterministic: the pages a worker held are mapped here instead
            held = in_flight.popleft()
            if held.mapped is not None:
                finish(held.page, held.mapped, held.size)
                continue
            raws = held.page.orders if held.sent is None else raws_of(held.sent)
            finish(held.page, pipeline.map_page(raws, keep_orders=True), held.size)

    def store_mapped(pool: MapWorkers, *, final: bool) -> None:
        """Store the pages at the head of ``in_flight`` whose rows are here; wait for a worker only when it must.

        It must at the end (``final``), and while the workers hold all the
        pages they may with :data:`LOCAL_PAGES` pages mapped here waiting
        behind theirs. Otherwise a page whose rows have not begun to arrive
        is left for later, and the caller maps its next page itself.
        """
        while in_flight:
            held = in_flight[0]
            mapped = held.mapped
            if mapped is None:
                waiting = sum(1 for h in in_flight if h.mapped is not None)
                if not (final or pool.ready or (pool.full and waiting >= LOCAL_PAGES)):
                    return
                mapped = pool.receive()
            finish(held.page, mapped, held.size)
            in_flight.popleft()

    with contextlib.ExitStack() as stack:
        large = False
        stack.callback(lambda: pool.close() if pool is not None else None)
        for page in fetched():
            if not large and len(page.orders) >= MIN_PAGE:  # the first large page: this sync is an import
                large = True
                stack.enter_context(book.bulk_writes())  # fewer WAL checkpoints
                if workers:
                    pool = _start_workers(runtime, pipeline, workers)  # tried once per sync
            if pool is None:
                finish(page, pipeline.map_page(page.orders, keep_orders=True))
            else:
                handed = False
                try:
                    store_mapped(pool, final=False)
                    if pool.full:  # the workers are behind: this process maps the page rather than wait for theirs
                        log.debug("%s: a page mapped in this process: the workers are behind", store.name)
                        mapped = pool.pipeline.map_page(page.orders, keep_orders=True)
                        in_flight.append(_InFlight(attrs.evolve(page, orders=()), len(page.orders), None, mapped))
                    else:
                        sent = pool.submit(list(page.orders))
                        # the page waits for its rows without its payloads: what was sent keeps them encoded, in
                        # far fewer objects, so the collector has less to walk and the host holds less memory
                        in_flight.append(_InFlight(attrs.evolve(page, orders=()), len(page.orders), sent))
                    handed = True
                except WorkerFailed as err:
                    if not handed:
                        in_flight.append(_InFlight(page, len(page.orders), None))
                    without_workers(err)
            if stop is not None and stop.is_set():  # a page boundary: the pages in flight are stored below
                report = attrs.evolve(report, interrupted=True)
                break
        while pool is not None and in_flight:
            try:
                store_mapped(pool, final=True)
            except WorkerFailed as err:
                without_workers(err)
    if stopped:
        report = attrs.evolve(report, failures=(*report.failures, *stopped))
    if quota_until:
        return _deferred(runtime, store, report, quota_until[0])
    if report.pages == 0 and not report.interrupted:  # nothing fetched: accepts left over still go out
        drained = drain_accepts(runtime, store, lease=lease)
        report = _with_drain(report, drained)
        if drained.quota_until is not None:
            return _deferred(runtime, store, report, drained.quota_until)
    return report


def _last_wins(page: FetchPage) -> FetchPage:
    """``page`` with one payload per order key: the last occurrence wins, for the order and its raw copy alike."""
    keys = [raw.order_key for raw in page.orders]
    if len(set(keys)) == len(keys):
        return page
    last = {key: i for i, key in enumerate(keys)}
    log.warning("%s duplicate order key(s) in one page: the last occurrence of each is kept", len(keys) - len(last))
    return attrs.evolve(page, orders=[raw for i, raw in enumerate(page.orders) if last[raw.order_key] == i])


def _deferred(runtime: Runtime, store: StoreContext, report: SyncReport, until: datetime) -> SyncReport:
    """``report`` of a sync that met its partner's quota block: what waits for ``until``."""
    return attrs.evolve(report, quota_until=utc_iso(until), deferred=runtime.book.count_pending_accepts(store.name))


def _with_drain(report: SyncReport, drained: AcceptReport) -> SyncReport:
    return attrs.evolve(
        report,
        accepted=report.accepted + drained.accepted,
        accept_errors=report.accept_errors + drained.failed + drained.retry,
        quota_until=utc_iso(drained.quota_until) if drained.quota_until is not None else report.quota_until,
    )


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


class _InFlight(NamedTuple):
    """A page handed to a map worker until its rows come back, or mapped here and waiting for the pages before it."""

    page: FetchPage
    """The page; without its raw orders once they are sent (``sent`` carries them) or mapped here."""
    size: int
    """How many raw orders the page had."""
    sent: Sent | None
    """What was sent (:func:`~connector_core.sync.workers.raws_of` reads it back); ``None`` if nothing was."""
    mapped: MappedPage | None = None
    """The page's rows when this process mapped it (its workers were behind), waiting for the pages before it."""


def _store_page(
    runtime: Runtime,
    pipeline: Pipeline,
    page: FetchPage,
    mapped: MappedPage,
    lease: Lease,
    report: SyncReport,
    count: int | None = None,
) -> SyncReport:
    """Store one mapped page with its cursor and accept intents (one transaction), then drain the accepts.

    ``count``: how many raw orders the page had, when they are no longer in it (sent to a worker).
    """
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
    fetched = len(page.orders) if count is None else count
    report = _add(report, page, fetched, stats, drained.accepted, drained.failed + drained.retry + mapped.accept_errors)
    if drained.quota_until is not None:
        report = attrs.evolve(report, quota_until=utc_iso(drained.quota_until))
    if page.failure:
        report = attrs.evolve(report, failures=(*report.failures, redact(page.failure)))
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


def _add(
    report: SyncReport, page: FetchPage, orders: int, stats: PageStats, accepted: int, accept_errors: int
) -> SyncReport:
    return attrs.evolve(
        report,
        pages=report.pages + 1,
        fetched=report.fetched + orders + len(page.rejects),
        inserted=report.inserted + stats.inserted,
        updated=report.updated + stats.updated,
        unchanged=report.unchanged + stats.unchanged,
        rejected=report.rejected + stats.rejected,
        accepted=report.accepted + accepted,
        accept_errors=report.accept_errors + accept_errors,
        cursor=page.cursor if page.cursor is not None else report.cursor,
    )
