"""The mapping pipeline: raw payload -> validated, mapped, status-mapped, enriched canonical row.

Pure of the order book and the network: a :class:`Pipeline` holds the plugin
host, the store, the raw schema's name, the store's product settings and the
catalogue to enrich from (a snapshot, or a function reading the book), and
:meth:`Pipeline.map_page` turns a page of raw orders into rows to store,
rejects and the orders to auto-accept. The sync runs it in process, and map
workers (:mod:`connector_core.sync.workers`) run the very same code on a
snapshot of the catalogue, so both produce the same rows.

A payload that fails anywhere becomes a :class:`~connector_core.db.rows.Reject`
with its stage, reason and JSON path; the page goes on without it. Any
exception from one payload (a plugin bug, an overflowing number) is a
reject of that payload alone.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from connector_core import catalogue
from connector_core.db.rows import OrderRow, Reject, prepare_row
from connector_core.errors import PayloadError, ValidationError
from connector_core.host_settings import ProductSettings
from connector_core.models import CatalogueEntry, Order, RawOrder, to_json
from connector_core.plugins import PageHooks, PluginHost
from connector_core.runtime import Runtime
from connector_core.secrets import redact
from connector_core.store_context import StoreContext

log = logging.getLogger("connector_core.sync")

CANONICAL_ORDER = "canonical/order"

CatalogueSource = Mapping[str, CatalogueEntry] | Callable[[list[str]], Mapping[str, CatalogueEntry]]
"""The catalogue a pipeline enriches from: a snapshot by SKU, or a function giving the entries of some SKUs."""


@attrs.frozen
class MappedPage:
    """A page of raw orders after :meth:`Pipeline.map_page`: rows to store, rejects, orders to accept.

    ``accept`` indexes ``rows``. ``orders`` are the mapped orders themselves
    when mapped in process; a map worker sends rows only, without the raw
    column of those ``raw_from`` names: its host already holds those bytes.
    """

    rows: tuple[OrderRow, ...] = ()
    rejects: tuple[Reject, ...] = ()
    accept: tuple[int, ...] = ()
    accept_errors: int = 0
    orders: tuple[Order, ...] | None = None
    raw_from: tuple[int, ...] | None = None
    """With ``encoded`` payloads: for each row, the index of the payload whose bytes are its ``raw``
    column (left empty in the row), or -1 when the row's ``raw`` is its own."""


def raw_schema_of(host: PluginHost, marketplace: str) -> str | None:
    """The registered name of the marketplace's raw-payload schema, or ``None`` if it declares none."""
    return host.raw_schema_name(marketplace) if host.info(marketplace).raw_schema is not None else None


def pipeline_for(runtime: Runtime, store: StoreContext) -> Pipeline:
    """The mapping pipeline of ``store``, enriching from the order book's catalogue when its settings say so."""
    products = runtime.host_settings(store).products
    conn = getattr(runtime.book, "conn", None)
    source = None
    if products.use_catalogue and conn is not None:
        source = lambda skus: catalogue.lookup_for(conn, skus)  # noqa: E731
    return Pipeline(runtime.host, store, raw_schema_of(runtime.host, store.marketplace), products, source)


@attrs.frozen
class Pipeline:
    """Validate -> map -> status-map -> enrich -> validate -> row, for one store."""

    host: PluginHost
    store: StoreContext
    raw_schema: str | None
    products: ProductSettings = attrs.field(factory=ProductSettings)
    catalogue: CatalogueSource | None = None
    """Where enrichment reads the catalogue; ``None`` when the store does not use it."""

    def with_catalogue(self, entries: Mapping[str, CatalogueEntry]) -> Pipeline:
        """The same pipeline enriching from the snapshot ``entries`` (for a map worker)."""
        return attrs.evolve(self, catalogue=entries if self.products.use_catalogue else None)

    def process(self, raw: RawOrder, hooks: PageHooks | None = None) -> tuple[Order, dict[str, Any]]:
        """One raw payload to its order and the order's JSON form (validated, and stored as is).

        ``hooks``: the store's hooks resolved for the page (:meth:`PluginHost.page_hooks`).
        Raises :class:`PayloadError` when the payload is unusable.
        """
        store = self.store
        if hooks is None:
            hooks = self.host.page_hooks(store)
        if self.raw_schema is not None:
            self.host.schemas.validate(self.raw_schema, raw.payload, store=store.name, order_key=raw.order_key)
        order = hooks.map_order(raw)
        if not isinstance(order, Order):
            raise PayloadError(f"map_order returned {type(order).__name__}, not Order", store=store.name)
        if order.store != store.name:
            order = attrs.evolve(order, store=store.name)
        status = hooks.map_status(order.marketplace_status.code)
        if status != order.status:
            order = attrs.evolve(order, status=status)
        order = self.enrich(order)
        document = to_json(order)
        try:
            self.host.schemas.validate(CANONICAL_ORDER, document, store=store.name, order_key=order.order_key)
        except ValidationError as err:
            err.stage = "canonical"  # type: ignore[misc]
            raise
        return order, document

    def enrich(self, order: Order) -> Order:
        """Fill the order's items from the catalogue when the store's product settings say so."""
        if self.catalogue is None or not self.products.use_catalogue:
            return order
        skus = [i.sku for i in order.items if i.sku]
        if not skus:
            return order
        entries = self.catalogue if isinstance(self.catalogue, Mapping) else self.catalogue(skus)
        return catalogue.enrich(order, entries, self.products)

    def wants_accept(self, order: Order, hooks: PageHooks | None = None) -> bool | None:
        """The plugin's ``should_auto_accept``; ``None`` (logged) if it failed: the order is stored all the same."""
        try:
            return (hooks or self.host.page_hooks(self.store)).should_auto_accept(order)
        except Exception as exc:
            log.warning("%s: could not decide whether to accept %s: %s", self.store.name, order.order_key, exc)
            return None

    def map_page(
        self, raws: Sequence[RawOrder], *, keep_orders: bool = False, encoded: Sequence[bytes | None] | None = None
    ) -> MappedPage:
        """Map a page of raw orders; decide which to auto-accept. See the module docstring.

        ``encoded``: beside each raw order, its payload as the raw column
        stores it (:func:`~connector_core.db.rows.dump_bytes`), or ``None``.
        An order that keeps its payload as its ``raw`` (as the marketplace
        sent it) is stored with those bytes, without encoding it again: its
        row's ``raw`` is left for the caller to fill (:attr:`MappedPage.raw_from`).
        """
        rows: list[OrderRow] = []
        orders: list[Order] = []
        rejects: list[Reject] = []
        accept: list[int] = []
        raw_from: list[int] | None = None if encoded is None else []
        accept_errors = 0
        hooks = self.host.page_hooks(self.store)  # resolved once a page: see connector_core.plugins
        for index, raw in enumerate(raws):
            try:
                order, document = self.process(raw, hooks)
                known = None if encoded is None else encoded[index]
                if known is not None and order.raw != raw.payload:
                    known = None  # the plugin's raw is not the payload it was given: encoded from the order
                row = prepare_row(order, document, known)
            except PayloadError as err:
                rejects.append(reject_of(raw, getattr(err, "stage", "payload"), err.message, err.path))
                continue
            except Exception as exc:  # a plugin bug, or a value no order can hold: this payload alone
                log.warning(
                    "%s: mapping %s failed: %s", self.store.name, raw.order_key, type(exc).__name__, exc_info=True
                )
                rejects.append(reject_of(raw, "mapping", f"{type(exc).__name__}: {exc}", None))
                continue
            wanted = self.wants_accept(order, hooks)
            if wanted is None:
                accept_errors += 1
            elif wanted:
                accept.append(len(rows))
            rows.append(row)
            if raw_from is not None:
                raw_from.append(-1 if known is None else index)
            if keep_orders:
                orders.append(order)
        return MappedPage(
            rows=tuple(rows),
            rejects=tuple(rejects),
            accept=tuple(accept),
            accept_errors=accept_errors,
            orders=tuple(orders) if keep_orders else None,
            raw_from=None if raw_from is None else tuple(raw_from),
        )


def reject_of(raw: RawOrder, stage: str, reason: str, path: str | None) -> Reject:
    """The quarantine entry of a raw payload that failed at ``stage`` (its payload and reason redacted)."""
    try:
        payload = json.dumps(raw.payload, sort_keys=True, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        payload = redact(repr(raw.payload))
    return Reject(stage=stage, reason=redact(reason), order_key=raw.order_key, path=path, payload=redact(payload))
