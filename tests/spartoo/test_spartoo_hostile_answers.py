"""Hostile Spartoo answers: absurd values, unbounded shapes, broken starts, duplicates and stray orders."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import attrs
import httpx
import pytest
from connector_spartoo.client import SpartooClient
from connector_spartoo.settings import SpartooSettings
from connector_spartoo.xmlstream import OrderStream
from fake_spartoo import BASE, PARTNER, FakeSpartoo
from spartoo_docs import document, simple_order

from connector_core.db import OrderBook
from connector_core.engine import Engine
from connector_core.errors import HostileInputError
from connector_core.http import HttpPolicy, RetryingClient
from connector_core.plugins import PluginHost, get_plugin_manager
from connector_core.store_context import StoreContext

POLICY = HttpPolicy(max_attempts=3, backoff_base=0.001, backoff_max=0.01)


def _host() -> PluginHost:
    import connector_spartoo.plugin

    return PluginHost(get_plugin_manager(plugins=[connector_spartoo.plugin], load_entrypoints=False, disabled=()))


class _OnFake(Engine):
    """An engine whose stores reach the in-process fake Spartoo (only the transport is swapped)."""

    fake: FakeSpartoo

    def store_context(self, store_name: str) -> StoreContext:
        ctx = super().store_context(store_name)
        ctx.http.close()
        return attrs.evolve(ctx, http=RetryingClient(self.http_policy, transport=self.fake.transport()))


@pytest.fixture
def fake() -> FakeSpartoo:
    return FakeSpartoo()


@pytest.fixture
def engine(fake: FakeSpartoo, tmp_path: Path) -> Iterator[_OnFake]:
    with OrderBook(tmp_path / "book.sqlite3") as book:
        book.add_store("shop", "spartoo", {"partner_id": PARTNER, "base_url": BASE, "sites": ["com"]})
        engine = _OnFake(_host(), book, http_policy=POLICY)
        engine.fake = fake
        yield engine


def _export(fake: FakeSpartoo, body: bytes) -> None:
    """Answer every date export of com with ``body`` (oID lookups and accepts still reach the fake)."""

    def answer(site: str, script: str, form: dict[str, str]) -> httpx.Response | None:
        if script == "xml_export_orders.php" and "date" in form and not form["date"].startswith("2999"):
            return httpx.Response(200, content=body)
        return None

    fake.before.append(answer)


def test_absurd_values_are_quarantine_reasons_of_that_order_alone(engine: _OnFake, fake: FakeSpartoo) -> None:
    """A 21-digit quantity, a NaN price and a price of 10^30 quarantine three orders; the fourth is stored."""
    orders = [simple_order(f"Q{i}") for i in range(4)]
    orders[0] = orders[0].replace(
        "<products_qty>1</products_qty>", "<products_qty>123456789012345678901</products_qty>"
    )
    orders[1] = orders[1].replace("<products_price_unit>20.00<", "<products_price_unit>NaN<")
    orders[2] = orders[2].replace("<order_total>20.00<", "<order_total>1000000000000000000000000000000<")
    for i in range(4):
        fake.add("com", f"Q{i}")
    _export(fake, document(*orders))
    report = engine.sync("shop")
    assert (report.inserted, report.rejected) == (1, 3)
    reasons = {r.order_key: r.reason for r in engine.book.list_rejected(store="shop")}
    assert "beyond any plausible quantity" in reasons["com:Q0"]
    assert "products_price_unit 'NaN' is not an amount" in reasons["com:Q1"]
    assert "beyond any plausible amount" in reasons["com:Q2"]


def test_a_malformed_document_is_a_visible_failure_of_that_site(engine: _OnFake, fake: FakeSpartoo) -> None:
    """One bad byte right after <orders>: the sync reports the site's failure (non-zero exit), never a silent zero."""
    body = document(simple_order("B1")).replace(b"<orders>", b"<orders>\x01", 1)
    _export(fake, body)
    report = engine.sync("shop")
    assert report.inserted == 0
    [failure] = report.failures
    assert "Spartoo site com" in failure and "could not be read to its end" in failure
    assert engine.book.get_cursor("shop") is None  # the cursor stays: the next sync asks again


def test_duplicate_orders_id_in_one_answer_last_occurrence_wins_for_order_and_raw(
    engine: _OnFake, fake: FakeSpartoo
) -> None:
    """The same orders_id twice (status 2, then 41): the stored order and its raw copy both say cancelled (41)."""
    fake.add("com", "D1", "41")
    _export(fake, document(simple_order("D1", "2"), simple_order("D1", "41")))
    report = engine.sync("shop")
    assert report.inserted == 1
    order = engine.book.get_order("shop", "com:D1")
    assert (order.status.value, order.marketplace_status.code) == ("cancelled", "41")
    raw = engine.book.conn.execute("SELECT raw FROM orders WHERE order_key = 'com:D1'").fetchone()[0]
    assert json.loads(raw)["orders_status_id"] == "41"


def test_an_order_outside_orders_is_never_dropped_unseen(engine: _OnFake, fake: FakeSpartoo) -> None:
    """<order> under another element is quarantined with its id, fetched again by oID and imported."""
    fake.add("com", "S1", "2")
    fake.add("com", "S2", "2")
    body = document(simple_order("S1", "2")).replace(
        b"</orders>", b"</orders><extra>" + simple_order("S2", "2").encode() + b"</extra>"
    )
    _export(fake, body)
    engine.sync("shop")
    assert engine.book.has_order("shop", "com:S2")
    [reject] = engine.book.list_rejected(store="shop")
    assert reject.order_key == "com:S2" and "outside <orders>" in reject.reason and reject.retried_at


def _largest_tree(chunks: list[bytes], seen: list[int], stream: OrderStream) -> Iterator[bytes]:
    for chunk in chunks:
        yield chunk
        if stream.root is not None:
            seen.append(sum(1 for _ in stream.root.iter()))


def test_elements_other_than_orders_are_freed_as_they_are_read() -> None:
    """A <junk> of 100,000 children before <orders>: the partial tree never holds more than a few hundred elements."""
    junk = b"<junk>" + b"<x><y>1</y></x>" * 100_000 + b"</junk>"
    body = document(simple_order("M1")).replace(b"<root>", b"<root>" + junk, 1)
    chunks = [body[i : i + 16384] for i in range(0, len(body), 16384)]
    seen: list[int] = []
    holder: list[OrderStream] = []

    def feed() -> Iterator[bytes]:
        yield from _largest_tree(chunks, seen, holder[0])

    stream = OrderStream(feed(), site="com")
    holder.append(stream)
    items = list(stream)
    assert [i["orders_id"] for i in items if isinstance(i, dict)] == ["M1"]
    assert stream.complete and len(seen) > 50
    assert max(seen) < 2_000  # the whole junk would be 200,000 elements


def _streamed(total_mb: int, sent: list[int]) -> httpx.MockTransport:
    def body() -> Iterator[bytes]:
        yield b'<?xml version="1.0"?><root><statut><id>1</id></statut><products>'
        for _ in range(total_mb):
            sent.append(1)
            yield b" " * (1024 * 1024)

    return httpx.MockTransport(lambda request: httpx.Response(200, content=body()))


def test_an_accept_answer_is_refused_past_its_cap_before_it_is_read_whole() -> None:
    """A 64 MB answer to xml_maj_orders (cap 16 MB) raises HostileInputError after reading about 17 MB of it."""
    sent: list[int] = []
    settings = SpartooSettings.from_dict({"partner_id": PARTNER, "base_url": BASE})
    client = SpartooClient(settings, RetryingClient(POLICY, transport=_streamed(64, sent)))
    with pytest.raises(HostileInputError, match="cap"):
        client.update_order("com", "A1", "2")
    assert len(sent) <= 18
    client.http.close()


def test_a_catalogue_answer_is_streamed_under_the_store_cap() -> None:
    """A 64 MB catalogue answer with an 8 MB cap is refused after reading about 9 MB of it."""
    sent: list[int] = []
    settings = SpartooSettings.from_dict({"partner_id": PARTNER, "base_url": BASE})
    client = SpartooClient(settings, RetryingClient(POLICY, transport=_streamed(64, sent)), max_bytes=8 * 1024 * 1024)
    with pytest.raises(HostileInputError, match="cap"):
        list(client.export_products("com"))
    assert len(sent) <= 10
    client.http.close()
