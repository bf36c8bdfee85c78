"""Comparing mapped orders with the truth: expected records, ISO 4217 minor units, totals that add up.

The currency data is the ``iso4217`` package's (ISO's own list, with each
currency's minor-unit exponent).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import iso4217

from connector_core.models import Order

#: Canonical order JSON keys that hold money (compared as decimals, held to the currency's minor unit).
MONEY_KEYS = frozenset(
    {"total", "item_total", "shipping_amount", "payment_fee", "tax_amount", "unit_price", "discount", "amount"}
)
#: Canonical order JSON keys that hold instants (compared as instants, whatever the offset written).
DATE_KEYS = frozenset({"order_date", "modified_date", "ship_date"})


def minor_units(currency: str) -> int | None:
    """The ISO 4217 minor-unit exponent of ``currency`` (JPY 0, EUR 2, KWD 3); ``None`` if unknown or none."""
    try:
        exponent = iso4217.Currency(currency.upper()).exponent
    except (ValueError, AttributeError):
        return None
    return exponent if isinstance(exponent, int) else None


def _decimal(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def _instant(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


def _same(key: str, want: Any, got: Any) -> str | None:
    """``None`` when ``got`` is ``want`` under the key's rule; else how it differs."""
    if key in MONEY_KEYS and want is not None:
        w, g = _decimal(want), _decimal(got)
        if w is None:
            return f"the sandbox's expected value {want!r} is not a decimal"
        if g is None or g != w:
            return f"is {got!r} but should be {want!r}" + (f" (off by {g - w})" if g is not None else "")
        return None
    if key in DATE_KEYS and want is not None:
        w_at, g_at = _instant(want), _instant(got)
        if w_at is None:
            return f"the sandbox's expected value {want!r} is not an ISO date with an offset"
        if g_at is None or g_at != w_at:
            off = f" ({(g_at - w_at).total_seconds() / 3600:+g} h)" if g_at is not None else ""
            return f"is the instant {got!r} but should be {want!r}{off}"
        return None
    if want != got:
        return f"is {got!r} but should be {want!r}"
    return None


def differences(expected: Any, got: Any, path: str = "") -> Iterator[str]:
    """Each difference between the expected part of a canonical order JSON and the mapped one."""
    if isinstance(expected, Mapping):
        if not isinstance(got, Mapping):
            yield f"{path or 'the order'} is {got!r} but should be an object"
            return
        for key, want in expected.items():
            where = f"{path}.{key}" if path else key
            if isinstance(want, Mapping | list):
                yield from differences(want, got.get(key), where)
            elif (why := _same(key, want, got.get(key))) is not None:
                yield f"{where} {why}"
    elif isinstance(expected, list):
        if not isinstance(got, list) or len(got) != len(expected):
            count = len(got) if isinstance(got, list) else got
            yield f"{path} has {count} entries but should have {len(expected)}"
            return
        for i, (want, item) in enumerate(zip(expected, got, strict=True)):
            yield from differences(want, item, f"{path}[{i}]")


def _money_fields(order: Order) -> Iterator[tuple[str, Decimal]]:
    yield from (
        ("total", order.total),
        ("item_total", order.item_total),
        ("shipping_amount", order.shipping_amount),
        ("payment_fee", order.payment_fee),
    )
    if order.tax_amount is not None:
        yield "tax_amount", order.tax_amount
    for i, d in enumerate(order.discounts):
        yield f"discounts[{i}].amount", d.amount
    for i, item in enumerate(order.items):
        yield f"items[{i}].unit_price", item.unit_price
        yield f"items[{i}].discount", item.discount


def too_precise(order: Order) -> list[str]:
    """Money of ``order`` with more decimals than its currency has (a float on the way, a wrong divisor)."""
    units = minor_units(order.currency)
    if units is None:
        return []
    step = Decimal(1).scaleb(-units)
    return [
        f"{name} = {amount} has more decimals than {order.currency} allows ({units})"
        for name, amount in _money_fields(order)
        if amount != amount.quantize(step, rounding="ROUND_DOWN")
    ]


def totals_off(order: Order) -> list[str]:
    """How ``order``'s totals fail to add up (see :class:`~connector_core.testing.profile.ContractProfile`)."""
    problems = []
    lines = sum((i.total() for i in order.items), Decimal(0))
    if order.item_total != lines:
        problems.append(f"item_total {order.item_total} is not the sum of its lines' totals {lines}")
    discounts = sum((d.amount for d in order.discounts if d.line_key is None), Decimal(0))
    parts = order.item_total + order.shipping_amount + order.payment_fee + (order.tax_amount or 0) - discounts
    if order.total != parts:
        problems.append(f"total {order.total} is not item_total + shipping + payment fee + tax - discounts = {parts}")
    return problems
