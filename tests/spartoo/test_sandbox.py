"""The Spartoo sandbox, over real loopback HTTP: envelopes, routing, status rules, faults, data, admin API."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from io import BytesIO
from typing import Any

import click
import httpx
import pytest
from click.testing import CliRunner
from connector_spartoo.sandbox import hooks
from connector_spartoo.sandbox.app import DEACTIVATED_PARTNER_ID, DEFAULT_PARTNER_ID
from connector_spartoo.sandbox.data import SITES, OrderBook, format_date, parse_request_date
from connector_spartoo.sandbox.server import BAD_PARTNER_ID, SpartooSandbox, sandbox_factory
from lxml import etree

from connector_core.plugins import PluginHost

ANCHOR = 1_750_000_000  # a fixed "now" for the generated history, so data is reproducible

ORDER_TAGS = [
    "orders_id", "customers", "delivery", "payment_method", "payment_price", "shipping_price", "shipping_name",
    "order_total", "orders_status_name", "orders_status_id", "date_purchased", "last_modified", "products", "errors",
]  # fmt: skip
CUSTOMER_TAGS = [
    "customers_firstname", "customers_lastname", "customers_company", "customers_street_address",
    "customers_suburb", "customers_city", "customers_postcode", "customers_state", "customers_country",
    "customers_email_address", "customers_telephone",
]  # fmt: skip
DELIVERY_TAGS = {
    "delivery_firstname", "delivery_lastname", "relay_info", "delivery_company", "delivery_street_address",
    "delivery_suburb", "delivery_city", "delivery_postcode", "delivery_state", "delivery_country",
}  # fmt: skip
RELAY_TAGS = [
    "relay_id", "relay_type", "relay_name", "relay_address", "relay_city", "relay_postcode", "relay_country_iso",
]  # fmt: skip
PRODUCT_TAGS = [
    "products_reference", "products_name", "products_qty", "products_spartoo", "products_manufacturers",
    "products_size", "products_size_reference", "products_color", "products_price_unit",
    "products_price_unit_with_reduce", "products_final_price",
]  # fmt: skip


@pytest.fixture(scope="module")
def shared() -> Iterator[SpartooSandbox]:
    """A read-only sandbox shared by the tests that change nothing."""
    with SpartooSandbox(orders=300, seed=11, anchor=ANCHOR) as sandbox:
        yield sandbox


@pytest.fixture
def sandbox() -> Iterator[SpartooSandbox]:
    """A fresh sandbox for tests that change orders, faults or quotas."""
    with SpartooSandbox(orders=80, seed=5, anchor=ANCHOR) as sandbox:
        yield sandbox


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as client:
        yield client


def call(client: httpx.Client, sb: SpartooSandbox, site: str, script: str, **fields: str) -> etree._Element:
    """POST a form to a sandbox script and parse the XML answer (HTTP 200 expected)."""
    response = client.post(f"{sb.url}/{site}/mp/{script}", data=fields)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/xml")
    return etree.fromstring(response.content)


def statut(root: etree._Element) -> tuple[int, str]:
    return int(root.findtext("statut/id")), root.findtext("statut/description")


def export(client: httpx.Client, sb: SpartooSandbox, site: str, **fields: str) -> etree._Element:
    fields.setdefault("partenaire", DEFAULT_PARTNER_ID)
    return call(client, sb, site, "xml_export_orders.php", **fields)


def update(client: httpx.Client, sb: SpartooSandbox, key: str, statut: str, **fields: str) -> tuple[int, str]:
    site, _, oid = key.partition(":")
    root = call(client, sb, site, "xml_maj_orders.php", partenaire=DEFAULT_PARTNER_ID, oID=oid, statut=statut, **fields)
    return int(root.findtext("statut/id")), root.findtext("statut/description")


def admin_row(sb: SpartooSandbox, key: str) -> dict[str, Any]:
    return next(o for o in sb.orders() if o["order_key"] == key)


# --------------------------------------------------------------------------- envelopes


def test_missing_partner_answers_minus_1(shared: SpartooSandbox, client: httpx.Client) -> None:
    """A request without (or with an empty) partenaire gets statut -1 with HTTP 200."""
    assert statut(call(client, shared, "com", "xml_export_orders.php", date="2020-01-01:00:00:00"))[0] == -1
    assert statut(call(client, shared, "com", "xml_export_orders.php", partenaire=" "))[0] == -1
    root = etree.fromstring(client.get(f"{shared.url}/it/mp/xml_maj_orders.php").content)
    assert root.tag == "root" and statut(root)[0] == -1


def test_unknown_partner_answers_minus_2(shared: SpartooSandbox, client: httpx.Client) -> None:
    """An unknown partner ID gets statut -2 and no orders."""
    root = export(client, shared, "com", partenaire=BAD_PARTNER_ID, date="2020-01-01:00:00:00")
    assert statut(root)[0] == -2
    assert root.find("orders") is None


def test_deactivated_partner_answers_minus_428(shared: SpartooSandbox, client: httpx.Client) -> None:
    """The documented deactivated test partner gets statut -428."""
    assert statut(export(client, shared, "com", partenaire=DEACTIVATED_PARTNER_ID, date="2020-01-01"))[0] == -428


def test_english_field_names_are_accepted(shared: SpartooSandbox, client: httpx.Client) -> None:
    """`partner` and `status` work like `partenaire` and `statut`, over GET as over POST."""
    url = f"{shared.url}/com/mp/xml_export_orders.php"
    response = client.get(url, params={"partner": DEFAULT_PARTNER_ID, "date": "2000-01-01:00:00:00", "status": "2"})
    root = etree.fromstring(response.content)
    assert statut(root)[0] == 1
    statuses = {o.findtext("orders_status_id") for o in root.iter("order")}
    assert statuses == {"2"}


def test_other_scripts_and_unknown_sites(shared: SpartooSandbox, client: httpx.Client) -> None:
    """An unimplemented script answers statut -404 (HTTP 404); a site the sandbox does not serve is a plain 404."""
    response = client.post(f"{shared.url}/com/mp/xml_export_bl.php", data={"partenaire": DEFAULT_PARTNER_ID})
    assert response.status_code == 404
    assert statut(etree.fromstring(response.content))[0] == -404
    assert client.post(f"{shared.url}/fr/mp/xml_export_orders.php").status_code == 404


def test_export_needs_date_or_oid_and_a_valid_date(shared: SpartooSandbox, client: httpx.Client) -> None:
    """Export without date or oID, or with a malformed date, is refused with a negative statut."""
    assert statut(export(client, shared, "com"))[0] == -20
    assert statut(export(client, shared, "com", date="27/11/2011"))[0] == -21


# --------------------------------------------------------------------------- the export document


def test_export_document_has_spartoo_tags(shared: SpartooSandbox, client: httpx.Client) -> None:
    """The export is a well-formed <root> with statut 1 first and orders using exactly Spartoo's tag names."""
    root = export(client, shared, "com", date="2000-01-01:00:00:00")
    assert [child.tag for child in root] == ["statut", "orders"]
    assert statut(root) == (1, "OK")
    orders = root.findall("orders/order")
    assert len(orders) == sum(1 for o in shared.orders() if o["site"] == "com") > 50
    relay_seen = 0
    for order in orders:
        assert [c.tag for c in order] == ORDER_TAGS
        assert [c.tag for c in order.find("customers")] == CUSTOMER_TAGS
        delivery_tags = [c.tag for c in order.find("delivery")]
        assert set(delivery_tags) <= DELIVERY_TAGS and delivery_tags[:2] == ["delivery_firstname", "delivery_lastname"]
        relay = order.find("delivery/relay_info")
        if relay is not None:
            relay_seen += 1
            assert [c.tag for c in relay] == RELAY_TAGS
            assert len(relay.findtext("relay_country_iso")) == 2
        products = order.findall("products/product")
        assert 1 <= len(products) <= 5
        for product in products:
            assert [c.tag for c in product] == PRODUCT_TAGS
    assert relay_seen > 0


def test_date_filter_returns_orders_modified_since(shared: SpartooSandbox, client: httpx.Client) -> None:
    """`date` (Paris time) returns exactly the site's orders whose last_modified is at or after it."""
    rows = [o for o in shared.orders() if o["site"] == "com"]
    cut = sorted(o["last_modified"] for o in rows)[len(rows) // 2]
    expected = {o["orders_id"] for o in rows if o["last_modified"] >= cut}
    root = export(client, shared, "com", date=cut.replace(" ", ":"))
    got = {o.findtext("orders_id") for o in root.iter("order")}
    assert got == expected
    assert 0 < len(got) < len(rows)
    assert all(o.findtext("last_modified") >= cut for o in root.iter("order"))


def test_dates_are_paris_time() -> None:
    """Dates are written and read as Europe/Paris wall time (UTC+1 in winter, UTC+2 in summer)."""
    assert format_date(1_700_000_000) == "2023-11-14 23:13:20"  # 22:13:20 UTC
    assert format_date(1_750_000_000) == "2025-06-15 17:06:40"  # 15:06:40 UTC
    assert parse_request_date("2023-11-14:23:13:20") == 1_700_000_000
    assert parse_request_date("2025-06-15 17:06:40") == 1_750_000_000


def test_oid_lookup_is_per_site(shared: SpartooSandbox, client: httpx.Client) -> None:
    """oID returns that one order on its own site and nothing on another site."""
    row = next(o for o in shared.orders() if o["site"] == "it")
    root = export(client, shared, "it", oID=row["orders_id"])
    assert [o.findtext("orders_id") for o in root.iter("order")] == [row["orders_id"]]
    assert root.findtext("orders/order/orders_status_id") == row["status"]
    assert list(export(client, shared, "com", oID=row["orders_id"]).iter("order")) == []
    assert list(export(client, shared, "it", oID="FFFFFFFFFFFFFFFF").iter("order")) == []


def test_each_order_belongs_to_one_site(shared: SpartooSandbox, client: httpx.Client) -> None:
    """The per-site exports partition the orders: each site returns its own and together they cover all."""
    seen: Counter[str] = Counter()
    for site in shared.book.sites:
        for order in export(client, shared, site, date="2000-01-01:00:00:00").iter("order"):
            seen[f"{site}:{order.findtext('orders_id')}"] += 1
    assert set(seen) == {o["order_key"] for o in shared.orders()}
    assert max(seen.values()) == 1
    assert len({k.split(":")[0] for k in seen}) >= 6


def test_catalogue_export_has_photos_and_ean_per_size(shared: SpartooSandbox, client: httpx.Client) -> None:
    """xml_export_products lists products with photos url1.., product_url and size_list/size/{...,ean}."""
    root = call(client, shared, "com", "xml_export_products.php", partenaire=DEFAULT_PARTNER_ID)
    assert statut(root)[0] == 1
    products = root.findall("products/product")
    assert len(products) == len(shared.book.catalogue)
    for product in products:
        assert product.findtext("photos/url1").startswith("https://")
        assert product.findtext("product_url").startswith("https://")
        sizes = product.findall("size_list/size")
        assert sizes
        for size in sizes:
            assert [c.tag for c in size] == ["size_name", "size_quantity", "size_reference", "ean"]
            ean = size.findtext("ean")
            digits = [int(d) for d in ean]
            assert len(ean) == 13 and sum(d * (3 if i % 2 else 1) for i, d in enumerate(digits)) % 10 == 0


# --------------------------------------------------------------------------- status updates


def _key_with_status(sb: SpartooSandbox, status: str) -> str:
    return next(o["order_key"] for o in sb.orders() if o["status"] == status)


def test_accept_ship_and_idempotent_reship(sandbox: SpartooSandbox, client: httpx.Client) -> None:
    """11 -> 2 -> 3 works; re-sending 2 or the same shipment is a success that changes nothing."""
    key = _key_with_status(sandbox, "11")
    assert update(client, sandbox, key, "3", tracking_number="TRK1")[0] == -13  # 3 only from 2
    assert update(client, sandbox, key, "2")[0] == 1
    assert update(client, sandbox, key, "2")[0] == 1  # already accepted: harmless
    assert update(client, sandbox, key, "3")[0] == -14  # tracking number required
    code, text = update(client, sandbox, key, "3", tracking_number="TRK1")
    assert code == 1 and "updated" in text
    code, text = update(client, sandbox, key, "3", tracking_number="TRK1")
    assert code == 1 and "unchanged" in text
    assert update(client, sandbox, key, "3", tracking_number="OTHER")[0] == -15
    row = admin_row(sandbox, key)
    assert (row["status"], row["tracking_number"], row["update_count"]) == ("3", "TRK1", 2)
    assert row["update_requests"] == 7


def test_repeated_exports_show_the_current_status(sandbox: SpartooSandbox, client: httpx.Client) -> None:
    """An order exported, then shipped, is exported again with its new status and tracking number."""
    key = _key_with_status(sandbox, "2")
    site, _, oid = key.partition(":")
    first = export(client, sandbox, site, oID=oid)
    assert first.findtext("orders/order/orders_status_id") == "2"
    assert update(client, sandbox, key, "3", tracking_number="6A123")[0] == 1
    second = export(client, sandbox, site, oID=oid)
    assert second.findtext("orders/order/orders_status_id") == "3"
    assert second.findtext("orders/order/last_modified") > first.findtext("orders/order/last_modified")
    assert (
        sandbox.book.order_bytes(sandbox.book.index_of(oid))
        == sandbox.book.order_xml(sandbox.book.index_of(oid)).encode()
    )


def test_refused_transitions(sandbox: SpartooSandbox, client: httpx.Client) -> None:
    """Shipped orders cannot be cancelled, 41 is final, 45/47 cannot be set, 2 only from 11."""
    shipped = _key_with_status(sandbox, "3")
    assert update(client, sandbox, shipped, "41")[0] == -13
    assert update(client, sandbox, shipped, "2")[0] == -13
    assert update(client, sandbox, shipped, "45")[0] == -12
    assert update(client, sandbox, shipped, "47")[0] == -12
    new = _key_with_status(sandbox, "11")
    assert update(client, sandbox, new, "41")[0] == 1
    assert update(client, sandbox, new, "41")[0] == 1  # cancelling again: harmless
    assert update(client, sandbox, new, "2")[0] == -13
    assert admin_row(sandbox, new)["update_count"] == 1
    assert admin_row(sandbox, shipped)["update_count"] == 0
    site, _, oid = new.partition(":")
    other = next(s for s in sandbox.book.sites if s != site)
    root = call(client, sandbox, other, "xml_maj_orders.php", partenaire=DEFAULT_PARTNER_ID, oID=oid, statut="2")
    assert statut(root)[0] == -11  # the order is not on that site


def test_update_bumps_last_modified(sandbox: SpartooSandbox, client: httpx.Client) -> None:
    """An accepted order shows up again in an export asked from just before the update."""
    key = _key_with_status(sandbox, "11")
    site, _, oid = key.partition(":")
    since = format_date(int(time.time()) - 1).replace(" ", ":")
    before = {o.findtext("orders_id") for o in export(client, sandbox, site, date=since).iter("order")}
    assert oid not in before
    assert update(client, sandbox, key, "2")[0] == 1
    after = export(client, sandbox, site, date=since)
    order = next(o for o in after.iter("order") if o.findtext("orders_id") == oid)
    assert order.findtext("orders_status_id") == "2"
    assert order.findtext("orders_status_name") in {"En cours de préparation", "Preparation in progress"}


# --------------------------------------------------------------------------- quota and faults


def test_hourly_quota_answers_minus_429() -> None:
    """Past its hourly quota a partner gets -429; another partner keeps its own quota."""
    other = "ABCDEF0123456789"
    with SpartooSandbox(orders=5, quota_per_hour=2, partner_ids=[DEFAULT_PARTNER_ID, other]) as sb, httpx.Client() as c:
        codes = [statut(export(c, sb, "com", date="2000-01-01"))[0] for _ in range(3)]
        assert codes == [1, 1, -429]
        assert statut(export(c, sb, "com", date="2000-01-01", partenaire=other))[0] == 1


def test_injected_quota_fault(sandbox: SpartooSandbox, client: httpx.Client) -> None:
    """quota_rate=1 answers every script with the -429 envelope and counts it."""
    sandbox.set_faults(quota_rate=1.0)
    assert statut(export(client, sandbox, "com", date="2000-01-01"))[0] == -429
    assert sandbox.counters()["faults"]["quota"] == 1


def test_injected_http_errors(sandbox: SpartooSandbox, client: httpx.Client) -> None:
    """error_rate=1 answers HTTP 500 or 503; admin endpoints are never faulted."""
    sandbox.set_faults(error_rate=1.0, latency=1)
    codes = {client.post(f"{sandbox.url}/com/mp/xml_export_orders.php").status_code for _ in range(12)}
    assert codes <= {500, 503} and codes
    assert client.get(f"{sandbox.url}/_admin/counters").json()["faults"]["error"] == 12
    assert sandbox.counters()["faults"]["latency"] == 12


def test_injected_dropped_connection(sandbox: SpartooSandbox, client: httpx.Client) -> None:
    """drop_rate=1 closes the connection with no answer: httpx raises RemoteProtocolError."""
    sandbox.set_faults(drop_rate=1.0)
    with pytest.raises(httpx.RemoteProtocolError):
        client.post(f"{sandbox.url}/com/mp/xml_export_orders.php", data={"partenaire": DEFAULT_PARTNER_ID})
    sandbox.set_faults(drop_rate=0.0)
    assert statut(export(client, sandbox, "com", date="2000-01-01"))[0] == 1
    assert sandbox.counters()["faults"]["drop"] == 1


def test_injected_malformed_order(sandbox: SpartooSandbox, client: httpx.Client) -> None:
    """malformed_rate=1 breaks exactly one order per export while the document stays well-formed."""
    sandbox.set_faults(malformed_rate=1.0)
    root = export(client, sandbox, "com", date="2000-01-01")
    qtys = [p.findtext("products_qty") for o in root.iter("order") for p in o.iter("product")]
    assert sum(not q.isdigit() for q in qtys) == 1
    broken = [o for o in root.iter("order") if o.findtext("order_total") == "N/A"]
    assert len(broken) == 1
    assert sandbox.counters()["malformed_orders"] == ["com:" + broken[0].findtext("orders_id")]


def test_fault_rates_are_validated(sandbox: SpartooSandbox, client: httpx.Client) -> None:
    """Bad fault values are refused (Python and HTTP); set_faults sets exactly what it is given, () clears all."""
    for bad in ({"error_rate": 1.5}, {"drop_rate": -0.1}, {"latency": -1}, {"typo_rate": 0.5}):
        with pytest.raises(ValueError):
            sandbox.set_faults(**bad)
    response = client.post(f"{sandbox.url}/_admin/faults", json={"malformed_rate": 2})
    assert response.status_code == 400 and "between 0 and 1" in response.json()["error"]
    response = client.post(f"{sandbox.url}/_admin/faults", json={"malformed_rate": 0.25, "latency": 3})
    assert response.json()["malformed_rate"] == 0.25
    sandbox.set_faults(drop_rate=0.5)
    assert client.get(f"{sandbox.url}/_admin/faults").json() == {
        "error_rate": 0.0, "drop_rate": 0.5, "malformed_rate": 0.0, "quota_rate": 0.0, "latency": 0.0,
    }  # fmt: skip
    sandbox.set_faults()
    assert set(client.get(f"{sandbox.url}/_admin/faults").json().values()) == {0.0}


# --------------------------------------------------------------------------- admin API and protocol


def test_admin_orders_add_and_list(sandbox: SpartooSandbox, client: httpx.Client) -> None:
    """POST /_admin/orders?count=N creates N status-11 orders dated now, visible in the next export."""
    before = client.get(f"{sandbox.url}/_admin/orders").json()
    keys = client.post(f"{sandbox.url}/_admin/orders", params={"count": 4}).json()["order_keys"]
    after = client.get(f"{sandbox.url}/_admin/orders").json()
    assert len(after) == len(before) + 4
    rows = {r["order_key"]: r for r in after}
    assert all(rows[k]["status"] == "11" and rows[k]["update_count"] == 0 for k in keys)
    since = format_date(int(time.time()) - 5).replace(" ", ":")
    for key in keys:
        site, _, oid = key.partition(":")
        assert oid in {o.findtext("orders_id") for o in export(client, sandbox, site, date=since).iter("order")}
    assert client.post(f"{sandbox.url}/_admin/orders", params={"count": "-1"}).status_code == 400


def test_sandbox_protocol_settings(sandbox: SpartooSandbox, client: httpx.Client) -> None:
    """settings() reaches the sandbox with good credentials, bad_settings() with refused ones."""
    good, bad = sandbox.settings(), sandbox.bad_settings()
    assert good["base_url"] == f"{sandbox.url}/{{site}}/mp/"
    assert good["sites"] == list(SITES)
    for settings, expected in ((good, 1), (bad, -2)):
        url = settings["base_url"].format(site="de") + "xml_export_orders.php"
        root = etree.fromstring(
            client.post(url, data={"partenaire": settings["partner_id"], "date": "2030-01-01"}).content
        )
        assert statut(root)[0] == expected
    keys = sandbox.add_orders(2)
    assert [admin_row(sandbox, k)["valid"] in (True, False) for k in keys] == [True, True]
    assert set(sandbox.orders()[0]) >= {"order_key", "status", "tracking_number", "update_count", "valid"}


def test_start_stop_leaves_no_thread() -> None:
    """The factory's context manager starts a server on a free loopback port and stops its thread on exit."""
    before = {t.ident for t in threading.enumerate()}
    with sandbox_factory(orders=3, seed=2) as sb:
        assert sb.url.startswith("http://127.0.0.1:") and not sb.url.endswith(":0")
        with httpx.Client() as c:
            assert c.get(f"{sb.url}/_admin/").json()["orders"] == 3
    assert {t.ident for t in threading.enumerate() if t.is_alive()} <= before
    with pytest.raises(httpx.ConnectError), httpx.Client() as c:
        c.get(f"{sb.url}/_admin/")


# --------------------------------------------------------------------------- generated data


def test_same_seed_same_orders() -> None:
    """The same seed and anchor give byte-identical orders; another seed gives other orders."""
    a, b, c = (OrderBook(seed, 200, anchor=ANCHOR) for seed in (3, 3, 4))
    assert [a.order_xml(i) for i in range(200)] == [b.order_xml(i) for i in range(200)]
    assert a.orders_id(0) != c.orders_id(0)
    assert a.order_xml(7) != c.order_xml(7)


def test_order_ids_are_invertible_and_unique() -> None:
    """Every orders_id is 16 hex digits, unique, and maps back to its index; foreign ids map to nothing."""
    book = OrderBook(9, 5000, anchor=ANCHOR)
    ids = [book.orders_id(i) for i in range(5000)]
    assert len(set(ids)) == 5000
    assert all(len(i) == 16 and int(i, 16) >= 0 for i in ids)
    assert [book.index_of(i) for i in ids[:500]] == list(range(500))
    assert book.index_of(OrderBook(10, 10).orders_id(3)) is None
    assert book.index_of("not-hex") is None


def test_generated_orders_are_consistent_and_varied() -> None:
    """Totals add up, items come from the catalogue, and the data mixes sites, scripts, countries and forms."""
    book = OrderBook(21, 1500, anchor=ANCHOR)
    catalogue = {p.reference: p for p in book.catalogue}
    seen: Counter[str] = Counter()
    for i in range(len(book)):
        order = book.order(i)
        meta = order["_meta"]
        items = order["products"]["product"]
        seen[f"items{len(items)}"] += 1
        goods = Decimal(0)
        for item in items:
            product = catalogue[item["products_reference"]]
            size = next(s for s in product.sizes if s[0] == item["products_size"])
            assert item["products_size_reference"] in ("", size[1])
            unit, reduced = Decimal(item["products_price_unit"]), Decimal(item["products_price_unit_with_reduce"])
            assert reduced <= unit
            seen["discount"] += reduced < unit
            assert Decimal(item["products_final_price"]) == reduced * int(item["products_qty"])
            goods += Decimal(item["products_final_price"])
        total = goods + Decimal(order["shipping_price"]) + Decimal(order["payment_price"])
        assert Decimal(order["order_total"]) == total
        seen["fee"] += Decimal(order["payment_price"]) > 0
        seen[meta["currency"]] += 1
        delivery = order["delivery"]
        seen["relay"] += "relay_info" in delivery
        assert meta["valid"] == bool(delivery["delivery_street_address"]) == book.valid(i)
        country = order["customers"]["customers_country"]
        seen["iso" if len(country) == 2 else "name"] += 1
        seen["french_name"] += country in {"Italie", "Allemagne", "Espagne", "Pologne", "Suède", "Grèce", "Suisse"}
        name = order["customers"]["customers_firstname"] + order["customers"]["customers_lastname"]
        seen["non_latin"] += any(ord(ch) > 0x370 for ch in name)
        seen["accented"] += any(0xC0 <= ord(ch) <= 0x17F for ch in name)
        seen["leading_zero"] += order["customers"]["customers_postcode"].startswith("0")
        seen["empty_company"] += order["customers"]["customers_company"] == ""
        seen["intl_phone"] += order["customers"]["customers_telephone"].startswith(("+", "00"))
    assert {"EUR", "GBP", "SEK", "PLN", "CHF"} <= set(seen)
    assert 2.6 < sum(int(k[5:]) * v for k, v in seen.items() if k.startswith("items")) / len(book) < 3.4
    for feature in ("discount", "fee", "relay", "iso", "name", "french_name", "non_latin", "accented",
                    "leading_zero", "empty_company", "intl_phone"):  # fmt: skip
        assert seen[feature] > 0, feature
    invalid = sum(not book.valid(i) for i in range(len(book)))
    assert 0.01 * len(book) < invalid < 0.1 * len(book)


def test_large_export_streams_every_order(client: httpx.Client) -> None:
    """A 20,000-order export arrives in many chunks and parses as one document holding every order."""
    with SpartooSandbox(orders=20_000, seed=8, sites=["com"], anchor=ANCHOR) as sb:
        chunks = 0
        buffer = BytesIO()
        with client.stream("POST", f"{sb.url}/com/mp/xml_export_orders.php",
                           data={"partenaire": DEFAULT_PARTNER_ID, "date": "2000-01-01"}) as response:  # fmt: skip
            for chunk in response.iter_raw():
                chunks += 1
                buffer.write(chunk)
        buffer.seek(0)
        count = sum(1 for _ in etree.iterparse(buffer, tag="order"))
    assert count == 20_000
    assert chunks > 100


# --------------------------------------------------------------------------- hooks and CLI


def test_hooks_register_factory_and_command() -> None:
    """The plugin's entry point exposes the sandbox factory, and the command lands in a `sandbox` group."""
    host = PluginHost.create()
    assert host.sandbox_factory("spartoo") is sandbox_factory
    bare = click.Group("bare")
    hooks.register_commands(cli=bare)
    group = bare.commands["sandbox"]
    assert isinstance(group, click.Group) and group.commands["spartoo"] is hooks.spartoo_sandbox
    existing = click.Group("host", commands=[click.Group("sandbox")])
    hooks.register_commands(cli=existing)
    assert "spartoo" in existing.commands["sandbox"].commands  # type: ignore[attr-defined]


def test_cli_refuses_bad_rates_and_sites() -> None:
    """`sandbox spartoo` refuses a rate above 1 and an unknown site before serving anything."""
    runner = CliRunner()
    result = runner.invoke(hooks.spartoo_sandbox, ["--error-rate", "1.5"])
    assert result.exit_code == 2 and "between 0 and 1" in result.output
    result = runner.invoke(hooks.spartoo_sandbox, ["--sites", "com,fr"])
    assert result.exit_code == 2 and "unknown site(s) fr" in result.output
