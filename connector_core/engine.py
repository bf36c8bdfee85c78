"""Sync and push: the host's work loop over one store.

``sync`` = connect -> fetch since the saved cursor -> per page: validate each
raw payload against the plugin's raw schema -> ``map_order`` -> status
mapping (the store's custom map first) -> validate the canonical JSON ->
store the page and its cursor in one transaction -> auto-accept. A payload
that fails anywhere is quarantined with its reason and JSON path; the page
goes on without it.

``push`` drains the store's outbox through ``push_shipment``: a transient
failure leaves the shipment pending for the next push, a permanent refusal
marks it failed with the marketplace's reason.

Both run under the store's lease (:mod:`connector_core.leases`), so two host
processes on one order book never sync or push the same store at once; the
outbox is read only once the lease is held. Every store's HTTP client follows
the engine's :class:`~connector_core.http.HttpPolicy`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from connector_core import catalogue, host_settings, notify
from connector_core.errors import (
    ConnectorError,
    MarketplaceError,
    PayloadError,
    TransientError,
    ValidationError,
)
from connector_core.http import HttpPolicy, RetryingClient
from connector_core.leases import Lease
from connector_core.models import (
    CatalogueEntry,
    FetchPage,
    Order,
    OrderStatus,
    PushResult,
    RawOrder,
    Shipment,
    StatusChange,
    to_json,
)
from connector_core.plugins import PluginHost
from connector_core.secrets import redact, register_settings
from connector_core.store import OrderBook, OrderRow, PageStats, Reject, order_from_row, prepare_row
from connector_core.store_context import StoreContext
from connector_core.workers import MIN_PAGE, MapWorkers, WorkerFailed, auto_workers, check_workers

log = logging.getLogger("connector_core.engine")

CANONICAL_ORDER = "canonical/order"
CANONICAL_SHIPMENT = "canonical/shipment"
REFETCH_PER_PAGE = 50
"""At most this many rejected orders of one page are fetched again (``fetch_order``)."""
CATALOGUE_SNAPSHOT_MAX = 500_000
"""Map workers get the catalogue as a snapshot; a larger catalogue keeps the mapping in process."""
REFETCH_STAGES = frozenset({"parse", "validation"})
"""Reject stages worth a second fetch: a copy that is malformed or fails the raw schema may be a
transfer fault. Mapping and canonical rejects of a well-formed document are deterministic."""


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

    @property
    def stored(self) -> int:
        """Orders written or confirmed unchanged."""
        return self.inserted + self.updated + self.unchanged


@attrs.frozen
class RetryOutcome:
    """What ``rejected retry`` did with one quarantined payload.

    ``state``: ``imported`` (it passes now and is in the book), ``newer_in_book``
    (it passes, but the book already holds a newer copy of the order),
    ``rejected`` (it still fails: ``reason``, ``path``) or ``unusable`` (the
    payload is not a JSON document, e.g. broken XML, so there is nothing to
    re-map).
    """

    reject_id: int
    order_key: str | None
    state: str
    reason: str | None = None
    path: str | None = None


@attrs.frozen
class PushOutcome:
    """What became of one outbox entry in a push."""

    outbox_id: int
    order_key: str
    state: str  # pushed | pending | failed
    result: PushResult | None = None
    error: str | None = None


@attrs.frozen
class PushReport:
    """What one push of one store did."""

    store: str
    pushed: int = 0
    already_applied: int = 0
    retry: int = 0
    failed: int = 0
    outcomes: tuple[PushOutcome, ...] = ()

    @classmethod
    def from_outcomes(cls, store: str, outcomes: Sequence[PushOutcome]) -> PushReport:
        """Count the outcomes of one push by state."""
        return cls(
            store=store,
            pushed=sum(o.state == "pushed" for o in outcomes),
            already_applied=sum(bool(o.result and o.result.already_applied) for o in outcomes),
            retry=sum(o.state == "pending" for o in outcomes),
            failed=sum(o.state == "failed" for o in outcomes),
            outcomes=tuple(outcomes),
        )


@attrs.frozen
class PushAttempt:
    """One shipment sent to the marketplace, not yet recorded: its result, or the error it met."""

    outbox_id: int
    order_key: str
    shipment: Shipment
    order: Order | None = None
    result: PushResult | None = None
    error: ConnectorError | None = None


@attrs.frozen
class MappedPage:
    """A page of raw orders after :meth:`Engine.map_raw_orders`: rows to store, rejects, orders to accept.

    ``accept`` indexes ``rows``. ``orders`` are the mapped orders themselves
    when mapped in process; a map worker sends rows only.
    """

    rows: tuple[OrderRow, ...] = ()
    rejects: tuple[Reject, ...] = ()
    accept: tuple[int, ...] = ()
    accept_errors: int = 0
    orders: tuple[Order, ...] | None = None


Progress = Callable[[SyncReport], None]


class Engine:
    """Runs sync and push for the stores of one order book."""

    def __init__(
        self,
        host: PluginHost,
        book: OrderBook,
        *,
        max_push_attempts: int = 10,
        http_policy: HttpPolicy | None = None,
        lease_wait: float = 60.0,
        lease_ttl: float = 60.0,
        workers: int | None = None,
    ) -> None:
        self.host = host
        self.book = book
        self.max_push_attempts = max_push_attempts
        self.http_policy = http_policy or HttpPolicy.from_environ()
        self.lease_wait = lease_wait
        self.lease_ttl = lease_ttl
        self.workers = None if workers is None else check_workers(workers)
        """Map worker processes per sync (:mod:`connector_core.workers`); ``None``: :func:`auto_workers`."""
        self._host_settings: dict[tuple[str, str], host_settings.HostSettings] = {}

    # -- context -------------------------------------------------------------

    def store_context(self, store_name: str) -> StoreContext:
        """Build the :class:`StoreContext` of a saved store (its secrets registered for redaction)."""
        record = self.book.get_store(store_name)
        info = self.host.info(record.marketplace)
        register_settings(info.settings_schema, record.settings)
        return StoreContext(
            name=record.name,
            marketplace=record.marketplace,
            settings=dict(record.settings),
            status_map=dict(record.status_map),
            store_settings=dict(record.store_settings),
            http=RetryingClient(self.http_policy),
        )

    # -- sync ----------------------------------------------------------------

    def sync(self, store_name: str, progress: Progress | None = None) -> SyncReport:
        """Import the store's new and changed orders; see the module docstring."""
        store = self.store_context(store_name)
        workers = self._worker_count()  # before the lease's own renewal thread starts
        try:
            with self.book.lease(store_name, purpose="sync", ttl=self.lease_ttl, wait=self.lease_wait) as lease:
                return self._sync(store, progress, lease, workers)
        finally:
            store.http.close()

    def _sync(self, store: StoreContext, progress: Progress | None, lease: Lease, workers: int) -> SyncReport:
        self.host.connect(store)
        if self.host_settings(store).products.import_marketplace_catalogue:
            self._refresh_catalogue(store)
        since = self.book.get_cursor(store.name)
        raw_schema = (
            self.host.raw_schema_name(store.marketplace)
            if self.host.info(store.marketplace).raw_schema is not None
            else None
        )
        report = SyncReport(store=store.name, cursor=since)
        pool: MapWorkers | None = None
        in_flight: deque[FetchPage] = deque()  # pages handed to the workers, in fetch order

        def finish(page: FetchPage, mapped: MappedPage) -> None:
            nonlocal report
            report = self._store_page(store, page, mapped, raw_schema, lease, report)
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
                finish(page, self.map_raw_orders(store, page.orders, raw_schema, keep_orders=True))

        with contextlib.ExitStack() as stack:
            large = False
            stack.callback(lambda: pool.close() if pool is not None else None)
            for page in self.host.fetch_orders(store, since=since):
                if not large and len(page.orders) >= MIN_PAGE:  # the first large page: this sync is an import
                    large = True
                    stack.enter_context(self.book.bulk_writes())  # fewer WAL checkpoints
                    if workers:
                        pool = self._start_workers(store, raw_schema, workers)  # tried once per sync
                if pool is None:
                    finish(page, self.map_raw_orders(store, page.orders, raw_schema, keep_orders=True))
                    continue
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
            while pool is not None and in_flight:
                try:
                    finish(in_flight[0], pool.receive())
                    in_flight.popleft()
                except WorkerFailed as err:
                    without_workers(err)
        return report

    def _worker_count(self) -> int:
        if self.workers is not None:
            return self.workers
        # a fork copies only the calling thread: by default, only a single-threaded host forks
        return auto_workers() if threading.active_count() == 1 else 0

    def _start_workers(self, store: StoreContext, raw_schema: str | None, count: int) -> MapWorkers | None:
        snapshot: dict[str, CatalogueEntry] = {}
        if self.host_settings(store).products.use_catalogue:
            taken = catalogue.snapshot(self.book.conn, limit=CATALOGUE_SNAPSHOT_MAX)
            if taken is None:
                log.info("%s: the catalogue is too large to hand to workers; mapping in process", store.name)
                return None
            snapshot = taken
        try:
            return MapWorkers(self, store, raw_schema, snapshot, count)
        except (OSError, ConnectorError) as exc:
            log.warning("%s: could not start map workers (%s); mapping in process", store.name, exc)
            return None

    def _store_page(
        self,
        store: StoreContext,
        page: FetchPage,
        mapped: MappedPage,
        raw_schema: str | None,
        lease: Lease,
        report: SyncReport,
    ) -> SyncReport:
        """Store one mapped page with its cursor (one transaction), then accept what is to be accepted."""
        rejects = [
            Reject(stage=r.stage, reason=redact(r.reason), order_key=r.order_key, path=r.path, payload=r.payload)
            for r in page.rejects
        ]
        rejects.extend(mapped.rejects)
        rows = list(mapped.rows)
        if mapped.orders is not None:
            to_accept = [mapped.orders[i] for i in mapped.accept]
        else:  # from a worker: only the orders to accept are rebuilt here
            to_accept = [order_from_row(mapped.rows[i]) for i in mapped.accept]
        rejects = self._refetch(store, rejects, rows, to_accept, raw_schema)
        lease.check()
        stats = self.book.save_rows(store.name, rows, rejects, page.cursor)
        accepted, accept_errors = self._accept_all(store, to_accept)
        report = _add(report, page, stats, accepted, accept_errors + mapped.accept_errors)
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

    def map_raw_orders(
        self,
        store: StoreContext,
        raws: Sequence[RawOrder],
        raw_schema: str | None,
        catalogue_entries: Mapping[str, CatalogueEntry] | None = None,
        *,
        keep_orders: bool = False,
    ) -> MappedPage:
        """Validate, map, status-map, enrich and serialise a page of raw orders; decide which to auto-accept.

        Pure of the order book when ``catalogue_entries`` is given (the
        catalogue to enrich from; else it is read from the book): this is
        what a map worker (:mod:`connector_core.workers`) runs. A payload that
        fails becomes a :class:`Reject` and the page goes on without it.
        """
        rows: list[OrderRow] = []
        orders: list[Order] = []
        rejects: list[Reject] = []
        accept: list[int] = []
        accept_errors = 0
        for raw in raws:
            try:
                order, document = self._process(store, raw, raw_schema, catalogue_entries)
                row = prepare_row(order, document)
            except PayloadError as err:
                rejects.append(_reject(raw, getattr(err, "stage", "payload"), err.message, err.path))
                continue
            except Exception as exc:  # a plugin bug in one payload must not stop the batch
                log.warning("%s: mapping %s failed: %s", store.name, raw.order_key, type(exc).__name__, exc_info=True)
                rejects.append(_reject(raw, "mapping", f"{type(exc).__name__}: {exc}", None))
                continue
            wanted = self._wants_accept(store, order)
            if wanted is None:
                accept_errors += 1
            elif wanted:
                accept.append(len(rows))
            rows.append(row)
            if keep_orders:
                orders.append(order)
        return MappedPage(
            rows=tuple(rows),
            rejects=tuple(rejects),
            accept=tuple(accept),
            accept_errors=accept_errors,
            orders=tuple(orders) if keep_orders else None,
        )

    def _refetch(
        self,
        store: StoreContext,
        rejects: list[Reject],
        rows: list[OrderRow],
        to_accept: list[Order],
        raw_schema: str | None,
    ) -> list[Reject]:
        """Fetch each rejected order once more (``fetch_order``): a document damaged in transit is recovered.

        Only rejects of the :data:`REFETCH_STAGES` (malformed XML, raw schema)
        are fetched again; a mapping reject such as "no usable shipping
        address" would fail the same way. A recovered order joins ``rows``
        (and ``to_accept`` if the plugin wants it accepted); its reject is still stored, stamped
        retried, so the quarantine keeps the damaged payload for audit. At most
        :data:`REFETCH_PER_PAGE` refetches per page, so a plugin that rejects
        everything does not double the traffic.
        """
        out: list[Reject] = []
        budget = REFETCH_PER_PAGE
        for reject in rejects:
            if reject.order_key is None or budget <= 0 or reject.stage not in REFETCH_STAGES:
                out.append(reject)
                continue
            budget -= 1
            try:
                raw = self.host.fetch_order(store, reject.order_key)
                order, document = (None, None) if raw is None else self._process(store, raw, raw_schema)
            except PayloadError:
                order = None  # the marketplace's own copy fails too: a real reject
            except ConnectorError as err:
                log.info("%s: could not fetch %s again: %s", store.name, reject.order_key, err)
                order = None
            if order is None or document is None:
                out.append(reject)
            else:
                log.info(
                    "%s: %s was rejected (%s) but fetched again cleanly", store.name, reject.order_key, reject.stage
                )
                rows.append(prepare_row(order, document))
                if self._wants_accept(store, order):
                    to_accept.append(order)
                out.append(attrs.evolve(reject, retried=True))
        return out

    def process(self, store: StoreContext, raw: RawOrder, raw_schema: str | None) -> Order:
        """Validate, map and status-map one raw payload; raise :class:`PayloadError` when it is unusable."""
        return self._process(store, raw, raw_schema)[0]

    def _process(
        self,
        store: StoreContext,
        raw: RawOrder,
        raw_schema: str | None,
        catalogue_entries: Mapping[str, CatalogueEntry] | None = None,
    ) -> tuple[Order, dict[str, Any]]:
        """:meth:`process`, also returning the order's ``to_json`` (validated, and stored as is)."""
        if raw_schema is not None:
            self.host.schemas.validate(raw_schema, raw.payload, store=store.name, order_key=raw.order_key)
        order = self.host.map_order(store, raw)
        if not isinstance(order, Order):
            raise PayloadError(f"map_order returned {type(order).__name__}, not Order", store=store.name)
        if order.store != store.name:
            order = attrs.evolve(order, store=store.name)
        status = self.host.map_status(store, order.marketplace_status.code)
        if status != order.status:
            order = attrs.evolve(order, status=status)
        order = self.enrich(store, order, catalogue_entries)
        document = to_json(order)
        try:
            self.host.schemas.validate(CANONICAL_ORDER, document, store=store.name, order_key=order.order_key)
        except ValidationError as err:
            err.stage = "canonical"  # type: ignore[misc]
            raise
        return order, document

    def _wants_accept(self, store: StoreContext, order: Order) -> bool | None:
        """The plugin's ``should_auto_accept``; ``None`` (logged) if it failed: the order is stored all the same."""
        try:
            return self.host.should_auto_accept(store, order)
        except Exception as exc:
            log.warning("%s: could not decide whether to accept %s: %s", store.name, order.order_key, exc)
            return None

    def _accept_all(self, store: StoreContext, orders: list[Order]) -> tuple[int, int]:
        accepted = errors = 0
        for order in orders:
            try:
                change = self.host.accept_order(store, order)
                self._apply_change(store, order, change)
                accepted += 1
            except MarketplaceError as err:
                errors += 1
                log.warning("%s: could not accept %s: %s", store.name, order.order_key, err)
        return accepted, errors

    def _apply_change(self, store: StoreContext, order: Order, change: StatusChange) -> Order:
        status = self.host.map_status(store, change.marketplace_status.code)
        return self.book.update_order_status(store.name, order.order_key, status, change.marketplace_status)

    # -- quarantine --------------------------------------------------------------

    def retry_rejected(self, reject_id: int) -> RetryOutcome:
        """Re-validate and re-map a quarantined payload with the current plugin; import it if it passes.

        The rejected row is stamped ``retried_at`` when the payload passes
        (imported, or a newer copy is already in the book); a payload that
        still fails keeps its row untouched and the outcome says why.
        """
        row = self.book.get_rejected(reject_id)
        try:
            payload = json.loads(row.payload) if row.payload else None
        except ValueError:
            payload = None
        if not isinstance(payload, dict) or not row.order_key:
            return RetryOutcome(
                reject_id,
                row.order_key,
                "unusable",
                reason=f"the quarantined payload (stage {row.stage}) is not a JSON document with an order key; "
                "it cannot be re-mapped: the next sync fetches the order again if the marketplace still has it",
            )
        store = self.store_context(row.store)
        try:
            info = self.host.info(store.marketplace)
            raw_schema = self.host.raw_schema_name(store.marketplace) if info.raw_schema is not None else None
            site = row.order_key.partition(":")[0] if ":" in row.order_key else None
            try:
                order = self.process(store, RawOrder(order_key=row.order_key, payload=payload, site=site), raw_schema)
            except PayloadError as err:
                # the stored copy still fails: the marketplace's current copy may be sound
                fresh = self.host.fetch_order(store, row.order_key)
                if fresh is None:
                    return RetryOutcome(reject_id, row.order_key, "rejected", reason=redact(err.message), path=err.path)
                try:
                    order = self.process(store, fresh, raw_schema)
                except PayloadError as again:
                    return RetryOutcome(
                        reject_id, row.order_key, "rejected", reason=redact(again.message), path=again.path
                    )
            state = "imported"
            try:
                held = self.book.get_order(store.name, order.order_key)
            except ConnectorError:
                held = None
            if held is not None and _newer(held, order):
                state = "newer_in_book"
            else:
                self.book.save_page(store.name, [order])
            self.book.mark_rejected_retried(reject_id)
            return RetryOutcome(reject_id, row.order_key, state)
        finally:
            store.http.close()

    # -- order actions ---------------------------------------------------------

    def accept(self, store_name: str, order_key: str) -> StatusChange:
        """Accept an order on the marketplace and record its new status."""
        return self._transition(store_name, order_key, lambda s, o: self.host.accept_order(s, o))

    def cancel(self, store_name: str, order_key: str, reason: str | None = None) -> StatusChange:
        """Cancel an order on the marketplace and record its new status."""
        return self._transition(store_name, order_key, lambda s, o: self.host.cancel_order(s, o, reason))

    def _transition(
        self, store_name: str, order_key: str, call: Callable[[StoreContext, Order], StatusChange]
    ) -> StatusChange:
        store = self.store_context(store_name)
        try:
            order = self.book.get_order(store_name, order_key)
            change = call(store, order)
            self._apply_change(store, order, change)
            return change
        finally:
            store.http.close()

    # -- push ------------------------------------------------------------------

    def record_shipment(self, shipment: Shipment) -> int:
        """Validate a shipment and put it in the outbox; return its outbox id (same shipment, same id)."""
        self.host.schemas.validate(CANONICAL_SHIPMENT, to_json(shipment), store=shipment.store)
        return self.book.add_shipment(shipment)

    def sync_all(
        self, stores: Sequence[str], *, concurrency: int = 8, processes: int = 1
    ) -> list[SyncReport | ConnectorError]:
        """Sync several stores, ``concurrency`` at a time, over ``processes`` processes (see :mod:`~.parallel`)."""
        from connector_core.parallel import sync_all

        return sync_all(self, stores, concurrency=concurrency, processes=processes)

    def push(self, store_name: str, *, concurrency: int = 1, processes: int = 1) -> PushReport:
        """Push every pending shipment of the store; see the module docstring.

        With ``concurrency`` > 1 the shipments are pushed by that many
        workers (:func:`connector_core.parallel.push_concurrently`), each
        shipment once; ``processes`` > 1 runs those workers in that many
        forked processes.
        """
        if concurrency != 1 or processes != 1:
            from connector_core.parallel import push_concurrently

            return push_concurrently(self, store_name, concurrency=concurrency, processes=processes)
        if not self.book.pending_shipments(store_name):
            if notify.has_due(self.book.conn, store=store_name):  # e-mails that failed earlier, now due again
                store = self.store_context(store_name)
                try:
                    self.deliver_notifications(store)
                finally:
                    store.http.close()
            return PushReport(store=store_name)
        store = self.store_context(store_name)
        outcomes: list[PushOutcome] = []
        try:
            with self.book.lease(store_name, purpose="push", ttl=self.lease_ttl, wait=self.lease_wait) as lease:
                # read again under the lease: another process may have pushed them meanwhile
                for entry in self.book.pending_shipments(store_name):
                    lease.check()
                    outcomes.append(self._push_one(store, entry.id, entry.order_key, entry.shipment))
                self.deliver_notifications(store)
        finally:
            store.http.close()
        return PushReport.from_outcomes(store_name, outcomes)

    def _push_one(self, store: StoreContext, outbox_id: int, order_key: str, shipment: Shipment) -> PushOutcome:
        return self._record_push(store, self._attempt_push(store, outbox_id, order_key, shipment))

    def _attempt_push(self, store: StoreContext, outbox_id: int, order_key: str, shipment: Shipment) -> PushAttempt:
        """Push one shipment to the marketplace; write nothing (see :meth:`_record_push`)."""
        try:
            order = self.book.get_order(store.name, order_key)
            result = self.host.push_shipment(store, order, shipment)
        except ConnectorError as err:
            return PushAttempt(outbox_id, order_key, shipment, error=err)
        return PushAttempt(outbox_id, order_key, shipment, order=order, result=result)

    def _record_push(self, store: StoreContext, attempt: PushAttempt) -> PushOutcome:
        """Record what a push attempt came to: outbox state, e-mail, order status.

        Each write is its own transaction, or a savepoint when the caller batches
        several records into one (:func:`connector_core.parallel.push_concurrently`).
        """
        outbox_id, order_key, err = attempt.outbox_id, attempt.order_key, attempt.error
        if isinstance(err, TransientError):
            attempts = self.book.mark_retry(outbox_id, err.message)
            if attempts >= self.max_push_attempts:
                message = f"gave up after {attempts} attempts: {err.message}"
                self.book.mark_failed(outbox_id, message)
                return PushOutcome(outbox_id, order_key, "failed", error=message)
            log.info("%s: push of %s will be retried: %s", store.name, order_key, err)
            return PushOutcome(outbox_id, order_key, "pending", error=err.message)
        if err is not None:
            self.book.mark_failed(outbox_id, err.message)
            log.warning("%s: push of %s refused: %s", store.name, order_key, err)
            return PushOutcome(outbox_id, order_key, "failed", error=err.message)
        order, result = attempt.order, attempt.result
        assert order is not None and result is not None
        if not result.accepted:
            message = redact(result.message or "the marketplace did not accept the shipment")
            self.book.mark_failed(outbox_id, message, result)
            return PushOutcome(outbox_id, order_key, "failed", result=result, error=message)
        # queue the e-mail before the outbox row is marked pushed: a crash in between
        # re-pushes (already_applied) and finds the e-mail already queued, once
        self._queue_notification(store, outbox_id, order, attempt.shipment)
        self.book.mark_pushed(outbox_id, result)
        if order.status is not OrderStatus.SHIPPED:
            self.book.update_order_status(store.name, order_key, OrderStatus.SHIPPED)
        return PushOutcome(outbox_id, order_key, "pushed", result=result)

    # -- host settings, catalogue, notifications -------------------------------

    def host_settings(self, store: StoreContext) -> host_settings.HostSettings:
        """The store's host-side settings, validated once per settings document."""
        key = (store.name, json.dumps(store.store_settings, sort_keys=True, default=str))
        loaded = self._host_settings.get(key)
        if loaded is None:
            loaded = host_settings.load(store.store_settings, store=store.name)
            self._host_settings[key] = loaded
        return loaded

    def enrich(self, store: StoreContext, order: Order, entries: Mapping[str, CatalogueEntry] | None = None) -> Order:
        """Fill the order's items from the host catalogue when the store's product settings say so.

        ``entries``: the catalogue (or the part of it that matters) by SKU; by default it is read from the book.
        """
        products = self.host_settings(store).products
        if not products.use_catalogue:
            return order
        skus = [i.sku for i in order.items if i.sku]
        if not skus:
            return order
        lookup = catalogue.lookup_for(self.book.conn, skus) if entries is None else entries
        return catalogue.enrich(order, lookup, products)

    def import_catalogue(self, store_name: str) -> catalogue.ImportReport | None:
        """Import the store's marketplace catalogue (``fetch_catalogue``); ``None`` if it has none."""
        store = self.store_context(store_name)
        try:
            entries = self.host.fetch_catalogue(store)
            if entries is None:
                return None
            return catalogue.upsert_entries(self.book.conn, entries, source=f"store:{store.name}")
        finally:
            store.http.close()

    def _refresh_catalogue(self, store: StoreContext) -> None:
        try:
            entries = self.host.fetch_catalogue(store)
            if entries is not None:
                catalogue.upsert_entries(self.book.conn, entries, source=f"store:{store.name}")
        except ConnectorError as err:  # a catalogue refresh never stops the order import
            log.warning("%s: catalogue refresh failed: %s", store.name, err)

    def mail_outbox(self) -> Path:
        """Default folder of ``.eml`` files for stores without SMTP: next to the order book."""
        return self.book.path.parent / "mail-outbox"

    def _queue_notification(self, store: StoreContext, outbox_id: int, order: Order, shipment: Shipment) -> None:
        try:
            notify.queue_for_shipment(
                self.book.conn,
                store=store.name,
                outbox_id=outbox_id,
                order=order,
                shipment=shipment,
                settings=self.host_settings(store),
            )
        except Exception as exc:  # the push stands whatever happens to the e-mail
            log.warning("%s: could not queue the e-mail of shipment %d: %s", store.name, outbox_id, redact(str(exc)))

    def deliver_notifications(self, store: StoreContext) -> notify.DeliveryReport:
        """Send the store's due customer e-mails; failures are recorded on each row, never raised."""
        try:
            sender = notify.sender_for_settings(self.host_settings(store), self.mail_outbox())
            return notify.deliver_pending(self.book.conn, sender, store=store.name)
        except Exception as exc:
            log.warning("%s: e-mail delivery failed: %s", store.name, redact(str(exc)))
            return notify.DeliveryReport()


def _newer(held: Order, candidate: Order) -> bool:
    """Whether the book's copy of an order is at least as recent as ``candidate``."""
    if held.modified_date is None or candidate.modified_date is None:
        return False
    return held.modified_date >= candidate.modified_date


def _reject(raw: RawOrder, stage: str, reason: str, path: str | None) -> Reject:
    try:
        payload = json.dumps(raw.payload, sort_keys=True, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        payload = redact(repr(raw.payload))
    return Reject(stage=stage, reason=redact(reason), order_key=raw.order_key, path=path, payload=redact(payload))


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
