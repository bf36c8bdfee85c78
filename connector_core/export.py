"""Exporting orders for spreadsheets and other tools: CSV (one row per item) or JSON Lines (one order per line).

Both formats are streamed: orders are read from the book one at a time and
written as they come, so memory stays flat however many there are. The
JSON Lines form is the canonical order JSON (money as strings) with the
host's own state applied (status after an accept or ship, internal notes,
cancel reason). The CSV form repeats the order's columns on each of its item
rows, the usual shape of a fulfilment export; ``csv`` from the standard
library writes it (quoting, embedded newlines).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, TextIO

from connector_core.db.history import OrderFilter
from connector_core.db.rows import order_from_db
from connector_core.db.storage import OrderStore
from connector_core.models import Order, to_json

FORMATS = ("csv", "jsonl")
_GRAMS = {"g": Decimal(1), "kg": Decimal(1000), "oz": Decimal("28.349523125"), "lb": Decimal("453.59237")}

CSV_COLUMNS = (
    "store",
    "order_key",
    "order_number",
    "order_date",
    "status",
    "marketplace_status",
    "customer_name",
    "customer_email",
    "customer_phone",
    "ship_to_name",
    "ship_to_street1",
    "ship_to_street2",
    "ship_to_postal_code",
    "ship_to_city",
    "ship_to_country",
    "pickup_point",
    "requested_shipping_service",
    "payment_method",
    "currency",
    "item_total",
    "shipping_amount",
    "payment_fee",
    "total",
    "total_weight_g",
    "line_key",
    "sku",
    "item_name",
    "quantity",
    "unit_price",
    "discount",
    "options",
    "warehouse_location",
    "ean",
    "internal_notes",
    "cancel_reason",
)


def _orders(book: OrderStore, flt: OrderFilter) -> Iterator[tuple[Order, str | None]]:
    for row in book.iter_order_documents(flt):
        yield order_from_db(row), row["cancel_reason"]


def _weight_grams(order: Order) -> str:
    weight = order.total_weight
    if weight is None:
        return ""
    return str(weight.value * _GRAMS[weight.unit])


def _csv_rows(order: Order, cancel_reason: str | None) -> Iterator[dict[str, Any]]:
    a = order.ship_to
    head = {
        "store": order.store,
        "order_key": order.order_key,
        "order_number": order.order_number,
        "order_date": order.order_date.isoformat(),
        "status": order.status.value,
        "marketplace_status": order.marketplace_status.code,
        "customer_name": order.customer.name,
        "customer_email": order.customer.email,
        "customer_phone": order.customer.phone,
        "ship_to_name": a.name,
        "ship_to_street1": a.street1,
        "ship_to_street2": a.street2,
        "ship_to_postal_code": a.postal_code,
        "ship_to_city": a.city,
        "ship_to_country": a.country,
        "pickup_point": order.pickup_point.id if order.pickup_point else None,
        "requested_shipping_service": order.requested_shipping_service,
        "payment_method": order.payment_method,
        "currency": order.currency,
        "item_total": order.item_total,
        "shipping_amount": order.shipping_amount,
        "payment_fee": order.payment_fee,
        "total": order.total,
        "total_weight_g": _weight_grams(order),
        "internal_notes": order.internal_notes,
        "cancel_reason": cancel_reason,
    }
    for item in order.items or ():
        yield {
            **head,
            "line_key": item.line_key,
            "sku": item.sku,
            "item_name": item.name,
            "quantity": item.quantity,
            "unit_price": item.unit_price,
            "discount": item.discount,
            "options": "; ".join(f"{o.name}={o.value}" for o in item.options),
            "warehouse_location": item.warehouse_location,
            "ean": item.ean,
        }


def export_orders(book: OrderStore, flt: OrderFilter, fmt: str, stream: TextIO) -> int:
    """Write the orders matching ``flt`` to ``stream`` as ``csv`` or ``jsonl``; return how many orders."""
    count = 0
    if fmt == "jsonl":
        for order, reason in _orders(book, flt):
            doc = to_json(order)
            doc["cancel_reason"] = reason
            stream.write(json.dumps(doc, ensure_ascii=False, sort_keys=True) + "\n")
            count += 1
        return count
    if fmt != "csv":
        raise ValueError(f"unknown export format {fmt!r} (csv or jsonl)")
    writer = csv.DictWriter(stream, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for order, reason in _orders(book, flt):
        writer.writerows(_csv_rows(order, reason))
        count += 1
    return count
