"""The operator web app over the PostgreSQL book: connect a store, sync, list and open orders, ship."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "web"))

from connector_spartoo.sandbox.server import SpartooSandbox
from web_support import Web, make_web


@pytest.fixture
def web(pg_url: str) -> Iterator[Web]:
    from connector_core.plugins import PluginHost, get_plugin_manager

    yield from make_web(pg_url, PluginHost(get_plugin_manager()))  # type: ignore[arg-type]


def test_connect_sync_and_list_orders_on_postgresql(web: Web) -> None:
    with SpartooSandbox(orders=6, sites=["com"], seed=3) as sandbox:
        web.login()
        page = web.connect_spartoo(sandbox.settings())
        assert page.status_code == 200 and page.url.path == "/stores/sp/settings"
        sync = web.post("/stores/sp/sync", {"back": "/stores/sp"})
        assert "sync of sp:" in sync.text
    with web.book() as book:
        keys = [o.order_key for o in book.list_orders(store="sp")]
        email = book.get_order("sp", keys[0]).customer.email
    assert keys and email
    orders = web.client.get("/orders")
    assert orders.status_code == 200
    assert all(key in orders.text for key in keys)
    one = web.client.get(f"/orders/{keys[0]}", params={"store": "sp"})
    assert one.status_code == 200 and keys[0] in one.text
    assert web.client.get("/stores/sp").status_code == 200
    # the search ignores case on PostgreSQL too (its LIKE does not by itself)
    found = web.client.get("/orders", params={"q": email.upper()})
    assert found.status_code == 200 and keys[0] in found.text
    none = web.client.get("/orders", params={"q": "NO-SUCH-BUYER"})
    assert none.status_code == 200 and not any(key in none.text for key in keys)
