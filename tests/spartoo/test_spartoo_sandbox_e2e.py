"""The Spartoo plugin end to end against the Spartoo sandbox over real loopback HTTP."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import jsonschema
import pytest
from connector_spartoo import plugin
from connector_spartoo.mapping import normalise_country
from connector_spartoo.sandbox.server import SpartooSandbox
from connector_spartoo.xmlstream import AUTH_MESSAGE

from connector_core.errors import AccountError, AuthError, MappingError, TransitionError
from connector_core.http import HttpPolicy, RetryingClient
from connector_core.models import FieldOutcome, Order, RawOrder, Shipment
from connector_core.store_context import StoreContext

PARTNER = "ABCDEF0123456789"
DEACTIVATED = "5A4DB0C0FFEE0428"


@pytest.fixture
def sandbox() -> Iterator[SpartooSandbox]:
    with SpartooSandbox(orders=60, seed=11, partner_ids=[PARTNER]) as sb:
        yield sb


def make_store(settings: dict[str, Any]) -> StoreContext:
    http = RetryingClient(HttpPolicy(max_attempts=10, max_total_wait=60.0), sleep=lambda _s: None)  # no real sleeps
    return StoreContext(name="spartoo-e2e", marketplace="spartoo", settings=settings, http=http)


@pytest.fixture
def store(sandbox: SpartooSandbox) -> Iterator[StoreContext]:
    ctx = make_store({**sandbox.settings(), "initial_lookback_days": 40})
    yield ctx
    ctx.http.close()


def fetch_all(store: StoreContext, since: Any = None) -> tuple[list[RawOrder], list[Any], Any]:
    orders: list[RawOrder] = []
    rejects: list[Any] = []
    cursor = since
    for page in plugin.fetch_orders(store=store, since=since):
        orders.extend(page.orders)
        rejects.extend(page.rejects)
        if page.cursor is not None:
            cursor = page.cursor
    return orders, rejects, cursor


def imported(store: StoreContext) -> dict[str, Order]:
    raws, _, _ = fetch_all(store)
    out = {}
    for raw in raws:
        with contextlib.suppress(MappingError):  # orders without an address: checked in their own test
            out[raw.order_key] = plugin.map_order(store=store, raw=raw)
    return out


def test_good_bad_and_deactivated_partner_ids(sandbox: SpartooSandbox, store: StoreContext) -> None:
    """A known partner ID connects on every site; an unknown one gets the auth message; -428 says deactivated."""
    result = plugin.connect(store=store)
    sites = sandbox.settings()["sites"]
    assert result.account == f"Spartoo ({len(sites)} sites: {', '.join(sites)})"
    bad = make_store(sandbox.bad_settings())
    try:
        with pytest.raises(AuthError) as info:
            plugin.connect(store=bad)
        assert str(info.value) == AUTH_MESSAGE
    finally:
        bad.http.close()
    with SpartooSandbox(orders=1, seed=1, partner_ids=[PARTNER], deactivated_ids=[DEACTIVATED]) as other:
        off = make_store({**other.settings(), "partner_id": DEACTIVATED})
        try:
            with pytest.raises(AccountError, match="deactivated"):
                plugin.connect(store=off)
        finally:
            off.http.close()


def test_multi_site_fetch_every_field(sandbox: SpartooSandbox, store: StoreContext) -> None:
    """Every sandbox order arrives from its site, passes the raw schema, and maps field by field."""
    raws, rejects, cursor = fetch_all(store)
    rows = {r["order_key"]: r for r in sandbox.orders()}
    assert rejects == []
    assert sorted(r.order_key for r in raws) == sorted(rows)
    assert set(cursor) == set(sandbox.settings()["sites"])
    validator = jsonschema.Draft202012Validator(plugin.marketplace_info().raw_schema)
    relay_seen = discount_seen = 0
    for raw in raws:
        assert validator.is_valid(raw.payload), raw.order_key
        row = rows[raw.order_key]
        if not row["valid"]:
            with pytest.raises(MappingError, match="no usable shipping address"):
                plugin.map_order(store=store, raw=raw)
            continue
        order = plugin.map_order(store=store, raw=raw)
        src = sandbox.order_document(raw.order_key)
        cust, dlv = src["customers"], src["delivery"]
        assert (order.site, order.order_number) == (row["site"], row["orders_id"])
        assert order.currency == src["_meta"]["currency"]
        assert order.marketplace_status.code == row["status"]
        assert order.customer.email == (cust["customers_email_address"] or None)
        assert order.customer.phone == (cust["customers_telephone"] or None)
        assert order.bill_to is not None and order.bill_to.city == (cust["customers_city"] or None)
        assert order.bill_to.country == normalise_country(cust["customers_country"])
        assert order.requested_shipping_service == src["shipping_name"]
        assert order.payment_method == src["payment_method"]
        assert order.payment_fee == Decimal(src["payment_price"])
        assert order.shipping_amount == Decimal(src["shipping_price"])
        assert order.total == Decimal(src["order_total"])
        assert order.flags == ()
        assert order.order_date.tzinfo is not None and order.order_date.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
        if "relay_info" in dlv:
            relay_seen += 1
            assert order.pickup_point is not None and order.pickup_point.id == dlv["relay_info"]["relay_id"]
            assert order.ship_to.country == dlv["relay_info"]["relay_country_iso"]
        else:
            assert order.pickup_point is None
            assert order.ship_to.country == normalise_country(dlv["delivery_country"])
        products = src["products"]["product"]
        assert len(order.items) == len(products)
        for item, prod in zip(order.items, products, strict=True):
            assert item.sku == (prod["products_size_reference"] or prod["products_reference"])
            assert (item.brand, item.marketplace_product_id) == (
                prod["products_manufacturers"],
                prod["products_spartoo"],
            )
            assert item.unit_price == Decimal(prod["products_price_unit"])
            qty, reduced = int(prod["products_qty"]), Decimal(prod["products_price_unit_with_reduce"])
            assert item.discount == (item.unit_price - reduced) * qty
            assert item.total() == Decimal(prod["products_final_price"])
            discount_seen += item.discount > 0
    assert relay_seen > 0 and discount_seen > 0
    assert any(not r["valid"] for r in rows.values()) or len(rows) < 30


def test_incremental_fetch_picks_up_new_orders(sandbox: SpartooSandbox, store: StoreContext) -> None:
    """Orders added after a fetch come back on the next fetch from its cursor, with nothing lost."""
    first, _, cursor = fetch_all(store)
    new_keys = sandbox.add_orders(3)
    second, _, cursor2 = fetch_all(store, cursor)
    second_keys = {r.order_key for r in second}
    assert set(new_keys) <= second_keys
    assert not set(new_keys) & {r.order_key for r in first}
    assert len(second) < len(first)  # only the overlap window, not the whole history
    assert all(cursor2[s] >= cursor[s] for s in cursor)


def test_accept_ship_cancel_visible_in_sandbox(sandbox: SpartooSandbox, store: StoreContext) -> None:
    """Accept (2), ship (3 + tracking) and cancel (41) reach the sandbox; re-pushes change nothing."""
    orders = imported(store)
    new = [o for o in orders.values() if o.marketplace_status.code == "11"]
    to_ship, to_cancel = new[0], new[1]
    assert plugin.accept_order(store=store, order=to_ship).marketplace_status.code == "2"
    shipment = Shipment(
        store=store.name,
        order_key=to_ship.order_key,
        tracking_number="6A12345678901",
        ship_date=datetime.now(UTC),
        carrier="Colissimo",
        notes_to_buyer="Merci !",
    )
    result = plugin.push_shipment(store=store, order=to_ship, shipment=shipment)
    assert result.outcome("tracking_number") is FieldOutcome.SENT
    assert result.outcome("carrier") is FieldOutcome.UNSUPPORTED
    again = plugin.push_shipment(store=store, order=to_ship, shipment=shipment)
    assert again.already_applied is True
    assert plugin.cancel_order(store=store, order=to_cancel, reason="out of stock").marketplace_status.code == "41"
    rows = {r["order_key"]: r for r in sandbox.orders()}
    assert (rows[to_ship.order_key]["status"], rows[to_ship.order_key]["tracking_number"]) == ("3", "6A12345678901")
    assert rows[to_ship.order_key]["update_count"] == 2  # accepted, then shipped; the re-push sent nothing
    assert rows[to_cancel.order_key]["status"] == "41"
    shipped = imported(store)[to_ship.order_key]
    with pytest.raises(TransitionError):
        plugin.cancel_order(store=store, order=shipped, reason=None)


def test_malformed_order_is_quarantined_rest_imported(sandbox: SpartooSandbox, store: StoreContext) -> None:
    """With the malformed fault on, the broken order fails the raw schema and every other order is fine."""
    sandbox.set_faults(malformed_rate=1.0)
    raws, rejects, _ = fetch_all(store)
    validator = jsonschema.Draft202012Validator(plugin.marketplace_info().raw_schema)
    broken = [r.order_key for r in raws if not validator.is_valid(r.payload)]
    assert sorted(broken) == sorted(sandbox.counters()["malformed_orders"])
    assert len(broken) >= 1 and len(raws) == len(sandbox.orders())
    assert rejects == []


def test_drops_and_errors_are_retried(sandbox: SpartooSandbox, store: StoreContext) -> None:
    """Dropped connections, 5xx and -429 before the first order are retried until the export succeeds."""
    sandbox.set_faults(drop_rate=0.3, error_rate=0.2, quota_rate=0.2)
    raws, _, _ = fetch_all(store)
    assert sorted(r.order_key for r in raws) == sorted(r["order_key"] for r in sandbox.orders())
    assert store.http.retries > 0


def test_secret_never_leaks(
    sandbox: SpartooSandbox, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    """A full run (connect, fetch, map, accept, ship, cancel, bad ID) never shows the partner ID."""
    caplog.set_level(logging.DEBUG)
    store = make_store({**sandbox.settings(), "initial_lookback_days": 40})
    texts: list[str] = []
    try:
        texts.append(repr(plugin.connect(store=store)))
        orders = imported(store)
        texts.extend(repr(o) for o in orders.values())
        new = [o for o in orders.values() if o.marketplace_status.code == "11"]
        plugin.accept_order(store=store, order=new[0])
        shipment = Shipment(
            store=store.name, order_key=new[0].order_key, tracking_number="T1", ship_date=datetime.now(UTC)
        )
        texts.append(repr(plugin.push_shipment(store=store, order=new[0], shipment=shipment)))
        texts.append(repr(plugin.cancel_order(store=store, order=new[1], reason=None)))
        try:
            plugin.accept_order(store=store, order=imported(store)[new[0].order_key])
        except TransitionError as err:
            texts.append(str(err))
        texts.append(repr(store))
    finally:
        store.http.close()
    wrong = make_store({**sandbox.settings(), "partner_id": "FEDCBA9876543210"})
    try:
        with pytest.raises(AuthError) as info:
            plugin.connect(store=wrong)
        texts.append(str(info.value))
    finally:
        wrong.http.close()
    out, err = capfd.readouterr()
    everything = "\n".join([caplog.text, out, err, *texts])
    assert caplog.records, "the run should have logged something to search"
    assert PARTNER not in everything and "FEDCBA9876543210" not in everything


def test_orders_show_right_after_a_push_shows_spartoo_status_3(sandbox: SpartooSandbox, tmp_path: Any) -> None:
    """After `push`, `orders show` gives status shipped and Spartoo's status 3 at once, with no sync between."""
    import json

    from click.testing import CliRunner

    from connector_core.cli import App, cli
    from connector_core.plugins import PluginHost

    host = PluginHost.create()
    db = str(tmp_path / "book.sqlite3")
    runner = CliRunner()

    def run(*args: str) -> Any:
        result = runner.invoke(cli, ["--db", db, *args], obj=App(host_factory=lambda: host))
        assert result.exit_code == 0, result.output
        return result

    settings = tmp_path / "s.json"
    settings.write_text(json.dumps({**sandbox.settings(), "initial_lookback_days": 40}), encoding="utf-8")
    run("stores", "add", "spartoo", "--name", "sp", "--settings", str(settings))
    run("sync")
    listed = json.loads(run("orders", "list", "--status", "awaiting_shipment", "--json").output)
    key = listed[0]["order_key"]
    assert listed[0]["marketplace_status"] == "2"
    run("ship", key, "--tracking", "6A0000000001", "--store", "sp")
    run("push")
    shown = json.loads(run("orders", "show", key, "--store", "sp", "--json").output)
    assert shown["status"] == "shipped"
    assert shown["marketplace_status"]["code"] == "3"
    assert {o["order_key"]: o["status"] for o in sandbox.orders()}[key] == "3"
