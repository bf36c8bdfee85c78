"""What the pages do to the order book and the marketplaces, through the engine's public calls.

Kept apart from the routes so that each is a plain function over an
:class:`~connector_core.engine.Engine` or an
:class:`~connector_core.db.OrderBook`, easy to test and shared by pages
that do the same thing (one order's ship form and the ship-many form).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import attrs

from connector_core import host_settings, shipments, stores
from connector_core.db import OrderBook
from connector_core.engine import Engine
from connector_core.errors import ConfigError, ConnectorError
from connector_core.models import Order, Shipment, ShipmentItem
from connector_core.plugins import PluginHost
from connector_core.store_context import StoreContext


def check_connection(host: PluginHost, name: str, marketplace: str, settings: dict[str, Any]) -> str:
    """Validate ``settings`` and call the plugin's ``connect``; return the account it reports (nothing saved)."""
    stores.check_settings(host, marketplace, name, settings)
    return stores.connect(host, marketplace, name, settings).account


def connect_store(host: PluginHost, book: OrderBook, marketplace: str, name: str, settings: dict[str, Any]) -> str:
    """Validate, connect and save a new store; return the connected account. Nothing is saved on failure."""
    return stores.add_store(book, host, marketplace, name, settings)


def update_marketplace_settings(host: PluginHost, book: OrderBook, name: str, settings: dict[str, Any]) -> str:
    """Connect with the new plugin settings, then save them (orders, cursor and outbox are kept)."""
    return stores.update_store(book, host, name, settings)[1]


def save_host_settings(book: OrderBook, name: str, sparse: dict[str, Any]) -> dict[str, Any]:
    """Validate and save the store's host settings; return the effective document."""
    doc = host_settings.validate(sparse, store=name)
    book.update_store(name, store_settings=sparse)
    host_settings.register_secrets(doc)
    return doc


def default_status(host: PluginHost, marketplace: str, code: str) -> str:
    """The plugin's own canonical status for ``code`` (no store override)."""
    context = StoreContext(name="-", marketplace=marketplace, settings={})
    try:
        return host.map_status(context, code).value
    finally:
        context.http.close()


def set_status_mapping(engine: Engine, name: str, mapping: Mapping[str, str | None], *, apply: bool) -> int:
    """Save the store's overrides (``None``: the plugin's default); with ``apply``, remap its stored orders.

    Returns how many stored orders the remap changed (0 without ``apply``).
    """
    for code, status in mapping.items():
        engine.book.set_status_map(name, code, status)
    if not apply:
        return 0
    return engine.remap(name).changed


@attrs.frozen
class ShipForm:
    """A shipment as typed in a form, before it is checked."""

    tracking: str
    carrier: str = ""
    service: str = ""
    fee: str = ""
    notes_to_buyer: str = ""
    notify: bool = True
    lines: Mapping[str, str] = attrs.field(factory=dict)
    """``line_key`` -> quantity text; empty: the whole order."""


def build_shipment(order: Order, form: ShipForm) -> Shipment:
    """The :class:`Shipment` a ship form describes; :class:`ConfigError` says what to fix."""
    tracking = form.tracking.strip()
    if not tracking:
        raise ConfigError(f"{order.order_key}: enter the tracking number")
    fee = shipments.parse_amount(form.fee, f"{order.order_key}: the carrier fee") if form.fee.strip() else None
    items: list[ShipmentItem] = []
    if form.lines:
        by_key = {i.line_key: i for i in order.items}
        whole = True
        for line_key, text in form.lines.items():
            item = by_key.get(line_key)
            if item is None:
                raise ConfigError(f"{order.order_key}: no line {line_key!r} in this order")
            try:
                quantity = int(text.strip() or "0")
            except ValueError:
                what = item.sku or line_key
                raise ConfigError(f"{order.order_key}: the quantity of {what} is a whole number") from None
            if not 0 <= quantity <= item.quantity:
                raise ConfigError(
                    f"{order.order_key}: ship 0 to {item.quantity} of {item.sku or line_key}, not {quantity}"
                )
            whole = whole and quantity == item.quantity
            if quantity:
                items.append(ShipmentItem(line_key=line_key, quantity=quantity))
        whole = whole and len(form.lines) == len(order.items)
        if not items:
            raise ConfigError(f"{order.order_key}: pick at least one item to ship")
        if whole:
            items = []
    return Shipment(
        store=order.store,
        order_key=order.order_key,
        tracking_number=tracking,
        ship_date=datetime.now(UTC),
        carrier=form.carrier.strip() or None,
        service=form.service.strip() or None,
        carrier_fee=fee,
        notes_to_buyer=form.notes_to_buyer.strip() or None,
        notify_customer=form.notify,
        items=tuple(items),
    )


def ship(engine: Engine, order: Order, form: ShipForm) -> int:
    """Check the shipment against the book and put it in the outbox (sent by the next push); return its outbox id."""
    return engine.ship(build_shipment(order, form)).outbox_id


def ship_many(engine: Engine, orders: Sequence[Order], forms: Sequence[ShipForm]) -> list[tuple[str, str]]:
    """Ship each order with its form; one refused order does not stop the others.

    Returns ``(order key, outcome)`` pairs: ``"#<outbox id>"`` or the error.
    """
    out: list[tuple[str, str]] = []
    for order, form in zip(orders, forms, strict=True):
        try:
            out.append((order.order_key, f"#{ship(engine, order, form)}"))
        except ConnectorError as err:
            out.append((order.order_key, f"error: {err.message}"))
    return out
