"""Test data for the notification tests: a branded store, an order, its shipment."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import attrs

from connector_core.models import (
    Address,
    Customer,
    ItemOption,
    LineItem,
    MarketplaceStatus,
    Order,
    Shipment,
)

BRANDED = {
    "branding": {
        "display_name": "Maison Lumière",
        "sender_name": "Lumière customer care",
        "sender_email": "care@lumiere.example",
        "logo_url": "https://cdn.lumiere.example/logo.png",
        "accent_colour": "#AA3366",
        "footer_text": "Maison Lumière, 12 rue des Lilas, Lyon",
    },
    "notifications": {"shipment_confirmation": True, "include_notes_to_buyer": True},
}


def make_order(store: str = "lumiere", key: str = "com:A1", **changes: object) -> Order:
    """A small two-line order with a customer e-mail."""
    order = Order(
        store=store,
        marketplace="bazaar",
        order_key=key,
        order_number=key.split(":")[-1],
        order_date=datetime(2024, 5, 2, 9, 30, tzinfo=UTC),
        status="awaiting_shipment",
        marketplace_status=MarketplaceStatus("2", "accepted"),
        ship_to=Address(name="Alice Martin", street1="3 quai Est", city="Lyon", postal_code="69002", country="FR"),
        currency="EUR",
        customer=Customer(name="Alice Martin", email="alice@buyer.example"),
        items=[
            LineItem(
                "1",
                "SHOE-42",
                "Derby <b>shoe</b> & co",
                1,
                Decimal("89.90"),
                image_url="https://img.example/shoe.jpg",
                options=[ItemOption("size", "42")],
            ),
            LineItem("2", "SOCK-1", "Wool socks", 2, Decimal("9.50"), image_url="https://img.example/sock.jpg"),
        ],
        total=Decimal("108.90"),
    )
    return attrs.evolve(order, **changes) if changes else order


def make_shipment(order: Order, tracking: str = "TRK123456FR", **kw: object) -> Shipment:
    """A shipment of the whole order."""
    fields: dict[str, object] = {
        "carrier": "Colissimo",
        "service": "Home signature",
        "notes_to_buyer": "Thanks for shopping with us!",
        "ship_date": datetime(2024, 5, 3, 14, 0, tzinfo=UTC),
    }
    fields.update(kw)
    return Shipment(store=order.store, order_key=order.order_key, tracking_number=tracking, **fields)  # type: ignore[arg-type]
