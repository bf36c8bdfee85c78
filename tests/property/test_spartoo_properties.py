"""Properties of the Spartoo mapping over generated payloads (profile: HYPOTHESIS_PROFILE)."""

from __future__ import annotations

import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import jsonschema
from connector_spartoo.mapping import DEFAULT_STATUS_MAP, map_order_document
from hypothesis import Phase, find, given
from hypothesis import settings as Settings
from hypothesis import strategies as st

from connector_core.db import OrderBook
from connector_core.errors import MappingError
from connector_core.models import CANONICAL_STATUSES, Order, from_json, to_json
from connector_core.schema_registry import canonical_registry
from tests.property.strategies import SPARTOO_SCHEMA, STATUS_CODES, any_orders, schema_orders, spartoo_orders

PARIS = ZoneInfo("Europe/Paris")
CENT = Decimal("0.01")
VALIDATOR = jsonschema.Draft202012Validator(SPARTOO_SCHEMA)


def mapped(payload: dict[str, Any]) -> Order | None:
    """The canonical order, or None when the mapping refused it with MappingError."""
    try:
        return map_order_document(payload, store="prop", site="com", zone=PARIS)
    except MappingError as err:
        assert err.message
        return None


def floats(value: Any) -> list[Any]:
    """Every float inside a JSON-like value."""
    if isinstance(value, float):
        return [value]
    if isinstance(value, dict):
        return [f for v in value.values() for f in floats(v)]
    if isinstance(value, list | tuple):
        return [f for v in value for f in floats(v)]
    return []


@given(any_orders())
def test_mapping_yields_valid_order_or_mapping_error(payload: dict[str, Any]) -> None:
    """Any payload maps to a canonical order that validates, or raises MappingError; nothing else."""
    order = mapped(payload)
    if order is not None:
        canonical_registry().validate("canonical/order", to_json(order))
        assert order.ship_to.is_usable()


@given(spartoo_orders())
def test_money_is_decimal_and_totals_reconcile_or_are_flagged(payload: dict[str, Any]) -> None:
    """Money is never float; item total + shipping + fee equals the total, or the order is flagged."""
    order = mapped(payload)
    if order is None:
        return
    amounts = [order.total, order.item_total, order.shipping_amount, order.payment_fee]
    amounts += [i.unit_price for i in order.items] + [i.discount for i in order.items]
    assert {type(a) for a in amounts} == {Decimal}
    assert floats(to_json(order)) == []
    assert order.item_total == sum((i.total() for i in order.items), Decimal(0))
    gap = abs(order.item_total + order.shipping_amount + order.payment_fee - order.total)
    assert gap <= CENT or {"totals_mismatch", "total_missing"} & set(order.flags)


@given(spartoo_orders())
def test_canonical_json_round_trips_exactly(payload: dict[str, Any]) -> None:
    """from_json(to_json(order)) gives back the very same order."""
    order = mapped(payload)
    if order is not None:
        assert from_json(to_json(order), Order) == order


@given(st.sampled_from(STATUS_CODES), spartoo_orders())
def test_status_mapping_is_total(code: str, payload: dict[str, Any]) -> None:
    """Every Spartoo status code maps to a canonical status, in the table and on the order."""
    assert DEFAULT_STATUS_MAP[code] in CANONICAL_STATUSES
    order = mapped({**payload, "orders_status_id": code})
    if order is not None:
        assert (order.marketplace_status.code, order.status.value) == (code, DEFAULT_STATUS_MAP[code])


@given(st.lists(spartoo_orders(), min_size=1, max_size=5, unique_by=lambda p: p["orders_id"]))
def test_importing_the_same_payloads_twice_changes_nothing(payloads: list[dict[str, Any]]) -> None:
    """Saving the same mapped page twice inserts nothing the second time and leaves the book identical."""
    orders = [o for o in map(mapped, payloads) if o is not None]
    with tempfile.TemporaryDirectory() as tmp, OrderBook(Path(tmp) / "prop.db") as book:
        book.add_store("prop", "spartoo", {"partner_id": "P-123456"})
        first = book.save_page("prop", orders, cursor={"com": "2024-01-01"})
        before = [to_json(o) for o in book.iter_orders("prop")]
        again = book.save_page("prop", [attrs.evolve(o) for o in orders], cursor={"com": "2024-01-01"})
        after = [to_json(o) for o in book.iter_orders("prop")]
    assert (first.inserted, again.inserted, again.updated) == (len(orders), 0, 0)
    assert after == before


@given(schema_orders())
def test_schema_strategy_draws_what_the_schema_admits(payload: dict[str, Any]) -> None:
    """Every draw of the schema-built strategy validates against the Spartoo order schema."""
    assert list(VALIDATOR.iter_errors(payload)) == []


def test_generated_payloads_reach_both_outcomes() -> None:
    """The hand-built strategy yields orders that map and orders that are refused, so the properties bite."""
    # any example of each outcome will do: no shrinking (which older Hypothesis releases trace slowly)
    settings = Settings(max_examples=500, database=None, phases=[Phase.generate])
    mappable = find(spartoo_orders(), lambda p: mapped(p) is not None, settings=settings)
    refused = find(spartoo_orders(), lambda p: mapped(p) is None, settings=settings)
    assert mapped(mappable) is not None
    assert mapped(refused) is None
