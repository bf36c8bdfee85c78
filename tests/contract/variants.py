"""Deliberately broken variants of the Acme Bazaar plugin, each with one bug plugin authors really make."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from importlib import resources
from typing import Any

import attrs
import connector_acme_bazaar.client as acme_client
import connector_acme_bazaar.plugin as acme
from connector_acme_bazaar.client import call, check_answer
from connector_acme_bazaar.sandbox import AcmeSandbox

from connector_core import hookimpl
from connector_core.errors import AuthError, TransitionError
from connector_core.models import (
    Address,
    FetchPage,
    FieldOutcome,
    FieldResult,
    MarketplaceInfo,
    MarketplaceStatus,
    Order,
    PushResult,
    RawOrder,
    Shipment,
    StatusChange,
)
from connector_core.plugins import PluginHost
from connector_core.store_context import StoreContext
from connector_core.testing.profile import ContractProfile

HOOKS = (
    "marketplace_info",
    "connect",
    "fetch_orders",
    "map_order",
    "map_status",
    "should_auto_accept",
    "accept_order",
    "cancel_order",
    "push_shipment",
    "sandbox_factory",
    "contract_profile",
)
log = logging.getLogger("connector_acme_variant")


def acme_variant(**replaced: Callable[..., Any]) -> object:
    """The acme plugin's hooks as one plugin object, with ``replaced`` hooks swapped in."""
    hooks = {name: getattr(acme, name) for name in HOOKS}
    hooks.update({name: hookimpl(fn) for name, fn in replaced.items()})
    variant = type("AcmeVariant", (), {name: staticmethod(fn) for name, fn in hooks.items()})
    return variant()


def host_for(plugin: object) -> PluginHost:
    """A plugin host holding only ``plugin``."""
    return PluginHost.create(plugins=[plugin], load_entrypoints=False)


def _remap(store: StoreContext, raw: RawOrder, **changes: Any) -> Order:
    return attrs.evolve(acme.map_order(store=store, raw=raw), **changes)


# -- the first round: describing, connecting, fetching, mapping statuses, pushing ----------


def drops_shipping_address(store: StoreContext, raw: RawOrder) -> Order:
    """Maps every order, but loses the shipping address on the way."""
    fake = {"name": "x", "street": "x", "city": "x", "postcode": "0", "country": "FR"}
    order = acme.map_order(store=store, raw=attrs.evolve(raw, payload={**raw.payload, "shipping_address": fake}))
    return attrs.evolve(order, ship_to=Address(name=raw.payload["buyer"]["name"]))


def leaks_secret(store: StoreContext) -> Any:
    """Puts the refused client secret in the auth error."""
    try:
        return acme.connect(store=store)
    except AuthError:
        secret = store.settings["client_secret"]
        raise AuthError(f"Acme refused the secret {secret}: check the client_secret setting") from None


def unflagged_secret() -> MarketplaceInfo:
    """Forgets to flag the client secret as a secret."""
    info = acme.marketplace_info()
    schema = {
        **info.settings_schema,
        "properties": {**info.settings_schema["properties"], "client_secret": {"type": "string"}},
    }
    return attrs.evolve(info, settings_schema=schema)


def duplicates_keys(store: StoreContext, since: Any) -> Iterator[FetchPage]:
    """Yields every order twice."""
    for page in acme.fetch_orders(store=store, since=since):
        yield attrs.evolve(page, orders=page.orders + page.orders)


def partial_status_map(store: StoreContext, marketplace_status: str) -> str | None:
    """Forgets the cancelled status."""
    return (
        None
        if marketplace_status == "cancelled"
        else acme.map_status(store=store, marketplace_status=marketplace_status)
    )


def double_push(store: StoreContext, order: Order, shipment: Shipment) -> PushResult:
    """Pushes through Acme's add-a-parcel call, which adds one more parcel every time (and ignores lines)."""
    call(store, "POST", f"orders/{order.order_key}/parcels", data={"tracking_number": shipment.tracking_number})
    sent = [FieldResult("tracking_number", FieldOutcome.SENT), FieldResult("carrier", FieldOutcome.SENT)]
    unsupported = [FieldResult(f, FieldOutcome.UNSUPPORTED) for f in ("service", "carrier_fee", "notes_to_buyer")]
    return PushResult(accepted=True, fields=sent + unsupported)


# -- wrong values that look right ------------------------------------------------------------


def money_through_float(store: StoreContext, raw: RawOrder) -> Order:
    """Divides minor units as floats: ``Decimal(minor / 100)``."""
    p = raw.payload
    return _remap(store, raw, total=Decimal(p["total"] / 100), shipping_amount=Decimal(p["shipping_price"] / 100))


def cents_everywhere(store: StoreContext, raw: RawOrder) -> Order:
    """Divides every amount by 100, whatever the currency (JPY has no minor unit, KWD three)."""
    p = raw.payload
    order = acme.map_order(store=store, raw=raw)
    items = [
        attrs.evolve(i, unit_price=Decimal(line["price"]) / 100)
        for i, line in zip(order.items, p["lines"], strict=True)
    ]
    item_total = sum((i.total() for i in items), Decimal(0))
    shipping, total = Decimal(p["shipping_price"]) / 100, Decimal(p["total"]) / 100
    return attrs.evolve(order, items=items, item_total=item_total, shipping_amount=shipping, total=total)


def local_time_as_utc(store: StoreContext, raw: RawOrder) -> Order:
    """Reads the Paris wall-clock time and labels it UTC."""
    wall = datetime.fromisoformat(raw.payload["created_at"]).replace(tzinfo=None)
    return _remap(store, raw, order_date=wall.replace(tzinfo=UTC))


def sku_from_title(store: StoreContext, raw: RawOrder) -> Order:
    """Maps each line's SKU from the wrong field (its title)."""
    order = acme.map_order(store=store, raw=raw)
    items = [attrs.evolve(i, sku=line["title"]) for i, line in zip(order.items, raw.payload["lines"], strict=True)]
    return attrs.evolve(order, items=items)


def item_total_ignores_quantity(store: StoreContext, raw: RawOrder) -> Order:
    """Sums unit prices, forgetting the quantities."""
    order = acme.map_order(store=store, raw=raw)
    return attrs.evolve(order, item_total=sum((i.unit_price for i in order.items), Decimal(0)))


class _NoTruthSandbox(AcmeSandbox):
    """An Acme sandbox that declares no expected records (only the generic value checks apply)."""

    expected_orders = None  # type: ignore[assignment]


def sandbox_without_truth() -> Any:
    """Acme's sandbox without expected_orders."""
    return _NoTruthSandbox


# -- purity of the mapping hooks ---------------------------------------------------------------


def map_order_reads_a_file(store: StoreContext, raw: RawOrder) -> Order:
    """Reads its schema file on every call (to look up a default)."""
    resources.files("connector_acme_bazaar").joinpath("order.schema.json").read_text("utf-8")
    return acme.map_order(store=store, raw=raw)


def map_status_asks_the_api(store: StoreContext, marketplace_status: str) -> str | None:
    """Asks the API for the shop before mapping a status."""
    call(store, "GET", "shop")
    return acme.map_status(store=store, marketplace_status=marketplace_status)


def map_order_edits_its_payload(store: StoreContext, raw: RawOrder) -> Order:
    """Marks each payload it maps, in place."""
    raw.payload["mapped_by"] = "acme"
    return acme.map_order(store=store, raw=raw)


def map_order_reads_the_first_key(store: StoreContext, raw: RawOrder) -> Order:
    """Takes the buyer's first field, whichever it is, as the customer's name."""
    buyer = raw.payload["buyer"]
    return _remap(
        store, raw, customer=attrs.evolve(acme.map_order(store=store, raw=raw).customer, name=buyer[next(iter(buyer))])
    )


# -- cursors ---------------------------------------------------------------------------------------


def cursor_runs_ahead(store: StoreContext, since: Any) -> Iterator[FetchPage]:
    """Reads every page first, then yields each with the last page's cursor."""
    pages = list(acme.fetch_orders(store=store, since=since))
    for page in pages:
        yield attrs.evolve(page, cursor=pages[-1].cursor)


def ignores_cursor(store: StoreContext, since: Any) -> Iterator[FetchPage]:
    """Always reads from the start."""
    return acme.fetch_orders(store=store, since=None)


def mapping_uses_the_clock(store: StoreContext, raw: RawOrder) -> Order:
    """Stamps modified_date with the time of mapping."""
    return _remap(store, raw, modified_date=datetime.now(UTC))


# -- push correctness --------------------------------------------------------------------------------


def repush_raises_when_shipped(store: StoreContext, order: Order, shipment: Shipment) -> PushResult:
    """Refuses to push to an order that its snapshot says is shipped."""
    if order.marketplace_status.code == "shipped":
        raise TransitionError(f"order {order.order_key} is already shipped")
    return acme.push_shipment(store=store, order=order, shipment=shipment)


def ignores_shipment_lines(store: StoreContext, order: Order, shipment: Shipment) -> PushResult:
    """Ships the whole order whatever lines the shipment names."""
    return acme.push_shipment(store=store, order=order, shipment=attrs.evolve(shipment, items=()))


def cancel_swallows_refusal(store: StoreContext, order: Order, reason: str | None) -> StatusChange:
    """Reports a refused cancel as done."""
    try:
        return acme.cancel_order(store=store, order=order, reason=reason)
    except TransitionError:
        return StatusChange(order.order_key, MarketplaceStatus("cancelled", "Cancelled"))


def cancel_does_nothing(store: StoreContext, order: Order, reason: str | None) -> StatusChange:
    """Answers "cancelled" without telling the marketplace."""
    return StatusChange(order.order_key, MarketplaceStatus("cancelled", "Cancelled"))


# -- credentials that expire ------------------------------------------------------------------------------


def _call_without_renewal(store: StoreContext, method: str, path: str, **kwargs: Any) -> Any:
    """Acme's call with the token bought once and never renewed."""
    base = str(store.settings["base_url"]).rstrip("/")
    token = store.cache.get("token") or acme_client.access_token(store)
    store.cache["token"] = token
    headers = {"Authorization": f"Bearer {token}"}
    return store.http.request(method, f"{base}/api/v1/{path}", headers=headers, check=check_answer, **kwargs).json()


def _orders_page(store: StoreContext, after: int) -> tuple[FetchPage, bool]:
    answer = _call_without_renewal(store, "GET", "orders", params={"after": after, "limit": 50})
    orders = [RawOrder(order_key=o["id"], payload=o) for o in answer["orders"]]
    return FetchPage(orders=orders, cursor=answer["next"]), bool(answer["has_more"])


def token_never_renewed(store: StoreContext, since: Any) -> Iterator[FetchPage]:
    """Buys one token and uses it until the marketplace refuses it."""
    after = int(since or 0)
    more = True
    while more:
        page, more = _orders_page(store, after)
        yield page
        after = page.cursor


def renewal_restarts_the_read(store: StoreContext, since: Any) -> Iterator[FetchPage]:
    """Renews a refused token, but starts the whole read over."""
    after = int(since or 0)
    more = True
    while more:
        try:
            page, more = _orders_page(store, after)
        except AuthError:
            store.cache["token"] = acme_client.access_token(store, renew=True)
            after, more = int(since or 0), True
            continue
        yield page
        after = page.cursor


# -- secrets beyond the settings ----------------------------------------------------------------------------


def logs_request_headers(store: StoreContext) -> Any:
    """Logs the request headers (with the bearer token) at DEBUG before connecting."""
    log.debug("GET shop with headers %s", {"Authorization": f"Bearer {acme_client.access_token(store)}"})
    return acme.connect(store=store)


def token_in_refusal(store: StoreContext, order: Order, reason: str | None) -> StatusChange:
    """Reports a refused cancel with a RuntimeError that quotes the request's Authorization header."""
    try:
        return acme.cancel_order(store=store, order=order, reason=reason)
    except TransitionError:
        raise RuntimeError(f"cancel refused (sent Authorization: Bearer {acme_client.access_token(store)})") from None


@contextmanager
def _unregistered(store: StoreContext) -> Iterator[None]:
    secrets = store.secrets
    object.__setattr__(store, "secrets", type("Forgetful", (), {"add": staticmethod(lambda value: None)})())
    try:
        yield
    finally:
        object.__setattr__(store, "secrets", secrets)


def token_not_registered(store: StoreContext) -> Any:
    """Buys its token without store.secrets.add."""
    with _unregistered(store):
        acme_client.access_token(store)
    return acme.connect(store=store)


# -- crashes ------------------------------------------------------------------------------------------------------


def crashes_on_notes(store: StoreContext, raw: RawOrder) -> Order:
    """Reads a field that only orders with a note lack: KeyError."""
    if raw.payload.get("note"):
        return _remap(store, raw, customer_notes=raw.payload["note_text"])
    return acme.map_order(store=store, raw=raw)


def module_variant(module: object, **replaced: Callable[..., Any]) -> object:
    """Every hook implementation of ``module`` as one plugin object, with ``replaced`` hooks swapped in."""
    hooks = {n: getattr(module, n) for n in dir(module) if hasattr(getattr(module, n), "connector_core_impl")}
    hooks.update({name: hookimpl(fn) for name, fn in replaced.items()})
    return type("Variant", (), {name: staticmethod(fn) for name, fn in hooks.items()})()


def no_overlap() -> ContractProfile:
    """Declares no re-fetch overlap (while the plugin still re-asks one)."""
    return ContractProfile(totals_add_up=True)


#: variant name -> (plugin object, the checks it must fail, and only those)
VARIANTS: dict[str, tuple[object, frozenset[str]]] = {
    name: (plugin, frozenset(checks))
    for name, (plugin, checks) in {
        "drops_shipping_address": (
            acme_variant(map_order=drops_shipping_address),
            {"no_address_rejected", "expected_records"},
        ),
        "leaks_secret": (acme_variant(connect=leaks_secret), {"connect", "secrets"}),
        "unflagged_secret": (acme_variant(marketplace_info=unflagged_secret), {"describes_itself"}),
        "duplicates_keys": (acme_variant(fetch_orders=duplicates_keys), {"fetch_and_map", "credentials_expire"}),
        "partial_status_map": (acme_variant(map_status=partial_status_map), {"status_mapping", "order_transitions"}),
        "double_push": (acme_variant(push_shipment=double_push), {"push_shipment", "partial_shipment"}),
        "money_through_float": (acme_variant(map_order=money_through_float), {"expected_records"}),
        "cents_everywhere": (acme_variant(map_order=cents_everywhere), {"expected_records"}),
        "local_time_as_utc": (acme_variant(map_order=local_time_as_utc), {"expected_records"}),
        "sku_from_title": (acme_variant(map_order=sku_from_title), {"expected_records"}),
        "item_total_ignores_quantity": (acme_variant(map_order=item_total_ignores_quantity), {"expected_records"}),
        "float_without_truth": (
            acme_variant(map_order=money_through_float, sandbox_factory=sandbox_without_truth),
            {"expected_records"},
        ),
        "map_order_reads_a_file": (acme_variant(map_order=map_order_reads_a_file), {"pure_mapping"}),
        "map_status_asks_the_api": (acme_variant(map_status=map_status_asks_the_api), {"pure_mapping"}),
        "map_order_edits_its_payload": (acme_variant(map_order=map_order_edits_its_payload), {"pure_mapping"}),
        "map_order_reads_the_first_key": (acme_variant(map_order=map_order_reads_the_first_key), {"pure_mapping"}),
        "cursor_runs_ahead": (acme_variant(fetch_orders=cursor_runs_ahead), {"cursors"}),
        "ignores_cursor": (acme_variant(fetch_orders=ignores_cursor), {"incremental", "cursors"}),
        "mapping_uses_the_clock": (acme_variant(map_order=mapping_uses_the_clock), {"cursors", "pure_mapping"}),
        "repush_raises_when_shipped": (acme_variant(push_shipment=repush_raises_when_shipped), {"push_shipment"}),
        "ignores_shipment_lines": (acme_variant(push_shipment=ignores_shipment_lines), {"partial_shipment"}),
        "cancel_swallows_refusal": (acme_variant(cancel_order=cancel_swallows_refusal), {"order_transitions"}),
        "cancel_does_nothing": (acme_variant(cancel_order=cancel_does_nothing), {"order_transitions"}),
        "token_never_renewed": (acme_variant(fetch_orders=token_never_renewed), {"credentials_expire"}),
        "renewal_restarts_the_read": (acme_variant(fetch_orders=renewal_restarts_the_read), {"credentials_expire"}),
        "token_in_refusal": (acme_variant(cancel_order=token_in_refusal), {"order_transitions"}),
        "token_not_registered": (acme_variant(connect=token_not_registered), {"secrets"}),
    }.items()
}

#: variants whose bug shows in every check that touches it: they must fail at least these checks
WIDE_VARIANTS: dict[str, tuple[object, frozenset[str]]] = {
    "logs_request_headers": (acme_variant(connect=logs_request_headers), frozenset({"connect", "secrets"})),
    "crashes_on_notes": (acme_variant(map_order=crashes_on_notes), frozenset({"fetch_and_map", "expected_records"})),
}
