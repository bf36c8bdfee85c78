"""Spartoo order document (JSON form of one ``<order>``) -> canonical :class:`Order`.

Field by field:

* identity: ``order_key`` = ``"<site>:<orders_id>"``, ``order_number`` =
  ``orders_id``, ``site``; ``date_purchased`` / ``last_modified`` read in the
  store's time zone (decision 5) and turned into aware UTC. A wall-clock time
  that occurs twice (autumn DST change) is read as the first occurrence; one
  that does not exist (spring gap) is read with the offset in force before
  the gap (``zoneinfo``'s ``fold=0``).
* buyer: ``customers_*`` give the customer (name, company, e-mail, phone)
  and the billing address (Spartoo's only billing-type address).
* shipping: ``delivery_*`` give the shipping address. A pick-up point
  delivery (``relay_info``) sets :attr:`Order.pickup_point`, and the
  ship-to becomes the relay's address with the buyer's name on it (the parcel
  goes to the relay, the buyer collects it); when the relay address is
  unusable the ``delivery_*`` fields are used. Spartoo gives no delivery
  phone or e-mail: the buyer's are copied onto the ship-to for carriers. No
  usable address -> :class:`MappingError` (the order is quarantined).
* countries: names (French or English) or codes -> ISO 3166-1 alpha-2.
* money: ``Decimal`` in the site's currency. Per line, ``products_price_unit``
  is the unit price and ``products_price_unit_with_reduce`` the price paid;
  their difference times the quantity is the line's discount (also listed in
  :attr:`Order.discounts`). ``shipping_price`` and ``payment_price`` (the
  payment fee) are added; the sum is compared with ``order_total`` and a
  difference over one cent flags ``totals_mismatch``. A reduced price above
  the unit price flags ``reduced_price_above_unit`` (no negative discount).
* items: sku = ``products_size_reference`` else ``products_reference``;
  options ``size`` and ``colour``; brand; ``products_spartoo`` as the
  marketplace product id.
* ``shipping_name`` is the requested shipping service, ``payment_method``
  the payment method. ``errors/error`` entries flag ``marketplace_errors``.

Any unreadable value raises :class:`MappingError` with its JSON path; no
other exception type leaves :func:`map_order_document`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

import pycountry

from connector_core.errors import MappingError
from connector_core.models import (
    Address,
    Customer,
    Discount,
    ItemOption,
    LineItem,
    MarketplaceStatus,
    Order,
    OrderStatus,
    PickupPoint,
)
from connector_spartoo.settings import SITE_CURRENCY

#: Spartoo order statuses: code -> English name (Spartoo's code list).
STATUS_NAMES: dict[str, str] = {
    "11": "Order Verified",
    "2": "Preparation in progress",
    "3": "Order Shipped",
    "41": "Cancellation Confirmed",
    "45": "Parcel Lost",
    "47": "Parcel not delivered, returned to Spartoo",
}

#: Default Spartoo -> canonical status mapping (a store's own mapping wins).
DEFAULT_STATUS_MAP: dict[str, str] = {
    "11": OrderStatus.PENDING_FULFILLMENT.value,
    "2": OrderStatus.AWAITING_SHIPMENT.value,
    "3": OrderStatus.SHIPPED.value,
    "41": OrderStatus.CANCELLED.value,
    "45": OrderStatus.ON_HOLD.value,
    "47": OrderStatus.ON_HOLD.value,
}

#: Country names that pycountry does not know (French names, common variants), lower-case.
COUNTRY_ALIASES: dict[str, str] = {
    "france": "FR",
    "france métropolitaine": "FR",
    "italie": "IT",
    "espagne": "ES",
    "allemagne": "DE",
    "royaume-uni": "GB",
    "royaume uni": "GB",
    "angleterre": "GB",
    "uk": "GB",
    "great britain": "GB",
    "england": "GB",
    "suède": "SE",
    "suede": "SE",
    "pologne": "PL",
    "croatie": "HR",
    "suisse": "CH",
    "belgique": "BE",
    "pays-bas": "NL",
    "pays bas": "NL",
    "hollande": "NL",
    "autriche": "AT",
    "portugal": "PT",
    "irlande": "IE",
    "danemark": "DK",
    "finlande": "FI",
    "grèce": "GR",
    "grece": "GR",
    "république tchèque": "CZ",
    "tchéquie": "CZ",
    "czech republic": "CZ",
    "slovaquie": "SK",
    "hongrie": "HU",
    "roumanie": "RO",
    "bulgarie": "BG",
    "norvège": "NO",
    "norvege": "NO",
    "luxembourg": "LU",
    "monaco": "MC",
    "slovénie": "SI",
    "lituanie": "LT",
    "lettonie": "LV",
    "estonie": "EE",
    "chypre": "CY",
    "malte": "MT",
    "états-unis": "US",
    "etats-unis": "US",
    "deutschland": "DE",
    "italia": "IT",
    "españa": "ES",
    "sverige": "SE",
    "polska": "PL",
    "hrvatska": "HR",
    "schweiz": "CH",
}

_CENT = Decimal("0.01")
_ZERO = Decimal("0")


def normalise_country(value: str | None) -> str | None:
    """A country name (French or English) or code -> ISO 3166-1 alpha-2; ``None`` if unknown or empty."""
    if value is None:
        return None
    return _country(value)


@functools.lru_cache(maxsize=4096)
def _country(value: str) -> str | None:
    # every order names two or three countries, from a small set: looked up once each
    text = " ".join(value.split())
    if not text:
        return None
    alias = COUNTRY_ALIASES.get(text.lower())
    if alias:
        return alias
    if len(text) == 2 and text.upper() == "UK":
        return "GB"
    try:
        country = pycountry.countries.lookup(text)
    except LookupError:
        return None
    return str(country.alpha_2)


_DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d:%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d", "%d/%m/%Y %H:%M:%S")


_USUAL_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")


def _fast_date(text: str) -> datetime | None:
    # The sandbox's and Spartoo's usual shape, YYYY-MM-DD HH:MM:SS, without strptime (hot path).
    if not _USUAL_DATE.fullmatch(text):
        return None
    try:  # that shape, digits checked, is ISO 8601 with a space: fromisoformat reads it in C
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def parse_date(value: str, zone: ZoneInfo) -> datetime:
    """Read a Spartoo date (``YYYY-MM-DD HH:MM:SS`` or ISO 8601) as aware UTC.

    A date without an offset is read in ``zone``; raises ``ValueError`` when unreadable.
    """
    text = value.strip()
    parsed: datetime | None = _fast_date(text)
    for fmt in () if parsed is not None else _DATE_FORMATS:
        try:
            parsed = datetime.strptime(text, fmt)
            break
        except ValueError:
            continue
    if parsed is None:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone, fold=0)
    return parsed.astimezone(UTC)


_MONEY = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")
MAX_AMOUNT = Decimal("1000000000")
"""An amount at or above this (a billion in the site's currency) is no real price: the order is quarantined."""
_SHORT_AMOUNT = len(str(int(MAX_AMOUNT)))
MAX_QUANTITY = 1_000_000
"""A products_qty above this is no real order line: the order is quarantined."""


def parse_money(value: str) -> Decimal:
    """Read a price such as ``12.50``, ``12,50`` or ``1 234,50``; raises ``ValueError`` when unreadable."""
    if _MONEY.fullmatch(value):  # the usual shape: nothing to clean
        # a text no longer than MAX_AMOUNT's digits less one is below it: nothing to check
        return Decimal(value) if len(value) < _SHORT_AMOUNT else _plausible(Decimal(value), value)
    text = value.strip().replace("\u00a0", "").replace("\u202f", "").replace(" ", "")
    if re.fullmatch(r"-?[0-9]{1,3},[0-9]{3}", text):
        raise ValueError(f"{value!r} is ambiguous: a thousands separator or a decimal comma")
    if "," in text and "." in text:
        text = text.replace(",", "") if text.rfind(".") > text.rfind(",") else text.replace(".", "").replace(",", ".")
    elif "," in text:
        text = text.replace(",", ".")
    if not _MONEY.match(text):
        raise ValueError(f"{value!r} is not an amount")
    try:
        return _plausible(Decimal(text), value)
    except InvalidOperation:  # pragma: no cover - the pattern already rules it out
        raise ValueError(f"{value!r} is not an amount") from None


def _plausible(amount: Decimal, value: str) -> Decimal:
    """``amount`` if it is finite and below :data:`MAX_AMOUNT` in size; ``ValueError`` otherwise."""
    if not amount.is_finite() or abs(amount) >= MAX_AMOUNT:
        raise ValueError(f"{value[:40]!r} is beyond any plausible amount (at most {MAX_AMOUNT:,})")
    return amount


class _Doc:
    """Typed access to the JSON form of one order, every failure a MappingError with its path."""

    def __init__(self, raw: Mapping[str, Any], order_key: str | None) -> None:
        self.raw = raw
        self.order_key = order_key

    def fail(self, message: str, path: str) -> MappingError:
        return MappingError(message, path=path, order_key=self.order_key)

    def obj(self, parent: Mapping[str, Any] | None, key: str, path: str) -> Mapping[str, Any] | None:
        if parent is None:
            return None
        value = parent.get(key)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise self.fail(f"{key} should hold elements, not {type(value).__name__}", f"{path}.{key}")
        return value

    def text(self, parent: Mapping[str, Any] | None, key: str, path: str) -> str | None:
        if parent is None:
            return None
        value = parent.get(key)
        if value is None:
            return None
        if type(value) is not str and not isinstance(value, str):
            raise self.fail(f"{key} should be text, not {type(value).__name__}", f"{path}.{key}")
        return value.strip() or None

    def texts(self, parent: Mapping[str, Any] | None, keys: tuple[str, ...], path: str) -> list[str | None]:
        """:meth:`text` of each of ``keys``, in one pass (the hot path: most fields of an order)."""
        if parent is None:
            return [None] * len(keys)
        get = parent.get
        out: list[str | None] = []
        for key in keys:
            value = get(key)
            if value is None:
                out.append(None)
            elif type(value) is str:
                out.append(value.strip() or None)
            else:  # a str subclass, or a value of the wrong type: text() reads it or raises with its path
                out.append(self.text(parent, key, path))
        return out

    def amount(self, text: str | None, key: str, path: str, *, required: bool = False) -> Decimal | None:
        """The amount in ``text`` (the value of ``key``, read with :meth:`texts`), a MappingError if unreadable."""
        if text is None:
            if required:
                raise self.fail(f"{key} is missing", f"{path}.{key}")
            return None
        try:
            amount = parse_money(text)
        except ValueError as exc:
            reason = next((r for r in ("beyond any plausible amount", "ambiguous") if r in str(exc)), "not an amount")
            raise self.fail(f"{key} {text[:40]!r} is {reason}", f"{path}.{key}") from None
        if amount < 0:
            raise self.fail(f"{key} {text[:40]!r} is negative: Spartoo prices are never below zero", f"{path}.{key}")
        return amount


def _join(*parts: str | None) -> str | None:
    text = " ".join(p for p in parts if p)
    return text or None


def map_order_document(
    raw: Mapping[str, Any],
    *,
    store: str,
    site: str,
    zone: ZoneInfo,
    status_map: Mapping[str, str] | None = None,
) -> Order:
    """Map the JSON form of one Spartoo order to a canonical :class:`Order` (see the module docstring)."""
    order_id = raw.get("orders_id") if isinstance(raw, Mapping) else None
    order_key = f"{site}:{order_id}" if isinstance(order_id, str) and order_id.strip() else None
    doc = _Doc(raw if isinstance(raw, Mapping) else {}, order_key)
    try:
        return _map(doc, store=store, site=site, zone=zone, status_map=status_map or DEFAULT_STATUS_MAP)
    except MappingError:
        raise
    except Exception as exc:  # any surprise in a payload is that payload's problem, not the batch's
        raise MappingError(f"cannot map this Spartoo order: {exc}", path="$", order_key=order_key) from None


#: Address fields of a Spartoo prefix (customers_*, delivery_*), in the order _address reads them.
_ADDRESS_FIELDS = (
    "country",
    "firstname",
    "lastname",
    "company",
    "street_address",
    "suburb",
    "city",
    "state",
    "postcode",
)
_ADDRESS_KEYS: dict[str, tuple[str, ...]] = {
    prefix: tuple(f"{prefix}_{name}" for name in _ADDRESS_FIELDS) for prefix in ("customers", "delivery")
}


_CUSTOMER_KEYS = (
    "customers_email_address",
    "customers_telephone",
    "customers_firstname",
    "customers_lastname",
    "customers_company",
)
_PRODUCT_KEYS = (
    "products_qty",
    "products_price_unit",
    "products_price_unit_with_reduce",
    "products_size_reference",
    "products_reference",
    "products_size",
    "products_color",
    "products_name",
    "products_manufacturers",
    "products_spartoo",
)
#: Top-level fields read as text, in the order the mapping needs them.
_ORDER_KEYS = (
    "orders_status_id",
    "orders_status_name",
    "date_purchased",
    "last_modified",
    "shipping_price",
    "payment_price",
    "order_total",
    "shipping_name",
    "payment_method",
)


def _address(
    doc: _Doc,
    node: Mapping[str, Any] | None,
    prefix: str,
    path: str,
    *,
    phone: str | None = None,
    email: str | None = None,
) -> Address:
    country_text, first, last, company, street1, street2, city, state, postcode = doc.texts(
        node, _ADDRESS_KEYS[prefix], path
    )
    country = normalise_country(country_text)
    if country_text and country is None:
        raise doc.fail(f"unknown country {country_text!r}", f"{path}.{prefix}_country")
    return Address(
        name=_join(first, last),
        company=company,
        street1=street1,
        street2=street2,
        city=city,
        state=state,
        postal_code=postcode,
        country=country,
        phone=phone,
        email=email,
    )


def _map(doc: _Doc, *, store: str, site: str, zone: ZoneInfo, status_map: Mapping[str, str]) -> Order:
    raw = doc.raw
    flags: list[str] = []
    order_id = doc.text(raw, "orders_id", "$")
    if order_id is None:
        raise doc.fail("orders_id is missing", "$.orders_id")

    # buyer and billing address
    cust = doc.obj(raw, "customers", "$")
    cpath = "$.customers"
    email, phone, first, last, company = doc.texts(cust, _CUSTOMER_KEYS, cpath)
    buyer_name = _join(first, last)
    customer = Customer(name=buyer_name, company=company, email=email, phone=phone)
    bill_to = None
    if cust is not None:
        bill_to = _address(doc, cust, "customers", cpath, phone=phone, email=email)

    # shipping address and pick-up point
    dpath = "$.delivery"
    delivery = doc.obj(raw, "delivery", "$")
    home = _address(doc, delivery, "delivery", dpath) if delivery is not None else Address()
    recipient = home.name or buyer_name
    pickup: PickupPoint | None = None
    relay = doc.obj(delivery, "relay_info", dpath)
    ship_to, ship_name, ship_company = home, home.name or recipient, home.company
    if relay is not None:
        rpath = f"{dpath}.relay_info"
        relay_country_text = doc.text(relay, "relay_country_iso", rpath)
        relay_country = normalise_country(relay_country_text)
        if relay_country_text and relay_country is None:
            raise doc.fail(f"unknown country {relay_country_text!r}", f"{rpath}.relay_country_iso")
        relay_name = doc.text(relay, "relay_name", rpath)
        relay_address = Address(
            name=relay_name,
            street1=doc.text(relay, "relay_address", rpath),
            city=doc.text(relay, "relay_city", rpath),
            postal_code=doc.text(relay, "relay_postcode", rpath),
            country=relay_country,
        )
        relay_id = doc.text(relay, "relay_id", rpath)
        if relay_id is None:
            raise doc.fail("a pick-up point delivery without relay_id", f"{rpath}.relay_id")
        pickup = PickupPoint(
            id=relay_id, type=doc.text(relay, "relay_type", rpath), name=relay_name, address=relay_address
        )
        if relay_address.is_usable():
            ship_to, ship_name, ship_company = relay_address, recipient, relay_name
    ship_to = Address(
        name=ship_name,
        company=ship_company,
        street1=ship_to.street1,
        street2=ship_to.street2,
        street3=ship_to.street3,
        city=ship_to.city,
        state=ship_to.state,
        postal_code=ship_to.postal_code,
        country=ship_to.country,
        phone=phone,
        email=email,
    )
    if not ship_to.is_usable():
        missing = [
            n for n, v in (("street", ship_to.street1), ("city", ship_to.city), ("country", ship_to.country)) if not v
        ]
        raise doc.fail(f"order has no usable shipping address (missing {', '.join(missing)})", dpath)

    # status and dates
    code, status_name, purchased, modified_text, shipping_text, fee_text, total_text, service, method = doc.texts(
        raw, _ORDER_KEYS, "$"
    )
    if code is None:
        raise doc.fail("orders_status_id is missing", "$.orders_status_id")
    status_name = status_name or STATUS_NAMES.get(code)
    status = status_map.get(code) or DEFAULT_STATUS_MAP.get(code) or OrderStatus.ON_HOLD.value
    if purchased is None:
        raise doc.fail("date_purchased is missing", "$.date_purchased")
    order_date = _date(doc, purchased, zone, "$.date_purchased")
    modified = _date(doc, modified_text, zone, "$.last_modified") if modified_text else None

    # lines
    products = doc.obj(raw, "products", "$")
    plist = products.get("product") if products is not None else None
    if not isinstance(plist, list) or not plist:
        raise doc.fail("order has no products", "$.products.product")
    items: list[LineItem] = []
    discounts: list[Discount] = []
    for i, prod in enumerate(plist):
        ppath = f"$.products.product[{i}]"
        if not isinstance(prod, Mapping):
            raise doc.fail("a product should hold elements", ppath)
        qty_text, unit_text, reduced_text, size_ref, ref, size, colour, name, brand, product_id = doc.texts(
            prod, _PRODUCT_KEYS, ppath
        )
        try:
            qty = int(qty_text or "")
        except ValueError:
            raise doc.fail(f"products_qty {qty_text!r} is not a whole number", f"{ppath}.products_qty") from None
        if qty < 1:
            raise doc.fail(f"products_qty {qty} is not a positive quantity", f"{ppath}.products_qty")
        if qty > MAX_QUANTITY:
            raise doc.fail(
                f"products_qty {str(qty)[:30]} is beyond any plausible quantity (at most {MAX_QUANTITY:,}): "
                "check the order on Spartoo",
                f"{ppath}.products_qty",
            )
        unit = doc.amount(unit_text, "products_price_unit", ppath, required=True)
        assert unit is not None
        reduced = doc.amount(reduced_text, "products_price_unit_with_reduce", ppath)
        line_discount = _ZERO
        if reduced is not None and reduced < unit:
            line_discount = (unit - reduced) * qty
        elif reduced is not None and reduced > unit:
            flags.append("reduced_price_above_unit")
        line_key = str(i + 1)
        sku = size_ref or ref
        options: tuple[ItemOption, ...] = ()
        if size:
            options = (ItemOption("size", size),)
        if colour:
            options = (*options, ItemOption("colour", colour))
        items.append(
            LineItem(
                line_key=line_key,
                sku=sku,
                name=name or sku or f"Spartoo product {i + 1}",
                quantity=qty,
                unit_price=unit,
                discount=line_discount,
                options=options,
                brand=brand,
                marketplace_product_id=product_id,
            )
        )
        if line_discount:
            discounts.append(Discount(amount=line_discount, description="Spartoo reduced price", line_key=line_key))

    # totals
    item_total = sum((line.total() for line in items), _ZERO)
    shipping = doc.amount(shipping_text, "shipping_price", "$") or _ZERO
    fee = doc.amount(fee_text, "payment_price", "$") or _ZERO
    computed = item_total + shipping + fee
    total = doc.amount(total_text, "order_total", "$")
    if total is None:
        total = computed
        flags.append("total_missing")
    elif abs(total - computed) > _CENT:
        flags.append("totals_mismatch")
    errors = doc.obj(raw, "errors", "$")
    if errors is not None and errors.get("error"):
        flags.append("marketplace_errors")

    return Order(
        store=store,
        marketplace="spartoo",
        order_key=f"{site}:{order_id}",
        order_number=order_id,
        order_date=order_date,
        modified_date=modified,
        status=status,
        marketplace_status=MarketplaceStatus(code=code, name=status_name),
        ship_to=ship_to,
        bill_to=bill_to,
        pickup_point=pickup,
        customer=customer,
        currency=SITE_CURRENCY.get(site, "EUR"),
        items=tuple(items),
        item_total=item_total,
        shipping_amount=shipping,
        payment_fee=fee,
        discounts=tuple(discounts),
        total=total,
        site=site,
        requested_shipping_service=service,
        payment_method=method,
        flags=tuple(dict.fromkeys(flags)),
        raw=dict(raw),
    )


def _date(doc: _Doc, text: str, zone: ZoneInfo, path: str) -> datetime:
    try:
        return parse_date(text, zone)
    except ValueError:
        raise doc.fail(f"{text!r} is not a date", path) from None
