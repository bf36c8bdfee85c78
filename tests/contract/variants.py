"""Deliberately broken variants of the Acme Bazaar plugin, each out of contract in one way."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import attrs
import connector_acme_bazaar.plugin as acme
from connector_acme_bazaar.client import call

from connector_core import hookimpl
from connector_core.errors import AuthError
from connector_core.models import (
    Address,
    FetchPage,
    FieldOutcome,
    FieldResult,
    MarketplaceInfo,
    Order,
    PushResult,
    RawOrder,
    Shipment,
)
from connector_core.plugins import PluginHost
from connector_core.store_context import StoreContext

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
)


def acme_variant(**replaced: Callable[..., Any]) -> object:
    """The acme plugin's hooks as one plugin object, with ``replaced`` hooks swapped in."""
    hooks = {name: getattr(acme, name) for name in HOOKS}
    hooks.update({name: hookimpl(fn) for name, fn in replaced.items()})
    variant = type("AcmeVariant", (), {name: staticmethod(fn) for name, fn in hooks.items()})
    return variant()


def host_for(plugin: object) -> PluginHost:
    """A plugin host holding only ``plugin``."""
    return PluginHost.create(plugins=[plugin], load_entrypoints=False)


def drops_shipping_address(store: StoreContext, raw: RawOrder) -> Order:
    """Maps every order, but loses the shipping address on the way."""
    fake = {"name": "x", "street": "x", "city": "x", "postcode": "0", "country": "FR"}
    order = acme.map_order(store=store, raw=attrs.evolve(raw, payload={**raw.payload, "shipping_address": fake}))
    return attrs.evolve(order, ship_to=Address(name=raw.payload["buyer"]["name"]))


def leaks_secret(store: StoreContext) -> Any:
    """Puts the refused API key in the auth error."""
    try:
        return acme.connect(store=store)
    except AuthError:
        raise AuthError(f"Acme refused the key {store.settings['api_key']}: check the api_key setting") from None


def unflagged_secret() -> MarketplaceInfo:
    """Forgets to flag the API key as a secret."""
    info = acme.marketplace_info()
    schema = {
        **info.settings_schema,
        "properties": {**info.settings_schema["properties"], "api_key": {"type": "string"}},
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
    """Pushes through Acme's add-a-parcel call, which adds one more parcel every time."""
    call(store, "POST", f"orders/{order.order_key}/parcels", data={"tracking_number": shipment.tracking_number})
    sent = [FieldResult("tracking_number", FieldOutcome.SENT), FieldResult("carrier", FieldOutcome.SENT)]
    unsupported = [FieldResult(f, FieldOutcome.UNSUPPORTED) for f in ("service", "carrier_fee", "notes_to_buyer")]
    return PushResult(accepted=True, fields=sent + unsupported)


#: variant name -> (plugin object, the one check it must fail)
VARIANTS: dict[str, tuple[object, str]] = {
    "drops_shipping_address": (acme_variant(map_order=drops_shipping_address), "no_address_rejected"),
    "leaks_secret": (acme_variant(connect=leaks_secret), "connect"),
    "unflagged_secret": (acme_variant(marketplace_info=unflagged_secret), "describes_itself"),
    "duplicates_keys": (acme_variant(fetch_orders=duplicates_keys), "fetch_and_map"),
    "partial_status_map": (acme_variant(map_status=partial_status_map), "status_mapping"),
    "double_push": (acme_variant(push_shipment=double_push), "push_shipment"),
}
