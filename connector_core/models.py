"""The canonical order book's values.

Everything here is an immutable ``attrs.frozen`` value. Money is ``Decimal``
(a string in JSON, never a float), datetimes are timezone-aware UTC, and
:func:`to_json` / :func:`from_json` give a lossless JSON form described by
``schemas/canonical/*.schema.json``: ``from_json(to_json(x), type(x)) == x``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar, TypeVar

import attrs
import cattrs

from connector_core.clock import utc_iso

T = TypeVar("T")


class OrderStatus(str, enum.Enum):
    """Canonical order statuses (ShipStation's order statuses)."""

    AWAITING_PAYMENT = "awaiting_payment"
    AWAITING_SHIPMENT = "awaiting_shipment"
    PENDING_FULFILLMENT = "pending_fulfillment"
    ON_HOLD = "on_hold"
    SHIPPED = "shipped"
    CANCELLED = "cancelled"


CANONICAL_STATUSES: tuple[str, ...] = tuple(s.value for s in OrderStatus)


class Support(str, enum.Enum):
    """How a feature of the feature table is met for a marketplace."""

    SUPPORTED = "supported"  # the marketplace gives or takes it
    HOST = "supplied_by_host"  # the host supplies it from its own data
    NOT_OFFERED = "not_offered"  # neither the marketplace nor the host has it


class FieldOutcome(str, enum.Enum):
    """What became of one shipment field in a push."""

    SENT = "sent"  # the marketplace took it
    UNSUPPORTED = "unsupported"  # the marketplace has no field for it: kept locally
    REJECTED = "rejected"  # the marketplace refused it
    SKIPPED = "skipped"  # empty in the shipment, nothing to send


def _tuple(value: Iterable[T]) -> tuple[T, ...]:
    """Sequences of values are stored as tuples, so orders stay hashable and immutable."""
    return value if type(value) is tuple else tuple(value)


# typed converters: mypy's attrs plugin needs a concrete type per field
def _options(value: Iterable[ItemOption]) -> tuple[ItemOption, ...]:
    return _tuple(value)


def _line_items(value: Iterable[LineItem]) -> tuple[LineItem, ...]:
    return _tuple(value)


def _discounts(value: Iterable[Discount]) -> tuple[Discount, ...]:
    return _tuple(value)


def _strings(value: Iterable[str]) -> tuple[str, ...]:
    return _tuple(value)


def _shipment_items(value: Iterable[ShipmentItem]) -> tuple[ShipmentItem, ...]:
    return _tuple(value)


def _field_results(value: Iterable[FieldResult]) -> tuple[FieldResult, ...]:
    return _tuple(value)


def _capabilities(value: Iterable[Capability]) -> tuple[Capability, ...]:
    return _tuple(value)


def _raw_orders(value: Iterable[RawOrder]) -> tuple[RawOrder, ...]:
    return _tuple(value)


def _raw_rejects(value: Iterable[RawReject]) -> tuple[RawReject, ...]:
    return _tuple(value)


def _utc(value: datetime) -> datetime:
    if value.tzinfo is UTC:  # already aware UTC (what a mapping hands over, and every copy of an order)
        return value
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"datetime {value.isoformat()} has no time zone; canonical dates are aware UTC")
    return value.astimezone(UTC)


def _opt_utc(value: datetime | None) -> datetime | None:
    return None if value is None else _utc(value)


def _dec(value: Any) -> Decimal:
    if isinstance(value, float):
        raise TypeError("money must be Decimal or str, never float")
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _opt_dec(value: Any) -> Decimal | None:
    return None if value is None else _dec(value)


@attrs.frozen
class Weight:
    """A weight with its unit: ``g``, ``kg``, ``oz`` or ``lb``."""

    value: Decimal = attrs.field(converter=_dec)
    unit: str = attrs.field(default="g", validator=attrs.validators.in_(("g", "kg", "oz", "lb")))

    _GRAMS: ClassVar[dict[str, Decimal]] = {
        "g": Decimal(1),
        "kg": Decimal(1000),
        "oz": Decimal("28.349523125"),
        "lb": Decimal("453.59237"),
    }

    def grams(self) -> Decimal:
        """This weight in grams."""
        return self.value * self._GRAMS[self.unit]


@attrs.frozen
class Address:
    """A postal address; ``country`` is ISO 3166-1 alpha-2 when known."""

    name: str | None = None
    company: str | None = None
    street1: str | None = None
    street2: str | None = None
    street3: str | None = None
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    country: str | None = None
    phone: str | None = None
    email: str | None = None

    def is_usable(self) -> bool:
        """Whether a parcel could be sent here: a street or name, a city and a country."""
        return bool((self.street1 or "").strip() and (self.city or "").strip() and (self.country or "").strip())


@attrs.frozen
class PickupPoint:
    """A relay / pick-up point the buyer chose instead of home delivery."""

    id: str
    type: str | None = None
    name: str | None = None
    address: Address | None = None


@attrs.frozen
class Customer:
    """The buyer."""

    name: str | None = None
    company: str | None = None
    email: str | None = None
    phone: str | None = None


@attrs.frozen
class MarketplaceStatus:
    """The marketplace's own status code and name, kept beside the canonical one."""

    code: str
    name: str | None = None


@attrs.frozen
class ItemOption:
    """A product option chosen by the buyer, e.g. size 42 or colour red."""

    name: str
    value: str


@attrs.frozen
class Discount:
    """A discount or coupon applied to the order or to one line."""

    amount: Decimal = attrs.field(converter=_dec)
    code: str | None = None
    description: str | None = None
    line_key: str | None = None


@attrs.frozen
class LineItem:
    """One order line."""

    line_key: str
    sku: str | None
    name: str
    quantity: int
    unit_price: Decimal = attrs.field(converter=_dec)
    discount: Decimal = attrs.field(default=Decimal("0"), converter=_dec)
    image_url: str | None = None
    weight: Weight | None = None
    options: tuple[ItemOption, ...] = attrs.field(default=(), converter=_options)
    warehouse_location: str | None = None
    brand: str | None = None
    marketplace_product_id: str | None = None
    ean: str | None = None
    upc: str | None = None

    def total(self) -> Decimal:
        """Line total after the line discount."""
        return self.unit_price * self.quantity - self.discount


@attrs.frozen
class Order:
    """The canonical order: one marketplace order, whatever the marketplace.

    ``(store, order_key)`` is the idempotency key of the order book.
    ``raw`` keeps the validated marketplace payload for audit and re-mapping.
    ``flags`` marks anomalies found while mapping (e.g. ``totals_mismatch``).
    """

    store: str
    marketplace: str
    order_key: str
    order_number: str
    order_date: datetime = attrs.field(converter=_utc)
    status: OrderStatus = attrs.field(converter=OrderStatus)
    marketplace_status: MarketplaceStatus
    ship_to: Address
    currency: str
    items: tuple[LineItem, ...] = attrs.field(converter=_line_items)
    total: Decimal = attrs.field(converter=_dec)
    site: str | None = None
    modified_date: datetime | None = attrs.field(default=None, converter=_opt_utc)
    customer: Customer = Customer()
    bill_to: Address | None = None
    pickup_point: PickupPoint | None = None
    item_total: Decimal = attrs.field(default=Decimal("0"), converter=_dec)
    shipping_amount: Decimal = attrs.field(default=Decimal("0"), converter=_dec)
    payment_fee: Decimal = attrs.field(default=Decimal("0"), converter=_dec)
    tax_amount: Decimal | None = attrs.field(default=None, converter=_opt_dec)
    discounts: tuple[Discount, ...] = attrs.field(default=(), converter=_discounts)
    requested_shipping_service: str | None = None
    payment_method: str | None = None
    gift: bool = False
    gift_message: str | None = None
    customer_notes: str | None = None
    internal_notes: str | None = None
    total_weight: Weight | None = None
    flags: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    raw: dict[str, Any] = attrs.field(factory=dict, eq=True, repr=False)

    def discount_total(self) -> Decimal:
        """Sum of all discounts."""
        return sum((d.amount for d in self.discounts), Decimal("0"))


@attrs.frozen
class ShipmentItem:
    """Which line, and how many of it, a (partial) shipment carries."""

    line_key: str
    quantity: int


@attrs.frozen
class Shipment:
    """A shipment recorded by the host, to be pushed back to the marketplace."""

    store: str
    order_key: str
    tracking_number: str
    ship_date: datetime = attrs.field(converter=_utc)
    carrier: str | None = None
    service: str | None = None
    carrier_fee: Decimal | None = attrs.field(default=None, converter=_opt_dec)
    notes_to_buyer: str | None = None
    notify_customer: bool = True
    items: tuple[ShipmentItem, ...] = attrs.field(default=(), converter=_shipment_items)
    shipment_id: str | None = None


@attrs.frozen
class FieldResult:
    """What the marketplace did with one shipment field."""

    field: str
    outcome: FieldOutcome = attrs.field(converter=FieldOutcome)
    detail: str | None = None


@attrs.frozen
class PushResult:
    """The answer of ``push_shipment``: accepted or not, field by field.

    ``already_applied`` is true when the marketplace already had this shipment
    (a re-push after a crash): not an error, nothing was doubled.
    """

    accepted: bool
    fields: tuple[FieldResult, ...] = attrs.field(converter=_field_results)
    already_applied: bool = False
    message: str | None = None
    marketplace_status: MarketplaceStatus | None = None
    """The order's status on the marketplace after the push, when the plugin knows it (the host then
    shows it at once, without waiting for the next sync)."""

    def outcome(self, field: str) -> FieldOutcome | None:
        """The outcome of ``field``, or ``None`` when it was not reported."""
        for f in self.fields:
            if f.field == field:
                return f.outcome
        return None


@attrs.frozen
class Capability:
    """One row of a plugin's capability table."""

    feature: str
    support: Support = attrs.field(converter=Support)
    note: str = ""


@attrs.frozen
class QuotaModel:
    """How a marketplace counts requests, so that a quota answer blocks the right account for the right time.

    ``partner_setting`` names the store setting that identifies the account
    the quota belongs to (stores sharing it share the quota). The window is
    ``window_seconds`` long; ``aligned`` windows reset on multiples of it
    (3600: every clock hour), others that long after the quota answer. A
    quota answer that says when to come back (``retry_after``) wins.
    ``requests_setting`` names an optional setting giving the window's size,
    when the marketplace does not publish it.
    """

    partner_setting: str
    window_seconds: int = 3600
    aligned: bool = True
    requests_setting: str | None = None


@attrs.frozen
class MarketplaceInfo:
    """How a marketplace plugin describes itself (the ``marketplace_info`` hook).

    ``settings_schema`` is a JSON Schema for a store's settings; secret fields
    carry ``"x-secret": true``. ``statuses`` maps every marketplace status code
    the plugin knows to its human name. ``raw_schema`` is the JSON Schema that
    raw payloads are validated against (compiled once by the host).
    """

    name: str
    version: str
    title: str
    settings_schema: dict[str, Any] = attrs.field(repr=False)
    capabilities: tuple[Capability, ...] = attrs.field(default=(), converter=_capabilities)
    statuses: dict[str, str] = attrs.field(factory=dict)
    raw_schema: dict[str, Any] | None = attrs.field(default=None, repr=False)
    description: str = ""
    quota: QuotaModel | None = None
    """How its quota is counted; ``None``: a quota answer blocks the store's marketplace calls for an hour."""


@attrs.frozen
class ConnectResult:
    """What ``connect`` reports: who was connected (never a secret)."""

    account: str
    details: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class RawOrder:
    """One marketplace payload as fetched, not yet mapped.

    ``order_key`` is the marketplace's id (site-qualified where ids are per
    site); ``payload`` is the JSON form of the marketplace document.
    """

    order_key: str
    payload: dict[str, Any] = attrs.field(repr=False)
    site: str | None = None


@attrs.frozen
class RawReject:
    """A payload the plugin could not even turn into a document (e.g. broken XML)."""

    reason: str
    stage: str = "parse"
    order_key: str | None = None
    payload: str | None = attrs.field(default=None, repr=False)
    path: str | None = None


@attrs.frozen
class FetchPage:
    """One page of ``fetch_orders``: orders, rejects, and the cursor they bring.

    ``cursor`` is the plugin's opaque resume point (JSON-able) once every order
    before it has been yielded; ``None`` means "no new cursor yet". The host
    saves a cursor in the same transaction as the orders of its page.
    ``failure`` says, in one line, that part of the marketplace's answer
    could not be read (e.g. one site's document is malformed): the sync
    stores the page, reports the failure and ends with a non-zero status.
    """

    orders: tuple[RawOrder, ...] = attrs.field(default=(), converter=_raw_orders)
    rejects: tuple[RawReject, ...] = attrs.field(default=(), converter=_raw_rejects)
    cursor: Any = None
    failure: str | None = None


@attrs.frozen
class StatusChange:
    """The answer of ``accept_order`` / ``cancel_order``."""

    order_key: str
    marketplace_status: MarketplaceStatus
    already_applied: bool = False


@attrs.frozen
class CatalogueEntry:
    """A product of the host-side catalogue, keyed by SKU."""

    sku: str
    name: str | None = None
    weight: Weight | None = None
    warehouse_location: str | None = None
    image_url: str | None = None
    ean: str | None = None
    upc: str | None = None


# -- JSON ----------------------------------------------------------------------

converter = cattrs.Converter(forbid_extra_keys=True)
converter.register_unstructure_hook(Decimal, str)
converter.register_structure_hook(Decimal, lambda v, _: _dec(v))
converter.register_unstructure_hook(datetime, lambda d: utc_iso(_utc(d)))
converter.register_structure_hook(datetime, lambda v, _: _utc(datetime.fromisoformat(v)))
converter.register_unstructure_hook(dict, lambda d: d)  # raw payloads pass through untouched
converter.register_unstructure_hook_func(lambda t: isinstance(t, type) and issubclass(t, enum.Enum), lambda e: e.value)


def to_json(value: Any) -> dict[str, Any]:
    """The lossless JSON form of a canonical value (plain dicts, lists, strings)."""
    if type(value) is Order and _FAST_ORDER_JSON:
        return _order_json(value)
    result: dict[str, Any] = converter.unstructure(value)
    return result


# -- the JSON form of an Order, by hand ------------------------------------------
# Every imported order is turned into JSON (canonical validation, the order book's columns); cattrs'
# generic path costs about 50 µs per order, this one a fraction of it. The output is exactly cattrs'
# (tests/core compares both); if a class gains or loses a field, to_json falls back to cattrs.


def _iso_z(value: datetime) -> str:  # an Order's dates are aware UTC (its converters see to it): utc_iso's form
    return value.isoformat().replace("+00:00", "Z") if value.tzinfo is UTC else utc_iso(_utc(value))


def _address_json(a: Address) -> dict[str, Any]:
    return {
        "name": a.name,
        "company": a.company,
        "street1": a.street1,
        "street2": a.street2,
        "street3": a.street3,
        "city": a.city,
        "state": a.state,
        "postal_code": a.postal_code,
        "country": a.country,
        "phone": a.phone,
        "email": a.email,
    }


def _weight_json(w: Weight | None) -> dict[str, Any] | None:
    return None if w is None else {"value": str(w.value), "unit": w.unit}


def _item_json(i: LineItem) -> dict[str, Any]:
    return {
        "line_key": i.line_key,
        "sku": i.sku,
        "name": i.name,
        "quantity": i.quantity,
        "unit_price": str(i.unit_price),
        "discount": str(i.discount),
        "image_url": i.image_url,
        "weight": _weight_json(i.weight),
        "options": [{"name": o.name, "value": o.value} for o in i.options],
        "warehouse_location": i.warehouse_location,
        "brand": i.brand,
        "marketplace_product_id": i.marketplace_product_id,
        "ean": i.ean,
        "upc": i.upc,
    }


def _order_json(o: Order) -> dict[str, Any]:
    pickup = o.pickup_point
    customer = o.customer
    return {
        "store": o.store,
        "marketplace": o.marketplace,
        "order_key": o.order_key,
        "order_number": o.order_number,
        "order_date": _iso_z(o.order_date),
        "status": o.status,
        "marketplace_status": {"code": o.marketplace_status.code, "name": o.marketplace_status.name},
        "ship_to": _address_json(o.ship_to),
        "currency": o.currency,
        "items": [_item_json(i) for i in o.items],
        "total": str(o.total),
        "site": o.site,
        "modified_date": None if o.modified_date is None else _iso_z(o.modified_date),
        "customer": {
            "name": customer.name,
            "company": customer.company,
            "email": customer.email,
            "phone": customer.phone,
        },
        "bill_to": None if o.bill_to is None else _address_json(o.bill_to),
        "pickup_point": None
        if pickup is None
        else {
            "id": pickup.id,
            "type": pickup.type,
            "name": pickup.name,
            "address": None if pickup.address is None else _address_json(pickup.address),
        },
        "item_total": str(o.item_total),
        "shipping_amount": str(o.shipping_amount),
        "payment_fee": str(o.payment_fee),
        "tax_amount": None if o.tax_amount is None else str(o.tax_amount),
        "discounts": [
            {"amount": str(d.amount), "code": d.code, "description": d.description, "line_key": d.line_key}
            for d in o.discounts
        ],
        "requested_shipping_service": o.requested_shipping_service,
        "payment_method": o.payment_method,
        "gift": o.gift,
        "gift_message": o.gift_message,
        "customer_notes": o.customer_notes,
        "internal_notes": o.internal_notes,
        "total_weight": _weight_json(o.total_weight),
        "flags": list(o.flags),
        "raw": dict(o.raw),
    }


def _fields_match() -> bool:
    """Whether the hand-written JSON form still covers exactly the fields of every class it writes."""
    expected: dict[type, str] = {
        Address: "name company street1 street2 street3 city state postal_code country phone email",
        Weight: "value unit",
        ItemOption: "name value",
        LineItem: "line_key sku name quantity unit_price discount image_url weight options warehouse_location"
        " brand marketplace_product_id ean upc",
        Customer: "name company email phone",
        MarketplaceStatus: "code name",
        PickupPoint: "id type name address",
        Discount: "amount code description line_key",
        Order: "store marketplace order_key order_number order_date status marketplace_status ship_to currency"
        " items total site modified_date customer bill_to pickup_point item_total shipping_amount payment_fee"
        " tax_amount discounts requested_shipping_service payment_method gift gift_message customer_notes"
        " internal_notes total_weight flags raw",
    }
    return all(tuple(f.name for f in attrs.fields(cls)) == tuple(names.split()) for cls, names in expected.items())


_FAST_ORDER_JSON = _fields_match()


def from_json(data: Any, cls: type[T]) -> T:
    """Rebuild a canonical value from :func:`to_json` output."""
    return converter.structure(data, cls)
