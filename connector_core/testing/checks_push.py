"""Contract checks that write: push a shipment (idempotent, also after a re-sync), ship part of an order,
accept and cancel orders, and the capability table checked against what really happens."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from connector_core.errors import TransitionError
from connector_core.models import FieldOutcome, Order, PushResult, Shipment, ShipmentItem, StatusChange, Support
from connector_core.store_context import StoreContext
from connector_core.testing.env import ContractSkip, Env, fail, short, token

SHIPMENT_FIELDS = ("tracking_number", "carrier", "service", "carrier_fee", "notes_to_buyer")
SHIPPABLE = ("pending_fulfillment", "awaiting_shipment")


def _shipment(store: StoreContext, order: Order, items: tuple[ShipmentItem, ...] = ()) -> Shipment:
    return Shipment(
        store=store.name,
        order_key=order.order_key,
        tracking_number=f"CT{token()}",
        ship_date=datetime.now(UTC),
        carrier="Colissimo",
        service="Expert",
        carrier_fee=Decimal("6.40"),
        notes_to_buyer="Thank you for your order",
        items=items,
    )


def _shippable(env: Env, store: StoreContext, pick: Callable[[Order], bool] = lambda o: True) -> list[Order]:
    orders = [o for o in env.mapped_orders(store) if o.status.value in SHIPPABLE and pick(o)]
    if not orders:
        raise fail("no order awaiting shipment was fetched: the sandbox should hold orders the seller can ship")
    return orders


def _ready(env: Env, store: StoreContext, order: Order) -> None:
    """Accept ``order`` first when the marketplace wants that before shipping."""
    if order.status.value == "pending_fulfillment":
        with env.on_order(order.order_key):
            env.host.accept_order(store, order)


def fresh(env: Env, store: StoreContext, key: str) -> Order:
    """The order as a new sync sees it now (a fresh snapshot)."""
    for order in env.mapped_orders(store):
        if order.order_key == key:
            return order
    raise fail(f"order {key} is no longer fetched from a fresh store: fetch_orders must keep yielding it")


def push(env: Env, store: StoreContext, order: Order, shipment: Shipment) -> PushResult:
    """``push_shipment``, naming the order if it crashes."""
    with env.on_order(order.order_key):
        return env.host.push_shipment(store, order, shipment)


def ship_one(env: Env) -> tuple[Order, Shipment, PushResult, StoreContext]:
    """Accept (when needed) and push a shipment with every field set on a shippable order."""
    store = env.store()
    order = _shippable(env, store)[0]
    _ready(env, store, order)
    shipment = _shipment(store, order)
    return order, shipment, push(env, store, order, shipment), store


def check_push_shipment(env: Env) -> str:
    """A push is accepted and visible; re-pushes (same snapshot, fresh snapshot) change nothing; fields reported."""
    env.need_writes("pushing a shipment")
    order, shipment, result, store = ship_one(env)
    if not result.accepted:
        raise fail(f"push_shipment was not accepted ({result.message}): a shippable order must take a shipment")
    reported = {f.field: f.outcome for f in result.fields}
    if missing := [f for f in SHIPMENT_FIELDS if f not in reported]:
        raise fail(f"the push result does not say what became of {short(missing)}: report every shipment field")
    if reported["tracking_number"] is not FieldOutcome.SENT:
        raise fail("the tracking number was not sent: it is the one field every marketplace must take")
    if env.sandbox is None:
        return "pushed (live: visibility not checked)"
    before = env.sandbox_order(order.order_key)
    if before.get("tracking_number") != shipment.tracking_number:
        raise fail(
            f"the sandbox shows tracking {before.get('tracking_number')!r} for {order.order_key}, "
            f"not the pushed {shipment.tracking_number!r}: the push did not reach the marketplace"
        )
    for label, snapshot in (("the same order snapshot", order), ("a fresh snapshot after a re-sync", None)):
        snapshot = snapshot or fresh(env, env.store(), order.order_key)
        try:
            again = push(env, store, snapshot, shipment)
        except TransitionError as err:
            raise fail(
                f"re-pushing the same shipment with {label} raised TransitionError ({err}): a shipment the "
                "marketplace already has must succeed with already_applied=True, whatever the order's status"
            ) from None
        after = env.sandbox_order(order.order_key)
        if after != before:
            raise fail(
                f"re-pushing the same shipment with {label} changed the marketplace's order: {before} became "
                f"{after}; make the push idempotent (detect a shipment the marketplace already has)"
            )
        if not (again.accepted and again.already_applied):
            raise fail(
                f"re-pushing the same shipment with {label} must succeed with already_applied=True "
                f"(got accepted={again.accepted}, already_applied={again.already_applied})"
            )
    unsupported = sorted(f for f, o in reported.items() if o is FieldOutcome.UNSUPPORTED)
    return f"pushed {order.order_key}, re-pushed twice; marketplace cannot take: {', '.join(unsupported) or 'nothing'}"


def _units(order: Order) -> int:
    return sum(i.quantity for i in order.items)


def check_partial_shipment(env: Env) -> str:
    """A shipment of some lines and quantities ships exactly those on the marketplace; the rest ships later."""
    if not env.profile.partial_shipments:
        raise ContractSkip("the plugin does not declare partial_shipments in its contract_profile")
    env.need_writes("pushing a partial shipment")
    env.need_sandbox("reading shipped quantities back")
    store = env.store()
    order = _shippable(env, store, lambda o: _units(o) >= 2)[0]
    _ready(env, store, order)
    first = order.items[0]
    part = (ShipmentItem(first.line_key, first.quantity - 1 if first.quantity > 1 else first.quantity),)
    want = {first.line_key: part[0].quantity}
    steps = [(part, want), (_rest(order, want), {i.line_key: i.quantity for i in order.items})]
    for items, shipped in steps:
        result = push(env, store, order, _shipment(store, order, items))
        if not result.accepted:
            raise fail(f"a partial shipment of {order.order_key} was not accepted ({result.message})")
        row = env.sandbox_order(order.order_key)
        if "shipped" not in row:
            raise fail("the sandbox's orders() gives no `shipped` quantities per line: add them for this check")
        got = {str(k): int(v) for k, v in row["shipped"].items() if int(v)}
        if got != shipped:
            raise fail(
                f"after shipping {_describe(items)} of {order.order_key} the marketplace has {_describe_map(got)} "
                f"shipped, not {_describe_map(shipped)}: send Shipment.items (line keys and quantities) as they are"
            )
        order = fresh(env, store, order.order_key)
    return f"shipped {order.order_key} in two parts, {_describe(part)} first"


def _rest(order: Order, shipped: dict[str, int]) -> tuple[ShipmentItem, ...]:
    left = ((i.line_key, i.quantity - shipped.get(i.line_key, 0)) for i in order.items)
    return tuple(ShipmentItem(key, qty) for key, qty in left if qty > 0)


def _describe(items: tuple[ShipmentItem, ...]) -> str:
    return ", ".join(f"{i.line_key}x{i.quantity}" for i in items) or "nothing"


def _describe_map(shipped: dict[str, int]) -> str:
    return ", ".join(f"{k}x{v}" for k, v in sorted(shipped.items())) or "nothing"


def _status_of(env: Env, key: str) -> Any:
    return env.sandbox_order(key).get("status")


def _change(env: Env, what: str, call: Callable[[], StatusChange], key: str) -> StatusChange:
    before = _status_of(env, key)
    with env.on_order(key):
        change = call()
    after = _status_of(env, key)
    if after == before:
        raise fail(
            f"{what} of {key} returned {change.marketplace_status.code!r} but the marketplace still has it in "
            f"{before!r}: make the call that changes the order on the marketplace"
        )
    return change


def _refused(env: Env, what: str, call: Callable[[], Any], key: str) -> str:
    before = _status_of(env, key)
    try:
        with env.on_order(key):
            call()
    except TransitionError as err:
        env.capture.add_exception(f"the TransitionError of {what}", err)
        if _status_of(env, key) != before:
            raise fail(f"{what} of {key} raised TransitionError but changed the order on the marketplace") from None
        return str(err)
    raise fail(
        f"{what} of {key} did not raise TransitionError: when the marketplace refuses a change (or the "
        "order's status forbids it) raise connector_core.errors.TransitionError saying why"
    )


def check_order_transitions(env: Env) -> str:
    """accept_order and cancel_order change the marketplace's order; illegal transitions raise TransitionError."""
    env.need_writes("accepting and cancelling orders")
    env.need_sandbox("reading order statuses back")
    store = env.store()
    orders = _shippable(env, store)
    new = [o for o in orders if o.status.value == "pending_fulfillment"]
    done = []
    if new:
        order = new[0]
        _change(env, "accept_order", lambda: env.host.accept_order(store, order), order.order_key)
        again = env.host.accept_order(store, fresh(env, store, order.order_key))
        if not again.already_applied:
            raise fail(f"accepting {order.order_key} a second time must return already_applied=True")
        done.append("accepted")
    victim = next((o for o in orders if not new or o.order_key != new[0].order_key), None)
    if victim is None:
        raise fail("the sandbox needs at least two orders awaiting shipment for this check")
    _change(env, "cancel_order", lambda: env.host.cancel_order(store, victim, "contract check"), victim.order_key)
    cancelled = fresh(env, store, victim.order_key)
    if cancelled.status.value != "cancelled":
        raise fail(f"after cancel_order, {victim.order_key} maps to {cancelled.status.value}, not cancelled")
    done.append("cancelled")
    _refused(env, "accepting a cancelled order", lambda: env.host.accept_order(store, cancelled), victim.order_key)
    shipped, _, result, _ = ship_one(env)
    if not result.accepted:
        raise fail(f"push_shipment was not accepted ({result.message})")
    now = fresh(env, store, shipped.order_key)
    _refused(env, "cancelling a shipped order", lambda: env.host.cancel_order(store, now, None), now.order_key)
    return ", ".join(done) + "; accepting a cancelled order and cancelling a shipped one raised TransitionError"


# -- capabilities -------------------------------------------------------------------


def _any_item(pred: Callable[[Any], Any]) -> Callable[[Order], bool]:
    return lambda o: any(pred(i) for i in o.items)


#: How a supported import feature shows in canonical orders (names normalised to snake_case).
ORDER_FEATURES: dict[str, Callable[[Order], Any]] = {
    "customer_email": lambda o: o.customer.email,
    "customer_phone": lambda o: o.customer.phone or o.ship_to.phone,
    "customer_notes": lambda o: o.customer_notes,
    "internal_notes": lambda o: o.internal_notes,
    "requested_shipping_service": lambda o: o.requested_shipping_service,
    "payment_method": lambda o: o.payment_method,
    "discounts": lambda o: o.discounts or any(i.discount for i in o.items),
    "gift": lambda o: o.gift,
    "order_weight": lambda o: o.total_weight,
    "billing_address": lambda o: o.bill_to,
    "pickup_point": lambda o: o.pickup_point,
    "item_weight": _any_item(lambda i: i.weight),
    "item_image_url": _any_item(lambda i: i.image_url),
    "item_options": _any_item(lambda i: i.options),
    "item_warehouse_location": _any_item(lambda i: i.warehouse_location),
    "item_brand": _any_item(lambda i: i.brand),
    "item_ean": _any_item(lambda i: i.ean or i.upc),
}
ALIASES = {
    "email": "customer_email",
    "customer_e_mail": "customer_email",
    "phone": "customer_phone",
    "shipping_service": "requested_shipping_service",
    "coupons": "discounts",
    "discounts_coupons": "discounts",
    "gift_detection": "gift",
    "gift_message": "gift",
    "total_weight": "order_weight",
    "bill_to": "billing_address",
    "relay_point": "pickup_point",
    "image_url": "item_image_url",
    "item_image": "item_image_url",
    "options": "item_options",
    "warehouse_location": "item_warehouse_location",
    "shipping_carrier": "carrier",
    "shipping_service_update": "service",
    "cost": "carrier_fee",
    "shipping_cost": "carrier_fee",
}


def feature_key(name: str) -> str:
    """A capability's feature name in the kit's vocabulary (snake_case, common aliases folded)."""
    key = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    if key.startswith("shipment_") and key.removeprefix("shipment_") in SHIPMENT_FIELDS:
        key = key.removeprefix("shipment_")
    return ALIASES.get(key, key)


def check_capabilities(env: Env) -> str:
    """Every feature declared supported is observed: in the orders, or as a sent field of a push."""
    caps = {feature_key(c.feature): c.support for c in env.info.capabilities}
    orders = env.mapped_orders(env.store())
    unseen = sorted(
        f
        for f, s in caps.items()
        if s is Support.SUPPORTED and f in ORDER_FEATURES and not any(ORDER_FEATURES[f](o) for o in orders)
    )
    if unseen:
        raise fail(
            f"declared supported but seen in none of {len(orders)} orders: {short(unseen)}; "
            "map them, or declare them supplied_by_host / not_offered"
        )
    checked = [f for f in caps if f in ORDER_FEATURES]
    if "partial_shipments" in caps:
        if (caps["partial_shipments"] is Support.SUPPORTED) != env.profile.partial_shipments:
            raise fail(
                "the capability table and contract_profile disagree on partial_shipments: declare it supported "
                "exactly when push_shipment ships Shipment.items (the partial_shipment check proves it)"
            )
        checked.append("partial_shipments")
    pushed = [f for f in caps if f in SHIPMENT_FIELDS]
    if pushed and env.allow_writes:
        result = ship_one(env)[2]
        outcome = {f.field: f.outcome for f in result.fields}
        untrue = sorted(f for f in pushed if (caps[f] is Support.SUPPORTED) != (outcome.get(f) is FieldOutcome.SENT))
        if untrue:
            raise fail(
                f"the capability table disagrees with what push_shipment sent for {short(untrue)}: "
                "declare supported exactly the fields the marketplace takes"
            )
        checked += pushed
    other = sorted(set(caps) - set(checked))
    return f"verified {len(checked)} features" + (f"; not checkable here: {short(other, 8)}" if other else "")
