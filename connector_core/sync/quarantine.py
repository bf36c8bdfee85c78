"""Second chances for quarantined payloads: re-map one with the current plugin, import it if it passes."""

from __future__ import annotations

import json

import attrs

from connector_core.db.rows import prepare_row
from connector_core.errors import ConnectorError, PayloadError
from connector_core.models import Order, RawOrder
from connector_core.runtime import Runtime
from connector_core.secrets import redact
from connector_core.sync.pipeline import pipeline_for


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


def retry_rejected(runtime: Runtime, reject_id: int) -> RetryOutcome:
    """Re-validate and re-map a quarantined payload with the current plugin; import it if it passes.

    The rejected row is stamped ``retried_at`` when the payload passes
    (imported, or a newer copy is already in the book); a payload that
    still fails keeps its row untouched and the outcome says why.
    """
    book = runtime.book
    row = book.get_rejected(reject_id)
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
    store = runtime.store_context(row.store)
    try:
        pipeline = pipeline_for(runtime, store)
        site = row.order_key.partition(":")[0] if ":" in row.order_key else None
        try:
            order = pipeline.process(RawOrder(order_key=row.order_key, payload=payload, site=site))[0]
        except PayloadError as err:
            # the stored copy still fails: the marketplace's current copy may be sound
            fresh = runtime.host.fetch_order(store, row.order_key)
            if fresh is None:
                return RetryOutcome(reject_id, row.order_key, "rejected", reason=redact(err.message), path=err.path)
            try:
                order = pipeline.process(fresh)[0]
            except PayloadError as again:
                return RetryOutcome(reject_id, row.order_key, "rejected", reason=redact(again.message), path=again.path)
        state = "imported"
        try:
            held: Order | None = book.get_order(store.name, order.order_key)
        except ConnectorError:
            held = None
        if held is not None and _newer(held, order):
            state = "newer_in_book"
        else:
            # an order the sync would have auto-accepted gets its accept intent in the same write; the
            # next sync (which holds the store's lease) sends it, as it sends every pending accept
            accept = [order.order_key] if pipeline.wants_accept(order) else []
            book.save_rows(store.name, [prepare_row(order)], accept=accept)
        book.mark_rejected_retried(reject_id)
        return RetryOutcome(reject_id, row.order_key, state)
    finally:
        store.http.close()


def _newer(held: Order, candidate: Order) -> bool:
    """Whether the book's copy of an order is at least as recent as ``candidate``."""
    if held.modified_date is None or candidate.modified_date is None:
        return False
    return held.modified_date >= candidate.modified_date
