"""The shipments outbox as an operator sees it: record a shipment with its checks, list, show, retry, drop.

The command line and the web app call these. :func:`record` refuses what
the order book already knows cannot go through (a cancelled order; an order
already shipped with another tracking number, unless forced; a negative
cost) before anything is written, and says when the same shipment is
already in the outbox. :func:`retry` puts a failed, conflicting or dropped
shipment back to pending; :func:`drop` takes one out for good (the row
stays, ``dropped``, for the record).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

import attrs

from connector_core.db.rows import OutboxEntry, shipment_key
from connector_core.errors import ConfigError, StoreError
from connector_core.models import OrderStatus, Shipment, to_json
from connector_core.push import outbox
from connector_core.runtime import Runtime

STATES = ("pending", "pushed", "failed", "conflict", "dropped")
"""States of an outbox entry: waiting, taken by the marketplace, refused, contradicting it, dropped by hand."""


@attrs.frozen
class Recorded:
    """What :func:`record` did: the outbox id, its state, and whether the shipment is new."""

    outbox_id: int
    state: str
    new: bool


def parse_amount(text: str, what: str) -> Decimal:
    """A money amount typed by a user: a decimal number, zero or more; else a one-line error naming ``what``."""
    try:
        value = Decimal(text.strip())
    except (InvalidOperation, AttributeError):
        raise ConfigError(f"{what} must be an amount such as 6.90, got {text!r}") from None
    if not value.is_finite():
        raise ConfigError(f"{what} must be an amount such as 6.90, got {text!r}")
    if value < 0:
        raise ConfigError(f"{what} cannot be negative (got {text}): give what was paid, e.g. 6.90")
    return value


def record(runtime: Runtime, shipment: Shipment, *, force: bool = False) -> Recorded:
    """Check a shipment against what the book knows, then put it in the outbox (see the module docstring).

    ``force`` records a second shipment of an order that already has one
    with another tracking number (e.g. a second parcel); a cancelled order
    is refused whatever ``force`` says: no marketplace ships it.
    """
    book = runtime.book
    key = shipment.order_key
    if shipment.carrier_fee is not None and shipment.carrier_fee < 0:
        raise ConfigError(f"the carrier fee cannot be negative (got {shipment.carrier_fee})")
    order = book.get_order(shipment.store, key)
    if order.status is OrderStatus.CANCELLED:
        code = order.marketplace_status
        raise ConfigError(
            f"order {key} is cancelled (marketplace status {code.code}{' ' + code.name if code.name else ''}): "
            "it cannot be shipped; check it on the marketplace, then `sync` if it changed there"
        )
    existing = book.order_shipments(shipment.store, key)
    wanted = shipment_key(shipment)
    for entry in existing:
        if shipment_key(entry.shipment) == wanted:
            return Recorded(entry.id, entry.state, new=False)
    if not force and not shipment.items:
        for entry in existing:
            if entry.state in ("pending", "pushed") and entry.shipment.tracking_number != shipment.tracking_number:
                held = "was already shipped" if entry.state == "pushed" else "already waits in the outbox"
                raise ConfigError(
                    f"order {key} {held} with tracking number {entry.shipment.tracking_number} "
                    f"(shipment #{entry.id}); a marketplace keeps one tracking number per order: pass --force to "
                    f"record {shipment.tracking_number} as a second shipment anyway"
                    + (f", or `shipments drop {entry.id}` first" if entry.state == "pending" else "")
                )
    return Recorded(outbox.record_shipment(runtime, shipment), "pending", new=True)


def retry(runtime: Runtime, outbox_id: int) -> OutboxEntry:
    """Put a failed, conflicting or dropped shipment back to pending; return the entry as it is now."""
    book = runtime.book
    entry = book.get_shipment(outbox_id)
    if entry.state == "pushed":
        raise ConfigError(f"shipment #{outbox_id} was already pushed on {entry.pushed_at}: nothing to retry")
    if entry.state != "pending":
        book.requeue_shipment(outbox_id)
    return book.get_shipment(outbox_id)


def drop(runtime: Runtime, outbox_id: int) -> OutboxEntry:
    """Take a shipment out of the outbox for good (it is never pushed); return the entry as it is now."""
    book = runtime.book
    entry = book.get_shipment(outbox_id)
    if entry.state == "pushed":
        raise ConfigError(f"shipment #{outbox_id} was already pushed on {entry.pushed_at}: the marketplace has it")
    if entry.state == "dropped":
        return entry
    book.drop_shipment(outbox_id)
    return book.get_shipment(outbox_id)


def get(runtime: Runtime, outbox_id: int) -> OutboxEntry:
    """One outbox entry; a one-line error naming ``shipments list`` if the id is unknown."""
    try:
        return runtime.book.get_shipment(outbox_id)
    except StoreError:
        raise ConfigError(f"no shipment with outbox id {outbox_id}: see `shipments list`") from None


def describe(entry: OutboxEntry) -> dict[str, Any]:
    """An outbox entry as JSON: what was sent, the marketplace's per-field result, attempts, errors."""
    return {
        "id": entry.id,
        "store": entry.store,
        "order_key": entry.order_key,
        "state": entry.state,
        "attempts": entry.attempts,
        "last_error": entry.last_error,
        "created_at": entry.created_at,
        "pushed_at": entry.pushed_at,
        "dropped_at": entry.dropped_at,
        "conflict": entry.conflict,
        "shipment": to_json(entry.shipment),
        "result": None if entry.result is None else to_json(entry.result),
    }
