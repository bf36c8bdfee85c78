"""Spartoo settings, client and hooks against an in-process Spartoo (httpx.MockTransport)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from connector_spartoo import plugin
from connector_spartoo.settings import SpartooSettings
from connector_spartoo.xmlstream import AUTH_MESSAGE
from fake_spartoo import PARTNER, FakeSpartoo, make_store
from spartoo_docs import document, envelope, simple_order

from connector_core.errors import AuthError, ConfigError, QuotaError, SettingsError, TransitionError
from connector_core.models import FieldOutcome, Order, RawReject, Shipment, Support
from connector_core.store_context import StoreContext


@pytest.fixture
def fake() -> FakeSpartoo:
    return FakeSpartoo()


@pytest.fixture
def store(fake: FakeSpartoo) -> Iterator[StoreContext]:
    ctx = make_store(fake, sites=["com", "it"])
    yield ctx
    ctx.http.close()


def _order(store: StoreContext, fake: FakeSpartoo, site: str, oid: str) -> Order:
    """Import one order of the fake through fetch + map, as the host would."""
    for page in plugin.fetch_orders(store=store, since=None):
        for raw in page.orders:
            if raw.order_key == f"{site}:{oid}":
                return plugin.map_order(store=store, raw=raw)
    raise AssertionError(f"{site}:{oid} not exported")


# -- settings -------------------------------------------------------------------


def test_settings_defaults_and_repr() -> None:
    """Absent keys take their defaults and the partner ID is not in the repr."""
    s = SpartooSettings.from_dict({"partner_id": PARTNER})
    assert (s.sites, s.base_url, s.timezone, s.auto_accept, s.timeout) == (
        ("com",),
        "https://sws.spartoo.{site}/mp/",
        "Europe/Paris",
        True,
        30.0,
    )
    assert PARTNER not in repr(s)
    assert s.url("com", "xml_export_orders.php") == "https://sws.spartoo.com/mp/xml_export_orders.php"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, "partner_id is missing"),
        ({"partner_id": PARTNER, "sites": ["fr"]}, "unknown Spartoo site"),
        ({"partner_id": PARTNER, "sites": []}, "at least one"),
        ({"partner_id": PARTNER, "timezone": "Mars/Olympus"}, "IANA"),
        ({"partner_id": PARTNER, "base_url": "https://x.example/mp/"}, "{site}"),
        ({"partner_id": PARTNER, "colour": "red"}, "unknown Spartoo setting"),
        ({"partner_id": PARTNER, "initial_lookback_days": 3651}, "between 1 and 3650"),
    ],
)
def test_settings_refused(settings: dict[str, object], message: str) -> None:
    """Bad settings raise SettingsError naming what to fix."""
    with pytest.raises(SettingsError, match=message.replace("{", r"\{").replace("}", r"\}")):
        SpartooSettings.from_dict(settings)


def test_plain_http_only_on_loopback() -> None:
    """Plain HTTP is refused for a remote host and allowed on loopback."""
    with pytest.raises(ConfigError, match="plain HTTP"):
        SpartooSettings.from_dict({"partner_id": PARTNER, "base_url": "http://sws.spartoo.{site}/mp/"})
    s = SpartooSettings.from_dict({"partner_id": PARTNER, "base_url": "http://127.0.0.1:8080/{site}/mp"})
    assert s.url("com", "x.php") == "http://127.0.0.1:8080/com/mp/x.php"


def test_settings_schema_flags_the_secret() -> None:
    """The settings schema marks partner_id x-secret, forbids extra keys and carries the defaults."""
    schema = plugin.marketplace_info().settings_schema
    assert schema["properties"]["partner_id"]["x-secret"] is True
    assert schema["additionalProperties"] is False
    assert schema["properties"]["base_url"]["default"] == "https://sws.spartoo.{site}/mp/"
    assert schema["properties"]["sites"]["default"] == ["com"]


# -- connect ----------------------------------------------------------------------


def test_connect_checks_every_site(fake: FakeSpartoo, store: StoreContext) -> None:
    """connect calls each site once with partenaire and a Paris-time date, and names the sites."""
    result = plugin.connect(store=store)
    assert result.account == "Spartoo (2 sites: com, it)"
    assert PARTNER not in repr(result)
    assert [site for site, _, _ in fake.requests] == ["com", "it"]
    form = fake.requests[0][2]
    assert form["partenaire"] == PARTNER
    sent = datetime.strptime(form["date"], "%Y-%m-%d:%H:%M:%S")
    paris_now = datetime.now(UTC).astimezone(SpartooSettings.from_dict({"partner_id": "x" * 8}).zone)
    tomorrow = (paris_now + timedelta(days=1)).replace(tzinfo=None)  # an empty window: nothing to miss
    assert abs(sent - tomorrow) < timedelta(minutes=5)


def test_bad_partner_id(fake: FakeSpartoo, caplog: pytest.LogCaptureFixture) -> None:
    """A refused partner ID raises AuthError with the documented message and leaks nowhere."""
    bad = "BADBADBADBAD0001"
    ctx = make_store(fake, partner_id=bad)
    caplog.set_level(logging.DEBUG)
    try:
        with pytest.raises(AuthError) as info:
            plugin.connect(store=ctx)
    finally:
        ctx.http.close()
    assert str(info.value) == AUTH_MESSAGE
    assert bad not in caplog.text and bad not in repr(info.value)


# -- fetch ------------------------------------------------------------------------


def test_fetch_pages_and_per_site_cursor(
    fake: FakeSpartoo, store: StoreContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Orders come in pages; each site's cursor arrives only on that site's last page."""
    monkeypatch.setattr(plugin, "PAGE_SIZE", 2)
    for i in range(3):
        fake.add("com", f"C{i}")
    fake.add("it", "I0")
    before = datetime.now(UTC)
    pages = list(plugin.fetch_orders(store=store, since=None))
    assert [[o.order_key for o in p.orders] for p in pages] == [["com:C0", "com:C1"], ["com:C2"], ["it:I0"]]
    assert pages[0].cursor is None
    assert set(pages[1].cursor) == {"com"}
    assert set(pages[2].cursor) == {"com", "it"}
    assert pages[2].cursor["com"] == pages[1].cursor["com"]
    started = datetime.fromisoformat(pages[2].cursor["it"].replace("Z", "+00:00"))
    assert before <= started <= datetime.now(UTC)
    assert all(o.site == o.order_key.split(":")[0] for p in pages for o in p.orders)
    # first sync: 30 days back
    first = datetime.strptime(fake.scripts("xml_export_orders.php")[0]["date"], "%Y-%m-%d:%H:%M:%S")
    expected = (before - timedelta(days=30)).astimezone(SpartooSettings.from_dict({"partner_id": "x" * 8}).zone)
    assert abs(first - expected.replace(tzinfo=None)) < timedelta(minutes=5)


def test_next_fetch_starts_at_cursor_minus_overlap(fake: FakeSpartoo, store: StoreContext) -> None:
    """With a cursor, the request date is cursor minus 10 minutes, in Paris time."""
    cursor = {"com": "2024-07-01T10:00:00Z", "it": "2024-01-01T10:00:00Z"}
    list(plugin.fetch_orders(store=store, since=cursor))
    dates = [f["date"] for f in fake.scripts("xml_export_orders.php")]
    assert dates == ["2024-07-01:11:50:00", "2024-01-01:10:50:00"]  # CEST +2 / CET +1, minus 10 min


def test_drops_before_first_order_are_retried_and_quota_is_raised(fake: FakeSpartoo, store: StoreContext) -> None:
    """Two dropped connections, then the answer: the export succeeds after retries; a -429 is raised, not retried."""
    fake.add("com", "C0")
    faults: list[bytes | None] = [None, None]

    def fault(site: str, script: str, form: dict[str, str]) -> httpx.Response | None:
        if script != "xml_export_orders.php" or site != "com" or not faults:
            return None
        answer = faults.pop(0)
        if answer is None:
            raise httpx.ReadError("connection reset")
        return httpx.Response(200, content=answer)

    fake.before.append(fault)
    pages = list(plugin.fetch_orders(store=store, since=None))
    assert [o.order_key for p in pages for o in p.orders] == ["com:C0"]
    assert store.http.retries == 2
    assert faults == []
    faults.append(envelope(-429, "quota"))
    with pytest.raises(QuotaError, match="-429"):
        list(plugin.fetch_orders(store=store, since=None))
    assert store.http.retries == 2


def test_malformed_export_keeps_orders_and_holds_the_cursor(fake: FakeSpartoo, store: StoreContext) -> None:
    """A malformed document yields the orders before the fault, one reject, and no new cursor for that site."""

    def broken(site: str, script: str, form: dict[str, str]) -> httpx.Response | None:
        if site == "com" and script == "xml_export_orders.php":
            body = document(simple_order("C0"), "<order><orders_id>C1</orders_id><oops</order>")
            return httpx.Response(200, content=body)
        return None

    fake.before.append(broken)
    fake.add("it", "I0")
    since = {"com": "2024-07-01T10:00:00Z"}
    pages = list(plugin.fetch_orders(store=store, since=since))
    com = pages[0]
    assert [o.order_key for o in com.orders] == ["com:C0"]
    assert len(com.rejects) == 1 and isinstance(com.rejects[0], RawReject)
    assert com.cursor is None
    assert pages[-1].cursor["com"] == "2024-07-01T10:00:00Z"  # unchanged
    assert "it" in pages[-1].cursor


# -- statuses, workflow -----------------------------------------------------------


def test_status_mapping_defaults_and_override(store: StoreContext) -> None:
    """Default mapping of the six Spartoo codes; a store's own mapping wins; unknown codes give None."""
    expected = {
        "11": "pending_fulfillment",
        "2": "awaiting_shipment",
        "3": "shipped",
        "41": "cancelled",
        "45": "on_hold",
        "47": "on_hold",
    }
    assert {c: plugin.map_status(store=store, marketplace_status=c) for c in expected} == expected
    assert plugin.map_status(store=store, marketplace_status="99") is None
    custom = StoreContext(name="s", marketplace="spartoo", settings=store.settings, status_map={"45": "cancelled"})
    assert plugin.map_status(store=custom, marketplace_status="45") == "cancelled"
    custom.http.close()


def test_auto_accept_only_new_orders(fake: FakeSpartoo, store: StoreContext) -> None:
    """should_auto_accept is true for status 11 with auto_accept on, false otherwise."""
    fake.add("com", "N1", "11")
    fake.add("com", "A1", "2")
    assert plugin.should_auto_accept(store=store, order=_order(store, fake, "com", "N1")) is True
    assert plugin.should_auto_accept(store=store, order=_order(store, fake, "com", "A1")) is False
    off = make_store(fake, auto_accept=False)
    assert plugin.should_auto_accept(store=off, order=_order(store, fake, "com", "N1")) is False
    off.http.close()


def test_accept_then_accept_again(fake: FakeSpartoo, store: StoreContext) -> None:
    """Accept sends statut=2 once; accepting an accepted order is already_applied without a call."""
    fake.add("com", "N1", "11")
    order = _order(store, fake, "com", "N1")
    change = plugin.accept_order(store=store, order=order)
    assert (change.marketplace_status.code, change.already_applied) == ("2", False)
    assert fake.orders[("com", "N1")]["status"] == "2"
    assert fake.scripts("xml_maj_orders.php") == [{"partenaire": PARTNER, "oID": "N1", "statut": "2"}]
    again = plugin.accept_order(store=store, order=_order(store, fake, "com", "N1"))
    assert again.already_applied is True and len(fake.scripts("xml_maj_orders.php")) == 1


def test_accept_stale_order_reports_spartoo_status(fake: FakeSpartoo, store: StoreContext) -> None:
    """Accepting an order the buyer cancelled meanwhile gives a TransitionError naming Spartoo's status."""
    fake.add("com", "N1", "11")
    order = _order(store, fake, "com", "N1")
    fake.orders[("com", "N1")]["status"] = "41"
    with pytest.raises(TransitionError, match=r"41 \(Cancellation Confirmed\)"):
        plugin.accept_order(store=store, order=order)


def test_accept_shipped_order_is_refused(fake: FakeSpartoo, store: StoreContext) -> None:
    """Accepting a shipped order is a TransitionError and sends nothing."""
    fake.add("com", "S1", "3")
    with pytest.raises(TransitionError, match="only orders in status 11"):
        plugin.accept_order(store=store, order=_order(store, fake, "com", "S1"))
    assert fake.scripts("xml_maj_orders.php") == []


def test_cancel(fake: FakeSpartoo, store: StoreContext) -> None:
    """Cancel sends statut=41; a shipped order cannot be cancelled; a cancelled one is already_applied."""
    fake.add("com", "N1", "2")
    fake.add("com", "S1", "3")
    change = plugin.cancel_order(store=store, order=_order(store, fake, "com", "N1"), reason="out of stock")
    assert change.marketplace_status.code == "41" and fake.orders[("com", "N1")]["status"] == "41"
    with pytest.raises(TransitionError, match="already shipped"):
        plugin.cancel_order(store=store, order=_order(store, fake, "com", "S1"), reason=None)
    again = plugin.cancel_order(store=store, order=_order(store, fake, "com", "N1"), reason=None)
    assert again.already_applied is True


def _shipment(tracking: str, **kw: object) -> Shipment:
    return Shipment(store="shop", order_key="com:A1", tracking_number=tracking, ship_date=datetime.now(UTC), **kw)  # type: ignore[arg-type]


def test_push_shipment_field_by_field_and_repush(fake: FakeSpartoo, store: StoreContext) -> None:
    """Push sends statut=3 + tracking, reports unsupported fields, and a re-push changes nothing."""
    fake.add("com", "A1", "2")
    order = _order(store, fake, "com", "A1")
    shipment = _shipment("TRK123", carrier="Colissimo", service="", carrier_fee=Decimal("5.10"))
    result = plugin.push_shipment(store=store, order=order, shipment=shipment)
    assert result.accepted and not result.already_applied
    assert {f.field: f.outcome for f in result.fields} == {
        "status": FieldOutcome.SENT,
        "tracking_number": FieldOutcome.SENT,
        "carrier": FieldOutcome.UNSUPPORTED,
        "service": FieldOutcome.SKIPPED,
        "carrier_fee": FieldOutcome.UNSUPPORTED,
        "notes_to_buyer": FieldOutcome.SKIPPED,
    }
    assert [f.detail for f in result.fields if f.field == "carrier"] == [
        "Spartoo has no field for it; kept in the host"
    ]
    assert fake.orders[("com", "A1")] == {"status": "3", "tracking": "TRK123"}
    updates = fake.scripts("xml_maj_orders.php")
    assert updates == [{"partenaire": PARTNER, "oID": "A1", "statut": "3", "tracking_number": "TRK123"}]
    again = plugin.push_shipment(store=store, order=order, shipment=shipment)
    assert again.accepted and again.already_applied
    assert len(fake.scripts("xml_maj_orders.php")) == 1
    with pytest.raises(TransitionError, match="already shipped with tracking number TRK123"):
        plugin.push_shipment(store=store, order=order, shipment=_shipment("OTHER9"))


def test_push_new_order_accepts_first(fake: FakeSpartoo, store: StoreContext) -> None:
    """A shipment for a status-11 order accepts it (2) then ships it (3)."""
    fake.add("com", "A1", "11")
    result = plugin.push_shipment(store=store, order=_order(store, fake, "com", "A1"), shipment=_shipment("T1"))
    assert [f["statut"] for f in fake.scripts("xml_maj_orders.php")] == ["2", "3"]
    assert result.message is not None and "accepted" in result.message


def test_push_cancelled_order_is_refused(fake: FakeSpartoo, store: StoreContext) -> None:
    """Shipping a cancelled order raises TransitionError."""
    fake.add("com", "A1", "41")
    with pytest.raises(TransitionError, match="cannot ship"):
        plugin.push_shipment(store=store, order=_order(store, fake, "com", "A1"), shipment=_shipment("T1"))


def test_fetch_catalogue(fake: FakeSpartoo, store: StoreContext) -> None:
    """The catalogue export gives one entry per size reference with EAN, and one for the parent reference."""
    fake.products = (
        b"<root><products><product><products_reference>REF-B</products_reference>"
        b"<products_name>Bottine</products_name><product_url>https://www.spartoo.com/p.php</product_url>"
        b"<photos><url1>https://img.example/1.jpg</url1><url2>https://img.example/2.jpg</url2></photos>"
        b"<size_list><size><size_name>38</size_name><size_quantity>3</size_quantity>"
        b"<size_reference>REF-B-38</size_reference><ean>3700000000017</ean></size>"
        b"<size><size_name>39</size_name><size_quantity>0</size_quantity>"
        b"<size_reference>REF-B-39</size_reference><ean>3700000000024</ean></size></size_list>"
        b"</product></products></root>"
    )
    entries = list(plugin.fetch_catalogue(store=store))
    assert [(e.sku, e.ean, e.image_url, e.name) for e in entries] == [
        ("REF-B-38", "3700000000017", "https://img.example/1.jpg", "Bottine"),
        ("REF-B-39", "3700000000024", "https://img.example/1.jpg", "Bottine"),
        ("REF-B", None, "https://img.example/1.jpg", "Bottine"),
    ]


# -- description ------------------------------------------------------------------

SEED_FEATURES = {
    "connect",
    "import_only_with_shipping_address",
    "store_branding",
    "notification_preferences",
    "product_handling",
    "custom_status_mapping",
    "customer_email",
    "shipment_emails_to_customer",
    "customer_phone",
    "requested_shipping_service",
    "payment_method",
    "discounts",
    "gift",
    "internal_notes",
    "customer_notes",
    "order_weight",
    "item_weight",
    "item_image_url",
    "item_options",
    "item_warehouse_location",
    "shipment_status_update",
    "shipment_tracking_number",
    "shipment_carrier",
    "shipment_service",
    "shipment_carrier_fee",
    "shipment_notes_to_buyer",
}


def test_capability_table_is_complete_and_honest() -> None:
    """Every seed feature is listed once, with a reason, and Spartoo's gaps are marked honestly."""
    info = plugin.marketplace_info()
    table = {c.feature: c for c in info.capabilities}
    assert len(table) == len(info.capabilities)
    assert set(table) == SEED_FEATURES
    assert all(c.note for c in info.capabilities)
    support = {f: c.support for f, c in table.items()}
    for feature in ("gift", "customer_notes"):
        assert support[feature] is Support.NOT_OFFERED
    for feature in ("shipment_carrier", "shipment_service", "shipment_carrier_fee", "shipment_notes_to_buyer"):
        assert support[feature] is Support.NOT_OFFERED
    for feature in ("item_weight", "item_image_url", "item_warehouse_location", "order_weight"):
        assert support[feature] is Support.HOST
    for feature in ("shipment_status_update", "shipment_tracking_number", "connect", "discounts", "item_options"):
        assert support[feature] is Support.SUPPORTED


def test_marketplace_info_statuses_and_schema() -> None:
    """marketplace_info lists the six Spartoo statuses in English and ships the raw order schema."""
    info = plugin.marketplace_info()
    assert info.statuses == {
        "11": "Order Verified",
        "2": "Preparation in progress",
        "3": "Order Shipped",
        "41": "Cancellation Confirmed",
        "45": "Parcel Lost",
        "47": "Parcel not delivered, returned to Spartoo",
    }
    assert info.raw_schema is not None and info.raw_schema["required"] == ["orders_id", "products"]
