"""The Acme Bazaar plugin: every hook the host calls, in lifecycle order."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from importlib import resources
from importlib.util import find_spec
from typing import Any

import iso4217

from connector_acme_bazaar import __version__
from connector_acme_bazaar.client import DEFAULT_BASE_URL, call
from connector_core import hookimpl
from connector_core.errors import ConfigError, MappingError
from connector_core.models import (
    Address,
    Capability,
    ConnectResult,
    Customer,
    FetchPage,
    FieldOutcome,
    FieldResult,
    LineItem,
    MarketplaceInfo,
    MarketplaceStatus,
    Order,
    PushResult,
    RawOrder,
    Shipment,
    StatusChange,
)
from connector_core.store_context import StoreContext
from connector_core.testing.profile import ContractProfile

# -- describing the marketplace ---------------------------------------------------

SETTINGS_SCHEMA = {
    "type": "object",
    "required": ["client_id", "client_secret"],
    "additionalProperties": False,
    "properties": {
        "client_id": {"type": "string", "minLength": 4, "description": "Seller centre > API clients"},
        "client_secret": {"type": "string", "minLength": 8, "x-secret": True, "description": "shown once, with it"},
        "base_url": {"type": "string", "default": DEFAULT_BASE_URL, "description": "API root (the sandbox's URL)"},
        "auto_accept": {"type": "boolean", "default": True, "description": "Accept new orders once imported"},
    },
}

STATUSES = {"new": "New", "accepted": "Accepted", "shipped": "Shipped", "cancelled": "Cancelled"}

DEFAULT_STATUS_MAP = {
    "new": "pending_fulfillment",
    "accepted": "awaiting_shipment",
    "shipped": "shipped",
    "cancelled": "cancelled",
}

CAPABILITIES = (
    Capability("customer_email", "supported"),
    Capability("customer_phone", "supported"),
    Capability("customer_notes", "supported", "the buyer's note"),
    Capability("item_weight", "supplied_by_host", "from the host's product catalogue"),
    Capability("tracking_number", "supported"),
    Capability("carrier", "supported"),
    Capability("partial_shipments", "supported", "some lines, some quantities, one tracking number each"),
    Capability("service", "not_offered", "Acme has no field for it; kept in the host"),
    Capability("carrier_fee", "not_offered", "Acme has no field for it; kept in the host"),
    Capability("notes_to_buyer", "not_offered", "Acme has no field for it; kept in the host"),
)


@hookimpl
def marketplace_info() -> MarketplaceInfo:
    """Describe Acme Bazaar: settings, statuses, capabilities and the raw order schema."""
    raw_schema = json.loads(resources.files(__package__).joinpath("order.schema.json").read_text("utf-8"))
    return MarketplaceInfo(
        name="acme",
        version=__version__,
        title="Acme Bazaar",
        settings_schema=SETTINGS_SCHEMA,
        capabilities=CAPABILITIES,
        statuses=STATUSES,
        raw_schema=raw_schema,
        description="A made-up marketplace with a small JSON API (the tutorial's example).",
    )


# -- connecting and fetching ------------------------------------------------------


@hookimpl
def connect(store: StoreContext) -> ConnectResult:
    """One cheap authenticated call: whose credentials are these?"""
    shop = call(store, "GET", "shop")
    return ConnectResult(account=shop["name"], details={"shop_id": shop["shop_id"]})


@hookimpl
def fetch_orders(store: StoreContext, since: Any) -> Iterator[FetchPage]:
    """Page through the orders changed after the cursor (Acme's change sequence number)."""
    after = int(since or 0)
    while True:
        answer = call(store, "GET", "orders", params={"after": after, "limit": 50})
        orders = [RawOrder(order_key=o["id"], payload=o) for o in answer["orders"]]
        after = answer["next"]
        yield FetchPage(orders=orders, cursor=after)
        if not answer["has_more"]:
            return


# -- mapping ----------------------------------------------------------------------


def money(minor: int, currency: str) -> Decimal:
    """An amount in the currency's minor units as a Decimal: 1990 EUR -> 19.90, 1990 JPY -> 1990, 1990 KWD -> 1.990."""
    exponent = iso4217.Currency(currency).exponent or 0
    return Decimal(minor).scaleb(-exponent)


def _address(data: dict[str, Any] | None, phone: str | None) -> Address:
    data = data or {}
    return Address(
        name=data.get("name"),
        street1=data.get("street"),
        city=data.get("city"),
        postal_code=data.get("postcode"),
        country=data.get("country"),
        phone=phone,
    )


@hookimpl
def map_order(store: StoreContext, raw: RawOrder) -> Order:
    """Map one Acme order to the canonical order; refuse one without a shipping address."""
    p = raw.payload
    buyer, currency = p["buyer"], p["currency"]
    ship_to = _address(p["shipping_address"], buyer.get("phone"))
    if not ship_to.is_usable():
        raise MappingError("order has no usable shipping address", store=store.name, order_key=raw.order_key)
    items = [
        LineItem(
            line_key=line["line_id"],
            sku=line.get("sku"),
            name=line["title"],
            quantity=line["qty"],
            unit_price=money(line["price"], currency),
        )
        for line in p["lines"]
    ]
    return Order(
        store=store.name,
        marketplace="acme",
        order_key=raw.order_key,
        order_number=p["id"],
        order_date=datetime.fromisoformat(p["created_at"]),
        modified_date=datetime.fromisoformat(p.get("updated_at") or p["created_at"]),
        status=DEFAULT_STATUS_MAP[p["status"]],  # provisional: the host applies map_status
        marketplace_status=MarketplaceStatus(p["status"], STATUSES[p["status"]]),
        customer=Customer(name=buyer["name"], email=buyer.get("email"), phone=buyer.get("phone")),
        ship_to=ship_to,
        currency=currency,
        items=items,
        item_total=sum((item.total() for item in items), Decimal(0)),
        shipping_amount=money(p["shipping_price"], currency),
        total=money(p["total"], currency),
        customer_notes=p.get("note"),
        raw=p,
    )


@hookimpl
def map_status(store: StoreContext, marketplace_status: str) -> str | None:
    """Acme's four statuses; ``None`` for anything unknown (the host holds the order)."""
    return DEFAULT_STATUS_MAP.get(marketplace_status)


# -- the order workflow -----------------------------------------------------------


@hookimpl
def should_auto_accept(store: StoreContext, order: Order) -> bool:
    """Accept new orders automatically unless the store turned it off."""
    return bool(store.settings.get("auto_accept", True)) and order.marketplace_status.code == "new"


def _status_change(order: Order, answer: dict[str, Any]) -> StatusChange:
    status = answer["status"]
    return StatusChange(
        order.order_key, MarketplaceStatus(status, STATUSES[status]), already_applied=not answer["changed"]
    )


@hookimpl
def accept_order(store: StoreContext, order: Order) -> StatusChange:
    """Accept a new order (409 from Acme becomes the core's TransitionError)."""
    return _status_change(order, call(store, "POST", f"orders/{order.order_key}/accept"))


@hookimpl
def cancel_order(store: StoreContext, order: Order, reason: str | None) -> StatusChange:
    """Cancel an order that has not shipped yet."""
    return _status_change(order, call(store, "POST", f"orders/{order.order_key}/cancel", data={"reason": reason or ""}))


@hookimpl
def push_shipment(store: StoreContext, order: Order, shipment: Shipment) -> PushResult:
    """Send tracking number, carrier and the lines shipped (all, unless ``shipment.items`` names some)."""
    sent: dict[str, Any] = {"tracking_number": shipment.tracking_number, "carrier": shipment.carrier or ""}
    if shipment.items:
        sent["lines"] = [{"line_id": item.line_key, "qty": item.quantity} for item in shipment.items]
    answer = call(store, "POST", f"orders/{order.order_key}/shipments", json=sent)
    fields = [FieldResult("tracking_number", FieldOutcome.SENT)]
    fields.append(FieldResult("carrier", FieldOutcome.SENT if shipment.carrier else FieldOutcome.SKIPPED))
    for name in ("service", "carrier_fee", "notes_to_buyer"):
        given = getattr(shipment, name) is not None
        fields.append(FieldResult(name, FieldOutcome.UNSUPPORTED if given else FieldOutcome.SKIPPED))
    return PushResult(accepted=True, fields=fields, already_applied=not answer["changed"])


# -- the sandbox, for the contract kit --------------------------------------------


SANDBOX_NEEDS = ("starlette", "uvicorn", "python_multipart")  # the `sandbox` extra, by import name


@hookimpl
def sandbox_factory() -> Any:
    """Local Acme Bazaar sandboxes (a real server on 127.0.0.1), when the ``sandbox`` extra is installed."""
    missing = [name for name in SANDBOX_NEEDS if find_spec(name) is None]
    if missing:
        raise ConfigError(
            f"the Acme Bazaar sandbox needs {', '.join(missing)}: pip install 'connector-acme-bazaar[sandbox]'"
        )
    from connector_acme_bazaar.sandbox import AcmeSandbox

    return AcmeSandbox


@hookimpl
def contract_profile() -> ContractProfile:
    """Acme's figures add up, and it ships part of an order; it re-fetches nothing (no overlap)."""
    return ContractProfile(totals_add_up=True, partial_shipments=True)
