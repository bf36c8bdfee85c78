"""The engine: one object for the host's work on the stores of one order book.

:class:`Engine` is a :class:`~connector_core.runtime.Runtime` (the plugin
host, the order book, the policies) with the entry points the command line,
the web app and tests call. The work itself lives below it, one package per
concern: :mod:`connector_core.sync` (import), :mod:`connector_core.push`
(shipments back), :mod:`connector_core.notify` (customer e-mails).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from connector_core import catalogue, notify, shipments
from connector_core.db.rows import OutboxEntry
from connector_core.errors import ConnectorError
from connector_core.models import Order, Shipment, StatusChange
from connector_core.push import concurrent as push_many
from connector_core.push import outbox
from connector_core.push.outbox import PushAttempt, PushOutcome, PushReport
from connector_core.runtime import Runtime
from connector_core.store_context import StoreContext
from connector_core.sync import many, quarantine, remap, runner
from connector_core.sync.pipeline import MappedPage
from connector_core.sync.quarantine import RetryOutcome
from connector_core.sync.remap import RemapReport
from connector_core.sync.runner import Progress, StopSignal, SyncReport

__all__ = [
    "Engine",
    "MappedPage",
    "PushAttempt",
    "PushOutcome",
    "PushReport",
    "RemapReport",
    "RetryOutcome",
    "SyncReport",
]


class Engine(Runtime):
    """Runs sync and push for the stores of one order book."""

    # -- sync ----------------------------------------------------------------

    def sync(self, store_name: str, progress: Progress | None = None, stop: StopSignal | None = None) -> SyncReport:
        """Import the store's new and changed orders (:mod:`connector_core.sync.runner`).

        Once ``stop`` is set, the sync ends after the page it is storing.
        """
        return runner.sync_store(self, store_name, progress, stop)

    def remap(self, store_name: str) -> RemapReport:
        """Map the store's stored orders again from their raw copies (:mod:`connector_core.sync.remap`)."""
        return remap.remap_store(self, store_name)

    def sync_all(
        self, stores: Sequence[str], *, concurrency: int = 8, processes: int = 1
    ) -> list[SyncReport | ConnectorError]:
        """Sync several stores, ``concurrency`` at a time, over ``processes`` processes (:mod:`~.sync.many`)."""
        return many.sync_all(self, stores, concurrency=concurrency, processes=processes)

    def retry_rejected(self, reject_id: int) -> RetryOutcome:
        """Re-map a quarantined payload with the current plugin; import it if it passes."""
        return quarantine.retry_rejected(self, reject_id)

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

    # -- order actions ---------------------------------------------------------

    def accept(self, store_name: str, order_key: str) -> StatusChange:
        """Accept an order on the marketplace and record its new status."""
        return self._transition(store_name, order_key, lambda s, o: self.host.accept_order(s, o))

    def cancel(self, store_name: str, order_key: str, reason: str | None = None) -> StatusChange:
        """Cancel an order on the marketplace and record its new status, and the reason with the order."""
        change = self._transition(store_name, order_key, lambda s, o: self.host.cancel_order(s, o, reason))
        if reason and (not change.already_applied or not self.book.get_cancel_reason(store_name, order_key)):
            self.book.set_cancel_reason(store_name, order_key, reason)
        return change

    def _transition(
        self, store_name: str, order_key: str, call: Callable[[StoreContext, Order], StatusChange]
    ) -> StatusChange:
        store = self.store_context(store_name)
        try:
            order = self.book.get_order(store_name, order_key)
            change = call(store, order)
            runner.apply_change(self, store, order_key, change)
            return change
        finally:
            store.http.close()

    # -- push ------------------------------------------------------------------

    def record_shipment(self, shipment: Shipment) -> int:
        """Validate a shipment and put it in the outbox; return its outbox id (same shipment, same id)."""
        return outbox.record_shipment(self, shipment)

    def ship(self, shipment: Shipment, *, force: bool = False) -> shipments.Recorded:
        """Check a shipment against the book (cancelled? shipped with another tracking number?) and record it."""
        return shipments.record(self, shipment, force=force)

    def retry_shipment(self, outbox_id: int) -> OutboxEntry:
        """Put a failed, conflicting or dropped shipment back in the outbox (pushed by the next push)."""
        return shipments.retry(self, outbox_id)

    def drop_shipment(self, outbox_id: int) -> OutboxEntry:
        """Take a shipment out of the outbox for good."""
        return shipments.drop(self, outbox_id)

    def push(self, store_name: str, *, concurrency: int = 1, processes: int = 1) -> PushReport:
        """Push every pending shipment of the store (:mod:`connector_core.push`).

        With ``concurrency`` > 1 the shipments are pushed by that many
        senders, each shipment once; ``processes`` > 1 runs those senders in
        that many forked processes.
        """
        if concurrency != 1 or processes != 1:
            return push_many.push_concurrently(self, store_name, concurrency=concurrency, processes=processes)
        return outbox.push_store(self, store_name)

    def deliver_notifications(self, store: StoreContext) -> notify.DeliveryReport:
        """Send the store's due customer e-mails; failures are recorded on each row, never raised."""
        return outbox.deliver_notifications(self, store)
