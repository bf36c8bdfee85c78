"""Packing slips: a PDF per order and per selection, with SKUs and images; images bounded in time and size."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from decimal import Decimal

import pypdf
from web_support import ImageServer, Web

from connector_core import host_settings
from connector_core.db import OrderBook
from connector_core.models import Address, ItemOption, LineItem, MarketplaceStatus, Order
from connector_core.web.images import ImageFetcher
from connector_core.web.slips import SlipOrder, packing_slips


def _text(data: bytes) -> list[str]:
    reader = pypdf.PdfReader(io.BytesIO(data))
    return [page.extract_text() for page in reader.pages]


def _images(data: bytes) -> int:
    reader = pypdf.PdfReader(io.BytesIO(data))
    return sum(len(page.images) for page in reader.pages)


def _order(image_url: str | None, name: str = "Sandales Zéphyr") -> Order:
    return Order(
        store="sp",
        marketplace="spartoo",
        order_key="com:1",
        order_number="1001",
        order_date=datetime(2026, 12, 1, 10, tzinfo=UTC),
        status="awaiting_shipment",
        marketplace_status=MarketplaceStatus("2"),
        ship_to=Address(name="Maëlys Bélanger", street1="26 place du Marché", city="Ajaccio", country="FR"),
        currency="EUR",
        items=(
            LineItem(
                line_key="1",
                sku="ART-1-38",
                name=name,
                quantity=2,
                unit_price=Decimal("30"),
                image_url=image_url,
                options=(ItemOption("size", "38"),),
                warehouse_location="A-01-3",
            ),
        ),
        total=Decimal("60"),
        customer_notes="leave at the door",
    )


def test_a_slip_has_the_order_its_skus_and_its_branding(images: ImageServer) -> None:
    """The slip's text holds the shop name, order number, ship-to, SKU, quantity, location, options and notes."""
    settings = host_settings.load({"branding": {"display_name": "Chaussures Ana", "footer_text": "Merci !"}})
    slip = SlipOrder(order=_order(f"{images.url}/img/a.png"), settings=settings, notes_to_buyer="Thanks!")
    with ImageFetcher(allow_private=True) as fetcher:
        data = packing_slips([slip], fetcher)
    assert data.startswith(b"%PDF-")
    (text,) = _text(data)
    for expected in ("Chaussures Ana", "1001", "Maëlys Bélanger", "Ajaccio", "ART-1-38", "A-01-3", "size: 38"):
        assert expected in text, expected
    assert "Thanks!" in text and "leave at the door" in text and "Merci !" in text
    assert _images(data) == 1


def test_a_missing_image_is_a_placeholder_never_a_failure(images: ImageServer) -> None:
    """A 404, a non-image, an oversize answer, a hanging server or a bad scheme give a slip without the image."""
    settings = host_settings.load({})
    urls = [f"{images.url}/nothing.png", f"{images.url}/text", f"{images.url}/big", f"{images.url}/hang"]
    urls += ["file:///etc/passwd", "http://127.0.0.1:9/closed.png"]
    slips = [SlipOrder(order=_order(url), settings=settings) for url in urls]
    with ImageFetcher(timeout=0.5, max_bytes=1_000_000, allow_private=True) as fetcher:
        data = packing_slips(slips, fetcher)
        assert all(fetcher.get(url) is None for url in urls)
    pages = _text(data)
    assert len(pages) == len(urls)
    assert all("ART-1-38" in page for page in pages)
    assert _images(data) == 0


def test_an_image_used_twice_is_fetched_once(images: ImageServer) -> None:
    """One fetcher (one PDF) asks the server once per image URL."""
    url = f"{images.url}/img/shared.png"
    settings = host_settings.load({})
    with ImageFetcher(allow_private=True) as fetcher:
        packing_slips([SlipOrder(order=_order(url), settings=settings)] * 3, fetcher)
    assert images.hits[url.removeprefix(images.url)] == 1


def test_images_on_private_addresses_are_not_fetched_unless_allowed(images: ImageServer) -> None:
    """Marketplace data cannot make the host fetch from its own network: loopback and private hosts are refused."""
    url = f"{images.url}/img/private.png"
    with ImageFetcher() as fetcher:
        assert fetcher.get(url) is None
        for other in ("http://10.0.0.1/a.png", "http://169.254.169.254/latest/meta-data", "http://[::1]/a.png"):
            assert fetcher.get(other) is None
    assert url.removeprefix(images.url) not in images.hits  # never asked
    with ImageFetcher(allow_private=True) as fetcher:
        assert fetcher.get(url) is not None
    assert images.hits[url.removeprefix(images.url)] == 1


def test_text_outside_latin1_does_not_break_a_slip() -> None:
    """Names in other scripts still give a slip (transliterated when no Unicode font is installed)."""
    settings = host_settings.load({})
    with ImageFetcher(allow_private=True) as fetcher:
        data = packing_slips([SlipOrder(order=_order(None, name="Buty Łódź 東京"), settings=settings)], fetcher)
    (text,) = _text(data)
    assert "ART-1-38" in text and "Buty" in text


def test_the_order_slip_route_is_a_pdf_with_its_skus(synced: Web) -> None:
    """/orders/<key>/packing-slip.pdf is a PDF naming each SKU of the order, with its thumbnails."""
    with OrderBook(synced.path) as book:
        key = book.list_orders(store="sp", status="awaiting_shipment", limit=1)[0].order_key
        order = book.get_order("sp", key)
    answer = synced.client.get(f"/orders/{key}/packing-slip.pdf")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/pdf"
    text = "\n".join(_text(answer.content))
    for item in order.items:
        assert item.sku and item.sku in text
    assert order.order_number in text
    assert _images(answer.content) == len({i.image_url for i in order.items})


def test_the_selection_slips_route_has_a_page_per_order(synced: Web) -> None:
    """/packing-slips.pdf?keys=... prints each order named, in order."""
    with OrderBook(synced.path) as book:
        summaries = book.list_orders(store="sp", limit=3)
        orders = [book.get_order("sp", s.order_key) for s in summaries]
    keys = ",".join(f"sp/{o.order_key}" for o in orders)
    answer = synced.client.get(f"/packing-slips.pdf?keys={keys}")
    assert answer.status_code == 200
    pages = _text(answer.content)
    assert len(pages) >= 3
    joined = "\n".join(pages)
    for order in orders:
        assert f"order {order.order_number}" in joined


def test_slips_of_unknown_orders_are_404(synced: Web) -> None:
    """A selection naming an order the book does not hold is a 404 with JSON, not a broken PDF."""
    answer = synced.client.get("/packing-slips.pdf?keys=sp/com:none")
    assert answer.status_code == 404
    assert "no order" in answer.json()["error"]
