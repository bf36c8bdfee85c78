"""Re-applying a store's mapping to the orders it already holds, from their raw copies.

A new status mapping (``stores status-map``), a catalogue import or a
plugin upgrade changes how a payload maps; :func:`remap_store` runs every
stored order's raw payload through the store's pipeline again (the same
:meth:`~connector_core.sync.pipeline.Pipeline.process` a sync uses) and saves
what changed with :meth:`OrderBook.save_rows`. A status the host set itself
(after an accept, a cancel or a ship) is mapped again from the marketplace
status the host recorded, so the remap never moves an order back to a state
the marketplace has left. It runs under the store's lease, as a sync does.
"""

from __future__ import annotations

import attrs

from connector_core.db.history import OrderFilter
from connector_core.db.rows import OrderRow, prepare_row
from connector_core.errors import PayloadError
from connector_core.models import MarketplaceStatus, OrderStatus, RawOrder
from connector_core.runtime import Runtime
from connector_core.sync.pipeline import pipeline_for

BATCH = 500
"""Orders saved per transaction."""


@attrs.frozen
class RemapReport:
    """What one remap of one store did."""

    store: str
    orders: int = 0
    changed: int = 0
    unchanged: int = 0
    failed: int = 0
    """Orders whose stored payload no longer maps (kept as they were; ``errors`` says why)."""
    errors: tuple[str, ...] = ()


def remap_store(runtime: Runtime, store_name: str) -> RemapReport:
    """Map every stored order of the store again from its raw copy; save those that changed."""
    book = runtime.book
    store = runtime.store_context(store_name)
    report = RemapReport(store=store_name)
    try:
        with book.lease(store_name, purpose="remap", ttl=runtime.lease_ttl, wait=runtime.lease_wait) as lease:
            pipeline = pipeline_for(runtime, store)
            keys = [s.order_key for s in book.page_orders(OrderFilter(store=store_name), limit=None).rows]
            for start in range(0, len(keys), BATCH):
                lease.check()
                rows: list[OrderRow] = []
                host_status: list[tuple[str, OrderStatus, MarketplaceStatus | None]] = []
                errors: list[str] = []
                for key in keys[start : start + BATCH]:
                    held = book.get_order(store_name, key)
                    raw = RawOrder(order_key=key, payload=held.raw, site=held.site)
                    try:
                        order, document = pipeline.process(raw)
                    except PayloadError as err:
                        errors.append(f"{key}: {err.message}")
                        continue
                    rows.append(prepare_row(order, document))
                    if held.marketplace_status != order.marketplace_status:  # the host changed it since
                        status = runtime.host.map_status(store, held.marketplace_status.code)
                        host_status.append((key, status, held.marketplace_status))
                with book.transaction():
                    stats = book.save_rows(store_name, rows)
                    if host_status:
                        book.update_statuses(store_name, host_status)
                report = attrs.evolve(
                    report,
                    orders=report.orders + len(rows) + len(errors),
                    changed=report.changed + stats.updated,
                    unchanged=report.unchanged + stats.unchanged,
                    failed=report.failed + len(errors),
                    errors=report.errors + tuple(errors),
                )
    finally:
        store.http.close()
    return report
