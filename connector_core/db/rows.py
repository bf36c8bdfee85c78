"""Row forms of the order book: what is written and what is read back, as plain values.

:func:`prepare_row` turns an order into the columns :meth:`OrderBook.save_rows`
writes; it is pure (no connection), so a map worker builds rows and only the
host writes them. The JSON columns are written by :func:`dump_bytes`, and a
row carries them as those UTF-8 bytes: the book binds them as they are and
stores them as text (:attr:`OrderBook.UTF8_TEXT
<connector_core.db.book.OrderBook.UTF8_TEXT>`), so an order's JSON is never
decoded into a Python string on its way in, neither in a map worker nor in
the host, nor encoded again by the driver (``bench/RESULTS.md``, round 13).

Why a hand-written encoder path: orjson writes the same compact, key-sorted
UTF-8 JSON as ``json.dumps(..., sort_keys=True, separators=(",", ":"))``
about ten times faster, and encoding is most of the cost of storing an order
(measured in ``bench/RESULTS.md``); ``json`` takes what orjson refuses
(integers beyond 64 bits).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from typing import Any, NamedTuple

import attrs
import orjson

from connector_core.errors import PayloadError
from connector_core.models import MarketplaceStatus, Order, OrderStatus, PushResult, Shipment, from_json, to_json


def dump_bytes(value: Any) -> bytes:
    """Compact, key-sorted UTF-8 JSON of ``value`` (the form of every JSON column)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def dumps(value: Any) -> str:
    """:func:`dump_bytes` as text."""
    return dump_bytes(value).decode()


def order_hash(order: Order) -> str:
    """A content hash of the whole order (canonical fields and raw payload)."""
    return stored_form(to_json(order))[2]


def stored_form(data: dict[str, Any], raw: bytes | None = None) -> tuple[bytes, bytes, str]:
    """The ``canonical`` and ``raw`` columns (UTF-8 JSON) of an order's JSON form, and their content hash.

    The hash is of the two columns' bytes, so nothing is serialised twice.
    ``raw``: the raw column's bytes (:func:`dump_bytes` of ``data["raw"]``)
    when the caller already has them; they are hashed as they are, and the
    raw column returned is then empty (the caller holds it). ``data`` is not
    modified.
    """
    fields = dict(data)  # a shallow copy (in C) without the raw payload: ``data`` stays as it is
    payload = fields.pop("raw", {})
    encoded = dump_bytes(payload) if raw is None else raw
    canonical = dump_bytes(fields)
    digest = hashlib.sha256(canonical)
    digest.update(b"\n")
    digest.update(encoded)  # == sha256 of f"{canonical}\n{raw}", without building that text
    return canonical, b"" if raw is not None else encoded, digest.hexdigest()


def shipment_key(shipment: Shipment) -> str:
    """The outbox idempotency key: ``shipment_id`` when set, else tracking number and items."""
    if shipment.shipment_id:
        return f"id:{shipment.shipment_id}"
    items = sorted((i.line_key, i.quantity) for i in shipment.items)
    return "t:" + hashlib.sha256(dumps([shipment.tracking_number, items]).encode()).hexdigest()[:32]


@attrs.frozen
class StoreRecord:
    """One configured store as saved (``settings`` holds secrets: never print it unmasked)."""

    name: str
    marketplace: str
    settings: dict[str, Any] = attrs.field(repr=False)
    status_map: dict[str, str] = attrs.field(factory=dict)
    store_settings: dict[str, Any] = attrs.field(factory=dict, repr=False)
    created_at: str = ""


@attrs.frozen
class PageStats:
    """What :meth:`OrderBook.save_page` did with one page."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0


class OrderRow(NamedTuple):
    """One order as :meth:`OrderBook.save_rows` writes it: its columns, content hash and SKUs.

    Built by :func:`prepare_row` from the order's JSON form; plain strings,
    bytes and tuples, so a page of them crosses a process boundary cheaply.
    The two JSON columns are UTF-8 bytes (see the module docstring).
    """

    order_key: str
    order_number: str
    status: str
    marketplace_status: str
    order_date: str | None
    modified_date: str | None
    canonical: bytes
    raw: bytes
    hash: str
    marketplace_status_name: str | None
    skus: str | None
    """The SKUs of the order's lines, one per line of text, for the SKU search (the lines are in ``canonical``)."""


MAX_QUANTITY = 10**9
"""A line quantity above this is no real order (and SQLite's integers end at 2**63)."""


def prepare_row(order: Order, document: dict[str, Any] | None = None, raw: bytes | None = None) -> OrderRow:
    """The row of ``order``; ``document`` is its :func:`~connector_core.models.to_json` form if already made.

    One JSON form per order: the hash, both JSON columns and the SKUs
    come from it. ``raw``: the raw column's bytes, when the caller has them
    already (a map worker is sent each payload so encoded); the row's
    ``raw`` is then left empty for the caller to fill in (see
    :func:`stored_form`). ``document`` is not modified. A quantity no order can hold
    (above :data:`MAX_QUANTITY`) is a :class:`PayloadError` of this order
    alone, raised here rather than as an ``OverflowError`` by the page's write.
    """
    data = to_json(order) if document is None else document
    for i, item in enumerate(data["items"]):
        quantity = item["quantity"]
        if isinstance(quantity, bool) or not isinstance(quantity, int) or not 0 < quantity <= MAX_QUANTITY:
            raise PayloadError(
                f"item {item.get('line_key')} has quantity {str(quantity)[:40]}, outside 1..{MAX_QUANTITY:,}: "
                "no order holds that many; check the order on the marketplace",
                order_key=order.order_key,
                path=f"$.items[{i}].quantity",
            )
    canonical, raw_text, digest = stored_form(data, raw)
    return OrderRow(
        order.order_key,
        order.order_number,
        order.status.value,
        order.marketplace_status.code,
        data["order_date"],  # to_json wrote the dates as the book writes them (utc_iso)
        data["modified_date"],
        canonical,
        raw_text,
        digest,  # == order_hash(order)
        order.marketplace_status.name,
        "\n".join(sku for item in data["items"] if (sku := item["sku"])) or None,
    )


def order_from_row(row: OrderRow) -> Order:
    """The :class:`Order` a row was made from (its two JSON columns read back)."""
    return from_columns(row.canonical, row.raw)


def from_columns(canonical: str | bytes, raw: str | bytes) -> Order:
    """An order from its ``canonical`` and ``raw`` columns (as read back, or as a row carries them)."""
    data = json.loads(canonical)
    data["raw"] = json.loads(raw)
    return from_json(data, Order)


def order_from_db(row: sqlite3.Row) -> Order:
    """An order as the book holds it: its document, with the host's own state applied on top.

    ``row`` has ``canonical``, ``raw``, ``notes``, ``host_changed_at``,
    ``status``, ``marketplace_status`` and ``marketplace_status_name``. The
    host's status columns win over the document once the host changed them
    (accept, cancel, ship); internal notes win over any the marketplace gave.
    """
    order = from_columns(row["canonical"], row["raw"])
    changes: dict[str, Any] = {}
    if row["host_changed_at"] is not None:
        changes["status"] = OrderStatus(row["status"])
        changes["marketplace_status"] = MarketplaceStatus(row["marketplace_status"], row["marketplace_status_name"])
    if row["notes"]:
        changes["internal_notes"] = row["notes"]
    return attrs.evolve(order, **changes) if changes else order


@attrs.frozen
class Reject:
    """A payload to quarantine: where it failed, why, and the payload itself."""

    stage: str
    reason: str
    order_key: str | None = None
    path: str | None = None
    payload: str | None = attrs.field(default=None, repr=False)
    retried: bool = False  # already recovered (e.g. fetched again and imported): stored with retried_at


@attrs.frozen
class RejectedRow:
    """A quarantined payload as stored."""

    id: int
    store: str
    order_key: str | None
    stage: str
    reason: str
    path: str | None
    payload: str | None = attrs.field(repr=False)
    created_at: str
    retried_at: str | None


@attrs.frozen
class OrderSummary:
    """One line of ``orders list``."""

    store: str
    order_key: str
    order_number: str
    status: str
    marketplace_status: str
    order_date: str
    total: str
    currency: str
    updated_at: str


@attrs.frozen
class OutboxEntry:
    """A shipment in the outbox and what became of it."""

    id: int
    store: str
    order_key: str
    shipment: Shipment
    state: str
    attempts: int
    last_error: str | None
    result: PushResult | None
    created_at: str
    pushed_at: str | None
    conflict: dict[str, Any] | None = None
    """For a shipment in ``conflict``: what the marketplace holds against it (e.g. its tracking number)."""
    dropped_at: str | None = None


@attrs.frozen
class AcceptEntry:
    """An order the host means to accept on its marketplace (the accept outbox)."""

    store: str
    order_key: str
    state: str
    attempts: int
    last_error: str | None
    created_at: str
    done_at: str | None


def store_record(row: sqlite3.Row) -> StoreRecord:
    """A ``stores`` row as a :class:`StoreRecord`."""
    return StoreRecord(
        name=row["name"],
        marketplace=row["marketplace"],
        settings=json.loads(row["settings"]),
        status_map=json.loads(row["status_map"]),
        store_settings=json.loads(row["store_settings"]),
        created_at=row["created_at"],
    )


def order_summary(r: sqlite3.Row) -> OrderSummary:
    """An order listing row (``total`` and ``currency`` read from the canonical JSON)."""
    return OrderSummary(
        store=r["store"],
        order_key=r["order_key"],
        order_number=r["order_number"],
        status=r["status"],
        marketplace_status=r["marketplace_status"],
        order_date=r["order_date"],
        total=str(r["total"]),
        currency=str(r["currency"]),
        updated_at=r["updated_at"],
    )


def rejected_row(row: sqlite3.Row) -> RejectedRow:
    """A ``rejected`` row."""
    return RejectedRow(
        id=row["id"],
        store=row["store"],
        order_key=row["order_key"],
        stage=row["stage"],
        reason=row["reason"],
        path=row["path"],
        payload=row["payload"],
        created_at=row["created_at"],
        retried_at=row["retried_at"],
    )


def outbox_entry(row: sqlite3.Row) -> OutboxEntry:
    """An ``outbox`` row."""
    return OutboxEntry(
        id=row["id"],
        store=row["store"],
        order_key=row["order_key"],
        shipment=from_json(json.loads(row["shipment"]), Shipment),
        state=row["state"],
        attempts=row["attempts"],
        last_error=row["last_error"],
        result=None if row["result"] is None else from_json(json.loads(row["result"]), PushResult),
        created_at=row["created_at"],
        pushed_at=row["pushed_at"],
        conflict=None if row["conflict"] is None else json.loads(row["conflict"]),
        dropped_at=row["dropped_at"],
    )


def accept_entry(row: sqlite3.Row) -> AcceptEntry:
    """An ``accepts`` row."""
    return AcceptEntry(
        store=row["store"],
        order_key=row["order_key"],
        state=row["state"],
        attempts=row["attempts"],
        last_error=row["last_error"],
        created_at=row["created_at"],
        done_at=row["done_at"],
    )
