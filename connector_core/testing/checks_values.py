"""Contract checks of mapped values: the sandbox's expected records, money to the currency's minor unit,
totals that add up, and mapping hooks that do no I/O."""

from __future__ import annotations

import copy
from typing import Any

import attrs

from connector_core.errors import PayloadError
from connector_core.models import Order, to_json
from connector_core.testing.env import Env, fail, short
from connector_core.testing.purity import RefusingTransport, no_io
from connector_core.testing.values import differences, too_precise, totals_off


def check_expected_records(env: Env) -> str:
    """Mapped orders equal the sandbox's expected records field by field; money fits its currency; totals add up."""
    store = env.store()
    orders = env.mapped_orders(store)
    problems: list[str] = []
    expected_orders = getattr(env.sandbox, "expected_orders", None)
    compared = 0
    if callable(expected_orders):
        by_key = {o.order_key: o for o in orders}
        for key, want in expected_orders().items():
            order = by_key.get(key)
            if order is None:
                problems.append(f"{key}: the sandbox expects this order but it was not fetched and mapped")
                continue
            compared += 1
            problems += [f"{key}: {diff}" for diff in differences(want, to_json(order))]
    problems += [f"{o.order_key}: {p}" for o in orders for p in too_precise(o)]
    if env.profile.totals_add_up:
        problems += [f"{o.order_key}: {p}" for o in orders for p in totals_off(o)]
    if problems:
        more = f" (+{len(problems) - 6} more)" if len(problems) > 6 else ""
        raise fail(
            "; ".join(problems[:6]) + more + ": map money with Decimal from the marketplace's exact figures "
            "(minor units scaled by the currency's ISO 4217 exponent, never through float), and dates in "
            "the time zone the marketplace writes them in"
        )
    checked = f"{len(orders)} orders' money fits its currency" + (
        "; totals add up" if env.profile.totals_add_up else ""
    )
    if not callable(expected_orders):
        return checked + "; the sandbox declares no expected_orders, so values were not compared with the truth"
    return f"{compared} orders equal the sandbox's expected records; {checked}"


def _pure(env: Env, hook: str, call: Any, order_key: str | None) -> Any:
    """Call ``call()`` with I/O refused; fail naming the hook and the order if it tried any."""
    with no_io() as attempts:
        try:
            result = call()
        except Exception as exc:
            if not attempts:
                raise
            result = exc
    if attempts:
        on = f" for {order_key}" if order_key else ""
        raise fail(
            f"{hook}{on} tried I/O ({attempts[0]}): mapping hooks may run in a worker process and must decide from "
            "their arguments alone; fetch what they need in fetch_orders and put it in the raw payload"
        )
    return result


def _comparable(order: Order) -> dict[str, Any]:
    data = to_json(order)
    data.pop("store")
    return data


def _keys_sorted(value: Any) -> Any:
    """``value`` with the keys of every object in it in sorted order (as a map worker receives a payload)."""
    if isinstance(value, dict):
        return {key: _keys_sorted(value[key]) for key in sorted(value, key=str)}
    if isinstance(value, list):
        return [_keys_sorted(item) for item in value]
    return value


def check_pure_mapping(env: Env) -> str:
    """map_order, map_status and should_auto_accept do no I/O, answer the same twice, and leave the payload as it is.

    map_order must also give the same order whatever the order of the payload's keys.
    """
    store = env.store()
    raws = env.fetch(store)[0]
    offline = env.store(transport=RefusingTransport())  # the same store, with its HTTP client refusing to send
    hooks = {name: env.plugin_hook(name) for name in ("map_order", "map_status", "should_auto_accept")}
    mapped: list[Order] = []
    for raw in raws:
        before = copy.deepcopy(raw.payload)
        try:
            order = env.map(store, raw)  # warm caches (imports, time zones) with I/O allowed
        except PayloadError:
            continue
        if raw.payload != before:
            raise fail(
                f"map_order changed the payload it was given for {raw.order_key}: the host stores the payload "
                "as fetched and may hand it to a worker already encoded; copy what you need to change"
            )
        mapped.append(order)
        reference = _comparable(env.host.map_order(store, raw))  # what the two checks below compare with
        reordered = attrs.evolve(raw, payload=_keys_sorted(raw.payload))
        try:
            sorted_keys: dict[str, Any] | None = _comparable(env.host.map_order(store, reordered))
        except PayloadError:
            sorted_keys = None
        if sorted_keys != reference:
            raise fail(
                f"map_order gave another order for {raw.order_key} when the payload's keys came in another order: "
                "a JSON object's members have no order (a map worker receives them sorted); read keys by name"
            )
        with env.on_order(raw.order_key):
            again = _pure(env, "map_order", lambda r=raw: hooks["map_order"](store=offline, raw=r), raw.order_key)
        if isinstance(again, Order) and _comparable(again) != reference:
            raise fail(f"map_order gave two different orders for {raw.order_key}: map from the payload alone")
    codes = list(env.info.statuses) or sorted({o.marketplace_status.code for o in mapped})
    for code in codes:
        first = hooks["map_status"](store=store, marketplace_status=code)
        if (
            _pure(env, "map_status", lambda c=code: hooks["map_status"](store=offline, marketplace_status=c), None)
            != first
        ):
            raise fail(f"map_status answered {code!r} differently twice: decide from the code alone")
    decided = 0
    for order in mapped:
        first = hooks["should_auto_accept"](store=store, order=order)
        with env.on_order(order.order_key):
            got = _pure(
                env,
                "should_auto_accept",
                lambda o=order: hooks["should_auto_accept"](store=offline, order=o),
                order.order_key,
            )
        if got != first:
            raise fail(f"should_auto_accept answered differently twice for {order.order_key}")
        decided += bool(got)
    if not raws:
        raise fail("fetch_orders returned no order to map")
    return (
        f"{len(mapped)} orders, {len(codes)} status codes and {len(mapped)} auto-accept decisions with I/O refused "
        f"({decided} accepted)" + (f"; statuses {short(codes)}" if len(codes) <= 3 else "")
    )
