"""Bazaar: a small in-memory marketplace plugin that proves the core is generic.

It serves orders from a list of dicts, pages them by a sequence number (the
cursor), validates them against its own raw JSON Schema, and keeps every
shipment and status change it is sent, so tests can check what reached the
"marketplace".
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from connector_core import hookimpl
from connector_core.errors import AuthError, MappingError, TransientError, TransitionError
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
    RawReject,
    Shipment,
    StatusChange,
)
from connector_core.plugins import PluginHost, get_plugin_manager
from connector_core.store_context import StoreContext

TOKEN = "bz-token-5f1e9c"

RAW_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "seq", "status", "placed", "total", "lines"],
    "properties": {
        "id": {"type": "string"},
        "seq": {"type": "integer"},
        "status": {"enum": ["new", "ok", "sent", "void", "odd"]},
        "placed": {"type": "string"},
        "total": {"type": "string", "pattern": r"^\d+\.\d{2}$"},
        "buyer": {"type": "object"},
        "address": {"type": ["object", "null"]},
        "lines": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["sku", "qty", "price"],
                "properties": {"sku": {"type": "string"}, "qty": {"type": "integer", "minimum": 1}},
            },
        },
    },
}

SETTINGS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["token"],
    "additionalProperties": False,
    "properties": {
        "token": {"type": "string", "x-secret": True},
        "shop": {"type": "string"},
        "page_size": {"type": "integer", "minimum": 1},
        "auto_accept": {"type": "boolean"},
        "fee_rate": {"type": "number"},
        "regions": {"type": "array", "items": {"type": "string"}},
    },
}

DEFAULT_STATUS = {"new": "pending_fulfillment", "ok": "awaiting_shipment", "sent": "shipped", "void": "cancelled"}


def make_order(seq: int, *, status: str = "new", address: bool = True, total: str = "19.90") -> dict[str, Any]:
    """One raw Bazaar order payload."""
    placed = datetime(2024, 5, 1, 9, 0, tzinfo=UTC) + timedelta(hours=seq)
    return {
        "id": f"BZ{seq:04d}",
        "seq": seq,
        "status": status,
        "placed": placed.isoformat(),
        "total": total,
        "buyer": {"name": f"Buyer {seq}", "email": f"buyer{seq}@example.org"},
        "address": (
            {"street": f"{seq} Rue des Lilas", "city": "Lyon", "zip": "69001", "country": "FR"} if address else None
        ),
        "lines": [{"sku": f"SKU-{seq}", "qty": 1, "price": total}],
    }


class Bazaar:
    """The in-memory marketplace; ``name`` lets two instances register side by side."""

    def __init__(self, name: str = "bazaar", orders: list[dict[str, Any]] | None = None, *, page_size: int = 2):
        self.__name__ = name
        self.name = name
        self.orders: list[dict[str, Any]] = list(orders or [])
        self.page_size = page_size
        self.calls: list[tuple[str, str]] = []  # (hook, store name)
        self.pushed: list[Shipment] = []
        self.push_failures = 0  # transient failures to raise before a push succeeds
        self.refuse_push = False
        self.fail_after_pages: int | None = None  # raise TransientError after this many pages
        self.broken_payloads: list[str] = []  # undecodable documents served as RawReject
        self.on_fetch: Callable[[], None] | None = None  # called when fetch_orders starts

    @hookimpl
    def marketplace_info(self) -> MarketplaceInfo:
        return MarketplaceInfo(
            name=self.name,
            version="1.2.3",
            title=self.name.title(),
            settings_schema=SETTINGS_SCHEMA,
            capabilities=[
                Capability("tracking_number", "supported"),
                Capability("carrier", "supported"),
                Capability("service", "not_offered", "no service field"),
                Capability("item_weight", "supplied_by_host", "from the host catalogue"),
            ],
            statuses={"new": "New", "ok": "Accepted", "sent": "Sent", "void": "Cancelled", "odd": "Odd"},
            raw_schema=RAW_SCHEMA,
        )

    @hookimpl
    def connect(self, store: StoreContext) -> ConnectResult:
        self.calls.append(("connect", store.name))
        if store.settings.get("token") != TOKEN:
            raise AuthError(f"could not authorise with {self.name}: the token may be wrong", store=store.name)
        return ConnectResult(account=store.settings.get("shop", "shop"))

    @hookimpl
    def fetch_orders(self, store: StoreContext, since: Any) -> Iterator[FetchPage]:
        self.calls.append(("fetch_orders", store.name))
        if self.on_fetch is not None:
            self.on_fetch()
        start = since["seq"] if since else 0
        pending = sorted((o for o in self.orders if o["seq"] > start), key=lambda o: o["seq"])
        size = int(store.settings.get("page_size", self.page_size))
        for pages, i in enumerate(range(0, max(len(pending), 1), size)):
            if self.fail_after_pages is not None and pages >= self.fail_after_pages:
                raise TransientError(f"{self.name} went away")
            chunk = pending[i : i + size]
            rejects = [RawReject(reason="not JSON", payload=doc) for doc in self.broken_payloads] if i == 0 else []
            cursor = {"seq": chunk[-1]["seq"]} if chunk else None
            yield FetchPage(
                orders=[RawOrder(order_key=o["id"], payload=dict(o)) for o in chunk], rejects=rejects, cursor=cursor
            )

    @hookimpl
    def map_order(self, store: StoreContext, raw: RawOrder) -> Order:
        self.calls.append(("map_order", store.name))
        p = raw.payload
        if not p.get("address"):
            raise MappingError("the order has no shipping address", path="$.address", order_key=raw.order_key)
        a = p["address"]
        return Order(
            store=store.name,
            marketplace=self.name,
            order_key=raw.order_key,
            order_number=p["id"],
            order_date=datetime.fromisoformat(p["placed"]),
            status="on_hold",
            marketplace_status=MarketplaceStatus(code=p["status"]),
            ship_to=Address(
                name=p["buyer"]["name"], street1=a["street"], city=a["city"], postal_code=a["zip"], country=a["country"]
            ),
            customer=Customer(name=p["buyer"]["name"], email=p["buyer"].get("email")),
            currency="EUR",
            items=[
                LineItem(
                    line_key=str(n), sku=line["sku"], name=line["sku"], quantity=line["qty"], unit_price=line["price"]
                )
                for n, line in enumerate(p["lines"], 1)
            ],
            total=p["total"],
            item_total=p["total"],
            raw=p,
        )

    @hookimpl
    def map_status(self, store: StoreContext, marketplace_status: str) -> str | None:
        self.calls.append(("map_status", store.name))
        return DEFAULT_STATUS.get(marketplace_status)

    @hookimpl
    def should_auto_accept(self, store: StoreContext, order: Order) -> bool:
        return bool(store.settings.get("auto_accept", False)) and order.marketplace_status.code == "new"

    def _find(self, key: str) -> dict[str, Any]:
        return next(o for o in self.orders if o["id"] == key)

    @hookimpl
    def accept_order(self, store: StoreContext, order: Order) -> StatusChange:
        self.calls.append(("accept_order", store.name))
        payload = self._find(order.order_key)
        if payload["status"] == "ok":
            return StatusChange(order.order_key, MarketplaceStatus("ok", "Accepted"), already_applied=True)
        if payload["status"] != "new":
            raise TransitionError(f"order {order.order_key} is {payload['status']}, it cannot be accepted")
        payload["status"] = "ok"
        return StatusChange(order.order_key, MarketplaceStatus("ok", "Accepted"))

    @hookimpl
    def cancel_order(self, store: StoreContext, order: Order, reason: str | None) -> StatusChange:
        self.calls.append(("cancel_order", store.name))
        payload = self._find(order.order_key)
        if payload["status"] == "sent":
            raise TransitionError(f"order {order.order_key} has shipped, it cannot be cancelled")
        payload["status"] = "void"
        return StatusChange(order.order_key, MarketplaceStatus("void", "Cancelled"))

    @hookimpl
    def push_shipment(self, store: StoreContext, order: Order, shipment: Shipment) -> PushResult:
        self.calls.append(("push_shipment", store.name))
        if self.push_failures > 0:
            self.push_failures -= 1
            raise TransientError(f"{self.name} is busy, try again")
        if self.refuse_push:
            raise TransitionError(f"order {order.order_key} is cancelled: it cannot be shipped")
        already = any(s.tracking_number == shipment.tracking_number for s in self.pushed)
        if not already:
            self.pushed.append(shipment)
            self._find(order.order_key)["status"] = "sent"
        return PushResult(
            accepted=True,
            already_applied=already,
            fields=[
                FieldResult("tracking_number", FieldOutcome.SENT),
                FieldResult("carrier", FieldOutcome.SENT if shipment.carrier else FieldOutcome.SKIPPED),
                FieldResult(
                    "service",
                    FieldOutcome.UNSUPPORTED if shipment.service else FieldOutcome.SKIPPED,
                    "Bazaar has no service field",
                ),
            ],
        )


def host_of(*plugins: object) -> PluginHost:
    """A host from a fresh plugin manager holding only ``plugins`` (no installed entry points)."""
    return PluginHost(get_plugin_manager(plugins=plugins, load_entrypoints=False, disabled=()))
