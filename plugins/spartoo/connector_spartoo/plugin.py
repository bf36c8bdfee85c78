"""Spartoo hook implementations: the ``spartoo`` entry point of ``connector_core``.

Cursor of :func:`fetch_orders`: a dict ``{site: "<ISO UTC timestamp>"}``,
per site the moment the last *complete* export of that site was requested.
The next export asks for ``date`` = that moment minus :data:`SAFETY_OVERLAP`
(Spartoo has no pagination and its time zone is not documented, so a window
that overlaps the previous one is the safe reading; import is idempotent so
the overlap costs nothing but bandwidth). A site never synced looks back
``initial_lookback_days`` (setting, default 30).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from connector_core import hookimpl
from connector_core.errors import MarketplaceError, TransitionError
from connector_core.models import (
    Capability,
    CatalogueEntry,
    ConnectResult,
    FetchPage,
    FieldOutcome,
    FieldResult,
    MarketplaceInfo,
    MarketplaceStatus,
    Order,
    PushResult,
    QuotaModel,
    RawOrder,
    RawReject,
    Shipment,
    StatusChange,
)
from connector_core.store_context import StoreContext
from connector_core.testing.profile import ContractProfile
from connector_spartoo import __version__
from connector_spartoo.client import SpartooClient
from connector_spartoo.mapping import DEFAULT_STATUS_MAP, STATUS_NAMES, map_order_document
from connector_spartoo.sandbox.hooks import register_commands, sandbox_factory  # noqa: F401  (decision 7)
from connector_spartoo.schemas import load_schema
from connector_spartoo.settings import SpartooSettings, settings_schema

#: How far before the cursor each export starts again.
SAFETY_OVERLAP = timedelta(minutes=10)
#: Orders (and rejects) per :class:`FetchPage`.
PAGE_SIZE = 500

KEPT_IN_HOST = "Spartoo has no field for it; kept in the host"

#: The seed's feature table, feature by feature, for Spartoo.
CAPABILITIES: tuple[Capability, ...] = (
    Capability("connect", "supported", "partner ID sent as `partenaire`; -1/-2 give the 'could not authorise' error"),
    Capability(
        "import_only_with_shipping_address", "supported", "orders without a usable delivery address are quarantined"
    ),
    Capability("store_branding", "supplied_by_host", "host-side store settings; Spartoo has no branding API"),
    Capability("notification_preferences", "supplied_by_host", "host-side store settings"),
    Capability("product_handling", "supplied_by_host", "host-side store settings and catalogue"),
    Capability("custom_status_mapping", "supported", "Spartoo codes 11/2/3/41/45/47; a store's own mapping wins"),
    Capability("customer_email", "supported", "customers_email_address"),
    Capability(
        "shipment_emails_to_customer",
        "supplied_by_host",
        "the host e-mails the buyer when the store says so; Spartoo also mails its own tracking link",
    ),
    Capability("customer_phone", "supported", "customers_telephone (Spartoo has no delivery phone)"),
    Capability("requested_shipping_service", "supported", "shipping_name"),
    Capability("payment_method", "supported", "payment_method, with payment_price as the payment fee"),
    Capability(
        "discounts",
        "supported",
        "per line: products_price_unit vs products_price_unit_with_reduce; Spartoo gives no coupon codes",
    ),
    Capability("gift", "not_offered", "Spartoo's order export has no gift flag or gift message"),
    Capability("internal_notes", "supplied_by_host", "notes kept in the host's order book"),
    Capability("customer_notes", "not_offered", "Spartoo's order export carries no buyer notes"),
    Capability("order_weight", "supplied_by_host", "summed from the host catalogue's item weights"),
    Capability("item_weight", "supplied_by_host", "host product catalogue (Spartoo gives no weight)"),
    Capability(
        "item_image_url", "supplied_by_host", "host catalogue, fillable from Spartoo's catalogue export (photos url1)"
    ),
    Capability("item_options", "supported", "products_size and products_color"),
    Capability("item_warehouse_location", "supplied_by_host", "host product catalogue"),
    Capability("shipment_status_update", "supported", "xml_maj_orders.php statut=3"),
    Capability("shipment_tracking_number", "supported", "tracking_number with statut=3"),
    Capability("shipment_carrier", "not_offered", f"{KEPT_IN_HOST}: the carrier is tied to the shipping method"),
    Capability("shipment_service", "not_offered", KEPT_IN_HOST),
    Capability("shipment_carrier_fee", "not_offered", KEPT_IN_HOST),
    Capability("shipment_notes_to_buyer", "not_offered", KEPT_IN_HOST),
)


_PARSED: dict[int, tuple[dict[str, Any], dict[str, Any], SpartooSettings]] = {}


def _settings(store: StoreContext) -> SpartooSettings:
    # Parsed once per settings dict (map_order and should_auto_accept run for every order): the cache
    # holds the dict itself (so its id cannot be reused) and a deep copy to notice in-place changes.
    hit = _PARSED.get(id(store.settings))
    if hit is not None and hit[0] is store.settings and hit[1] == store.settings:
        return hit[2]
    parsed = SpartooSettings.from_dict(store.settings)
    if len(_PARSED) >= 1024:
        _PARSED.clear()
    _PARSED[id(store.settings)] = (store.settings, copy.deepcopy(store.settings), parsed)
    return parsed


def _client(store: StoreContext) -> SpartooClient:
    return SpartooClient(_settings(store), store.http)


def _split_key(order: Order) -> tuple[str, str]:
    site, _, order_id = order.order_key.partition(":")
    return order.site or site, order_id or order.order_number


def _status(code: str) -> MarketplaceStatus:
    return MarketplaceStatus(code=code, name=STATUS_NAMES.get(code))


def _describe(code: str) -> str:
    name = STATUS_NAMES.get(code)
    return f"{code} ({name})" if name else code


@hookimpl
def marketplace_info() -> MarketplaceInfo:
    """Describe the Spartoo plugin: settings schema, order schema, statuses, capabilities."""
    return MarketplaceInfo(
        name="spartoo",
        version=__version__,
        title="Spartoo",
        settings_schema=settings_schema(),
        capabilities=CAPABILITIES,
        statuses=dict(STATUS_NAMES),
        raw_schema=load_schema("order"),
        description="Spartoo seller web service (XML over HTTPS, one host per country site).",
        # Spartoo counts requests per partner ID per clock hour and answers -429 past it; the size is not
        # published: when the operator sets requests_per_hour the host counts every request against it
        # (across processes), otherwise a -429 blocks the partner until the next clock hour
        quota=QuotaModel(
            partner_setting="partner_id", window_seconds=3600, aligned=True, requests_setting="requests_per_hour"
        ),
    )


@hookimpl
def connect(store: StoreContext) -> ConnectResult:
    """Check the partner ID on every configured site."""
    client = _client(store)
    settings = client.settings
    for site in settings.sites:
        client.check_auth(site)
    n = len(settings.sites)
    return ConnectResult(
        account=f"Spartoo ({n} site{'s' if n > 1 else ''}: {', '.join(settings.sites)})",
        details={"sites": list(settings.sites)},
    )


def _cursor_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


@hookimpl
def fetch_orders(store: StoreContext, since: Any) -> Iterator[FetchPage]:
    """Export each site's orders since its cursor (minus the overlap), in pages of ``PAGE_SIZE``."""
    return _fetch(store, since)


def _fetch(store: StoreContext, since: Any) -> Iterator[FetchPage]:
    client = _client(store)
    settings = client.settings
    cursor: dict[str, str] = {k: v for k, v in since.items() if isinstance(v, str)} if isinstance(since, dict) else {}
    for site in settings.sites:
        last = _cursor_time(cursor.get(site))
        start = last - SAFETY_OVERLAP if last else datetime.now(UTC) - timedelta(days=settings.initial_lookback_days)
        export = client.export_orders(site, start)
        orders: list[RawOrder] = []
        rejects: list[RawReject] = []
        for item in export:
            if isinstance(item, RawReject):
                rejects.append(item)
            else:
                orders.append(RawOrder(order_key=f"{site}:{item['orders_id']}", payload=item, site=site))
            if len(orders) + len(rejects) >= PAGE_SIZE:
                yield FetchPage(orders=orders, rejects=rejects)
                orders, rejects = [], []
        new_cursor = None
        failure = None
        if export.complete and export.started is not None:
            cursor[site] = _iso(export.started)
            new_cursor = dict(cursor)
        else:
            store.log.warning(
                "Spartoo %s: the export was not complete; the cursor of this site stays where it was", site
            )
            failure = (
                f"Spartoo site {site}: its order export could not be read to its end "
                f"({export.failure or 'incomplete'}); the orders before the fault are stored, the site's cursor "
                "stays, and the next sync asks again (if this repeats, Spartoo's export for this site is broken)"
            )
        yield FetchPage(orders=orders, rejects=rejects, cursor=new_cursor, failure=failure)


@hookimpl
def contract_profile() -> ContractProfile:
    """Exports re-ask :data:`SAFETY_OVERLAP` before the cursor on purpose; totals add up; no partial shipments."""
    return ContractProfile(refetch_overlap=SAFETY_OVERLAP, totals_add_up=True)


@hookimpl
def fetch_order(store: StoreContext, order_key: str) -> RawOrder | None:
    """Export one order again by its ``oID`` (``site:orders_id``); ``None`` if Spartoo does not return it."""
    site, _, order_id = order_key.partition(":")
    client = _client(store)
    if not order_id or site not in client.settings.sites:
        return None
    doc = client.get_order(site, order_id)
    return None if doc is None else RawOrder(order_key=order_key, payload=doc, site=site)


@hookimpl
def map_order(store: StoreContext, raw: RawOrder) -> Order:
    """Map one Spartoo order document to a canonical order."""
    settings = _settings(store)
    site = raw.site or raw.order_key.partition(":")[0]
    return map_order_document(raw.payload, store=store.name, site=site, zone=settings.zone, status_map=store.status_map)


@hookimpl
def map_status(store: StoreContext, marketplace_status: str) -> str | None:
    """Spartoo status code -> canonical status (a store's own mapping wins)."""
    code = str(marketplace_status).strip()
    return store.status_map.get(code) or DEFAULT_STATUS_MAP.get(code)


@hookimpl
def should_auto_accept(store: StoreContext, order: Order) -> bool:
    """Accept new (status 11) orders when the store's ``auto_accept`` is on."""
    return _settings(store).auto_accept and order.marketplace_status.code == "11"


def _current_code(client: SpartooClient, site: str, order_id: str, fallback: str) -> tuple[str, dict[str, Any] | None]:
    doc = client.get_order(site, order_id)
    if doc is None:
        return fallback, None
    code = doc.get("orders_status_id")
    return (code.strip() if isinstance(code, str) and code.strip() else fallback), doc


_ACCEPT_RULE = "only orders in status 11 (Order Verified) can be accepted"
_CANCEL_RULE = "a shipped or cancelled order cannot be cancelled"


def _change(order: Order, code: str, *, already_applied: bool = False) -> StatusChange:
    return StatusChange(order.order_key, _status(code), already_applied=already_applied)


def _send_status(client: SpartooClient, order: Order, target: str, verb: str, rule: str) -> StatusChange:
    """Send ``statut=target``; on a refusal, read the order back: already in ``target`` -> ``already_applied``."""
    site, order_id = _split_key(order)
    try:
        client.update_order(site, order_id, target)
    except TransitionError:
        current, _ = _current_code(client, site, order_id, order.marketplace_status.code)
        if current == target:
            return _change(order, target, already_applied=True)
        raise TransitionError(
            f"cannot {verb} Spartoo order {order.order_key}: Spartoo has it in status {_describe(current)}; {rule}",
            order_key=order.order_key,
        ) from None
    return _change(order, target)


@hookimpl
def accept_order(store: StoreContext, order: Order) -> StatusChange:
    """Accept an order (status 11 -> 2). Already 2: ``already_applied``; anything else: TransitionError."""
    client = _client(store)
    code = order.marketplace_status.code
    if code == "2":
        return _change(order, "2", already_applied=True)
    if code != "11":
        raise TransitionError(
            f"cannot accept Spartoo order {order.order_key}: it is in status {_describe(code)}; {_ACCEPT_RULE}",
            order_key=order.order_key,
        )
    return _send_status(client, order, "2", "accept", _ACCEPT_RULE)


@hookimpl
def cancel_order(store: StoreContext, order: Order, reason: str | None) -> StatusChange:
    """Cancel an order (status 41; the buyer is refunded by Spartoo). Not possible once shipped.

    Spartoo takes no reason: ``reason`` stays in the host only. Cancelling
    an order already cancelled returns ``already_applied`` (a repeated
    command changes nothing).
    """
    client = _client(store)
    code = order.marketplace_status.code
    if code == "41":
        return _change(order, "41", already_applied=True)
    if code == "3":
        raise TransitionError(
            f"cannot cancel Spartoo order {order.order_key}: it is already shipped (status 3); "
            "handle it as a return instead",
            order_key=order.order_key,
        )
    return _send_status(client, order, "41", "cancel", _CANCEL_RULE)


_TRACKING_KEYS = ("tracking_number", "orders_tracking_number", "tracking")


def _tracking_of(doc: dict[str, Any] | None) -> str | None:
    if not doc:
        return None
    for key in _TRACKING_KEYS:
        value = doc.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _unsupported_fields(shipment: Shipment) -> list[FieldResult]:
    out = []
    for name in ("carrier", "service", "carrier_fee", "notes_to_buyer"):
        value = getattr(shipment, name)
        if value is None or (isinstance(value, str) and not value.strip()):
            out.append(FieldResult(name, FieldOutcome.SKIPPED))
        else:
            out.append(FieldResult(name, FieldOutcome.UNSUPPORTED, KEPT_IN_HOST))
    return out


@hookimpl
def push_shipment(store: StoreContext, order: Order, shipment: Shipment) -> PushResult:
    """Mark the order shipped (status 3) with its tracking number; report every shipment field.

    The order's current status is read from Spartoo first, so a re-push is
    recognised: already shipped with the same tracking number (or with one
    Spartoo's export does not show) -> ``already_applied``; with a different
    tracking number -> :class:`TransitionError`. An order still in status 11
    is accepted first (Spartoo only ships from 2).
    """
    client = _client(store)
    site, order_id = _split_key(order)
    tracking = (shipment.tracking_number or "").strip()
    if not tracking:
        raise MarketplaceError(
            f"Spartoo needs a tracking number to mark order {order.order_key} shipped: add one to the shipment",
            order_key=order.order_key,
        )
    current, doc = _current_code(client, site, order_id, order.marketplace_status.code)
    other = _unsupported_fields(shipment)
    if current == "3":
        known = _tracking_of(doc)
        if known is not None and known != tracking:
            raise TransitionError(
                f"Spartoo order {order.order_key} is already shipped with tracking number {known}; "
                f"Spartoo cannot change it to {tracking}",
                order_key=order.order_key,
            )
        return PushResult(
            accepted=True,
            already_applied=True,
            fields=(
                FieldResult("status", FieldOutcome.SENT, "already 3 (Order Shipped) on Spartoo"),
                FieldResult("tracking_number", FieldOutcome.SENT, "already on Spartoo" if known else None),
                *other,
            ),
            message="already shipped on Spartoo; nothing sent again",
            marketplace_status=MarketplaceStatus("3", STATUS_NAMES.get("3")),
        )
    if current not in ("2", "11"):
        raise TransitionError(
            f"cannot ship Spartoo order {order.order_key}: it is in status {_describe(current)}; "
            "only accepted orders (status 2) can be shipped",
            order_key=order.order_key,
        )
    message = None
    if current == "11":
        client.update_order(site, order_id, "2")
        message = "the order was accepted (status 2) first: Spartoo only ships accepted orders"
    client.update_order(site, order_id, "3", tracking_number=tracking)
    return PushResult(
        accepted=True,
        fields=(
            FieldResult("status", FieldOutcome.SENT, "3 (Order Shipped)"),
            FieldResult("tracking_number", FieldOutcome.SENT),
            *other,
        ),
        message=message,
        marketplace_status=MarketplaceStatus("3", STATUS_NAMES.get("3")),
    )


def _catalogue_name(product: dict[str, Any]) -> str | None:
    for key in ("products_name", "name", "product_name"):
        value = product.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


@hookimpl
def fetch_catalogue(store: StoreContext) -> Iterator[CatalogueEntry]:
    """The seller's Spartoo catalogue: one entry per size reference (with EAN), plus one per parent reference.

    Order lines whose ``products_size_reference`` is empty use the parent
    ``products_reference`` as SKU, so the parent gets an entry too (name and
    first photo, no EAN: EANs exist per size only).
    """
    return _catalogue(store)


def _catalogue(store: StoreContext) -> Iterator[CatalogueEntry]:
    client = _client(store)
    settings = client.settings
    seen: set[str] = set()
    for site in settings.sites:
        for product in client.export_products(site):
            name = _catalogue_name(product)
            photos = product.get("photos")
            image = photos.get("url1") if isinstance(photos, dict) else None
            image = image if isinstance(image, str) else None
            size_list = product.get("size_list")
            sizes = _as_list(size_list.get("size")) if isinstance(size_list, dict) else []
            entries: list[tuple[str | None, str | None]] = []
            for size in sizes:
                if isinstance(size, dict):
                    ref, ean = size.get("size_reference"), size.get("ean")
                    entries.append((ref if isinstance(ref, str) else None, ean if isinstance(ean, str) else None))
            parent = product.get("products_reference")
            if isinstance(parent, str) and parent not in {ref for ref, _ in entries}:
                entries.append((parent, None))
            for sku, ean in entries:
                if not sku or sku in seen:
                    continue
                seen.add(sku)
                yield CatalogueEntry(sku=sku, name=name, image_url=image, ean=ean)
