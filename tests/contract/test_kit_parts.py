"""The contract kit's parts on their own: run-time secrets, store.http bodies, I/O blocking, value comparison, scans."""

from __future__ import annotations

import base64
import json
import socket
import threading
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from connector_core.http import HttpPolicy, RetryingClient
from connector_core.models import Address, LineItem, MarketplaceStatus, Order
from connector_core.secrets import MASK, is_registered, redact
from connector_core.store_context import StoreContext
from connector_core.testing.purity import IOBlocked, no_io
from connector_core.testing.scan import Seen, leaks
from connector_core.testing.values import differences, minor_units, too_precise, totals_off


def test_store_secrets_add_redacts_everywhere() -> None:
    """A value registered with store.secrets.add is masked by redact() and known to the store; short ones are not."""
    store = StoreContext(name="s", marketplace="m", settings={})
    store.secrets.add("tok-3f9a1c77e2")
    store.secrets.add("abc")
    assert redact("Bearer tok-3f9a1c77e2 sent") == f"Bearer {MASK} sent"
    assert ("tok-3f9a1c77e2" in store.secrets, "abc" in store.secrets, is_registered("abc")) == (True, False, False)
    assert "tok-3f9a1c77e2" not in repr(store) + repr(store.secrets)


def test_store_cache_is_per_context() -> None:
    """Each StoreContext has its own cache dict, shared by the calls that get the same context."""
    one, two = (
        StoreContext(name="a", marketplace="m", settings={}),
        StoreContext(name="a", marketplace="m", settings={}),
    )
    one.cache["token"] = "x"
    assert (one.cache, two.cache) == ({"token": "x"}, {})


def _echo(request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "method": request.method,
            "type": request.headers.get("content-type"),
            "auth": request.headers.get("authorization"),
            "body": request.content.decode(),
        },
    )


def test_store_http_sends_json_raw_bodies_headers_and_any_verb() -> None:
    """store.http sends a JSON body, a raw XML body and headers, with PATCH and DELETE as well as POST."""
    client = RetryingClient(HttpPolicy(), transport=httpx.MockTransport(_echo))
    as_json = client.request("PATCH", "https://api.example/x", json={"qty": 2}, headers={"Authorization": "Bearer t"})
    raw = client.request("POST", "https://api.example/x", content="<a/>", headers={"Content-Type": "text/xml"})
    gone = client.request("DELETE", "https://api.example/x")
    assert as_json.json() == {"method": "PATCH", "type": "application/json", "auth": "Bearer t", "body": '{"qty":2}'}
    assert (raw.json()["type"], raw.json()["body"], gone.json()["method"]) == ("text/xml", "<a/>", "DELETE")


def test_store_http_refuses_two_bodies() -> None:
    """Giving both form data and a JSON body is a TypeError naming both."""
    client = RetryingClient(HttpPolicy(), transport=httpx.MockTransport(_echo))
    with pytest.raises(TypeError, match="data and json"):
        client.request("POST", "https://api.example/x", data={"a": "1"}, json={"a": 1})


def test_no_io_refuses_files_and_connections_in_its_thread_only(tmp_path: Path) -> None:
    """Inside no_io, open(), host lookups and connects raise and are recorded; another thread may still open files."""
    target = tmp_path / "f.txt"
    target.write_text("x")
    other: list[str] = []
    with no_io() as attempts:
        with pytest.raises(IOBlocked):
            target.read_text()
        with pytest.raises(IOBlocked):
            socket.create_connection(("127.0.0.1", 9), timeout=1)
        with socket.socket() as sock, pytest.raises(IOBlocked):
            sock.connect(("127.0.0.1", 9))
        thread = threading.Thread(target=lambda: other.append(target.read_text()))
        thread.start()
        thread.join(10)
    assert [a.split(" (")[0] for a in attempts] == [
        "opened a file",
        "looked up a host name",
        "opened a network connection",
    ]
    assert other == ["x"]
    assert target.read_text() == "x"


def test_minor_units_follow_iso_4217() -> None:
    """JPY has no minor unit, EUR two, KWD three; an unknown code has none known."""
    assert [minor_units(c) for c in ("JPY", "EUR", "KWD", "XXQ")] == [0, 2, 3, None]


def _order(currency: str, price: str, total: str) -> Order:
    return Order(
        store="s",
        marketplace="m",
        order_key="k",
        order_number="1",
        order_date=datetime(2024, 5, 1, tzinfo=UTC),
        status="awaiting_shipment",
        marketplace_status=MarketplaceStatus("x"),
        ship_to=Address(name="a"),
        currency=currency,
        items=[LineItem(line_key="1", sku=None, name="n", quantity=2, unit_price=price)],
        item_total=Decimal(price) * 2,
        total=total,
    )


def test_too_precise_money_is_named_per_field() -> None:
    """19.899999 EUR and 19.9 JPY have too many decimals; 1.990 KWD does not."""
    floaty = _order("EUR", str(Decimal(1990 / 100)), "39.80")
    assert [p.split(" = ")[0] for p in too_precise(floaty)] == ["item_total", "items[0].unit_price"]
    assert too_precise(_order("JPY", "19.9", "40")) != []
    assert too_precise(_order("KWD", "1.990", "3.980")) == []


def test_totals_that_do_not_add_up_are_named() -> None:
    """A total that is not items + shipping + fees is reported with the sum it should be."""
    assert totals_off(_order("EUR", "10.00", "20.00")) == []
    assert totals_off(_order("EUR", "10.00", "25.00")) == [
        "total 25.00 is not item_total + shipping + payment fee + tax - discounts = 20.00"
    ]


def test_differences_compare_money_exactly_and_dates_as_instants() -> None:
    """19.9 equals 19.90; 10:00+02:00 equals 08:00Z; a wrong item price and a shifted date are both shown."""
    got = {"total": "19.90", "order_date": "2024-05-01T08:00:00Z", "items": [{"unit_price": "9.95", "sku": "A"}]}
    same = {"total": "19.9", "order_date": "2024-05-01T10:00:00+02:00", "items": [{}]}
    wrong = {"total": "19.9", "order_date": "2024-05-01T08:00:00+02:00", "items": [{"unit_price": "9.96"}]}
    assert list(differences(same, got)) == []
    assert list(differences(wrong, got)) == [
        "order_date is the instant '2024-05-01T08:00:00Z' but should be '2024-05-01T08:00:00+02:00' (+2 h)",
        "items[0].unit_price is '9.95' but should be '9.96' (off by -0.01)",
    ]


def test_leaks_finds_secrets_in_their_encoded_forms() -> None:
    """A secret shows plain, URL-encoded or base64-encoded (a Basic header); the report hides it."""
    secret = "s3cr3t/value+1"
    seen = [
        Seen("log record of a at INFO", "GET /x?key=s3cr3t%2Fvalue%2B1"),
        Seen("an error", "Basic " + base64.b64encode(secret.encode()).decode()),
        Seen("standard output", json.dumps({"ok": True})),
    ]
    found = leaks(seen, [secret])
    assert found == [
        "log record of a at INFO shows a secret (s3… (14 characters))",
        "an error shows a secret (s3… (14 characters))",
    ]
    assert secret not in " ".join(found)
