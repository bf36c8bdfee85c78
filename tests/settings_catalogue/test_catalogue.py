"""The host catalogue: CSV import (all or nothing), plugin upserts, enrichment of orders with unit conversion."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from connector_core import catalogue
from connector_core.catalogue import CatalogueImportError, enrich, import_csv, upsert_entries
from connector_core.db import OrderBook
from connector_core.host_settings import ProductSettings
from connector_core.models import (
    Address,
    CatalogueEntry,
    LineItem,
    MarketplaceStatus,
    Order,
    Weight,
    to_json,
)
from connector_core.schema_registry import canonical_registry


@pytest.fixture
def book(tmp_path: Path) -> Iterator[OrderBook]:
    """A fresh order book (the catalogue table comes with its migrations)."""
    with OrderBook(tmp_path / "orders.sqlite3") as b:
        yield b


def write(tmp_path: Path, text: str, name: str = "catalogue.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


GOOD = """sku,name,weight,weight_unit,location,image_url,ean,upc
SHOE-42,Derby shoe,1.2,kg,A-01-3,https://img.example/shoe.jpg,4006381333931,
SOCK-1,Wool socks,250,g,B-07,https://img.example/sock.jpg,,036000291452
BELT-9,Belt,1,lb,,,,
"""


def test_good_csv_is_imported(book: OrderBook, tmp_path: Path) -> None:
    """Every row of a good file is stored with its weight unit, location, image and codes."""
    report = import_csv(book.conn, write(tmp_path, GOOD))
    assert (report.rows, report.inserted, report.updated) == (3, 3, 0)
    shoe = catalogue.get_entry(book.conn, "SHOE-42")
    assert shoe == CatalogueEntry(
        sku="SHOE-42",
        name="Derby shoe",
        weight=Weight(Decimal("1.2"), "kg"),
        warehouse_location="A-01-3",
        image_url="https://img.example/shoe.jpg",
        ean="4006381333931",
    )
    assert catalogue.get_entry(book.conn, "SOCK-1").upc == "036000291452"  # type: ignore[union-attr]
    assert [e.sku for e in catalogue.list_entries(book.conn)] == ["BELT-9", "SHOE-42", "SOCK-1"]


def test_reimport_updates_and_keeps_values_left_empty(book: OrderBook, tmp_path: Path) -> None:
    """A second file updates the SKUs it names; its empty cells keep what the catalogue had."""
    import_csv(book.conn, write(tmp_path, GOOD))
    report = import_csv(book.conn, write(tmp_path, "sku,weight,location\nSHOE-42,900 g,\nHAT-1,0.3 kg,C-2\n", "b.csv"))
    assert (report.inserted, report.updated) == (1, 1)
    shoe = catalogue.get_entry(book.conn, "SHOE-42")
    assert shoe is not None
    assert shoe.weight == Weight(Decimal("900"), "g")
    assert shoe.warehouse_location == "A-01-3"
    assert shoe.image_url == "https://img.example/shoe.jpg"


def test_bad_rows_are_all_reported_and_nothing_is_imported(book: OrderBook, tmp_path: Path) -> None:
    """A file with bad rows imports nothing, not even its good rows, and names each row, column and problem."""
    import_csv(book.conn, write(tmp_path, "sku,weight\nKEEP-1,5\n", "first.csv"))
    bad = """sku,name,weight,weight_unit,image_url,ean
OK-1,Fine,10,g,https://img.example/ok.jpg,
,No sku,10,g,,
OK-2,Heavy,ten,g,,
OK-3,Stone,5,st,,
OK-4,Pic,1,kg,ftp://img.example/x.jpg,
OK-5,Code,1,kg,,4006381333932
OK-1,Again,1,kg,,
KEEP-1,Changed,-2,g,,
"""
    with pytest.raises(CatalogueImportError) as info:
        import_csv(book.conn, write(tmp_path, bad))
    found = [(e.row, e.column) for e in info.value.errors]
    assert found == [
        (3, "sku"),
        (4, "weight"),
        (5, "weight"),
        (6, "image_url"),
        (7, "ean"),
        (8, "sku"),
        (9, "weight"),
    ]
    message = str(info.value)
    assert "nothing was imported" in message
    assert "row 4, column weight: 'ten' is not a number" in message
    assert "row 5, column weight: unit 'st' is not one of g, kg, oz, lb" in message
    assert "row 7, column ean: '4006381333932' has a wrong check digit" in message
    assert "row 8, column sku: SKU 'OK-1' already given on row 2" in message
    assert [e.sku for e in catalogue.list_entries(book.conn)] == ["KEEP-1"]
    assert catalogue.get_entry(book.conn, "KEEP-1").weight == Weight(Decimal("5"), "g")  # type: ignore[union-attr]


def test_header_problems_are_reported_on_row_one(book: OrderBook, tmp_path: Path) -> None:
    """Unknown columns and a missing sku column are reported against row 1."""
    with pytest.raises(CatalogueImportError) as info:
        import_csv(book.conn, write(tmp_path, "reference,weight,colour\nA,1,red\n"))
    assert [(e.row, e.column) for e in info.value.errors] == [(1, "reference"), (1, "colour"), (1, "sku")]
    assert catalogue.list_entries(book.conn) == []


def test_semicolons_and_decimal_commas(book: OrderBook, tmp_path: Path) -> None:
    """A spreadsheet export with ';' separators, '1,5 kg' weights and a BOM is understood."""
    path = tmp_path / "excel.csv"
    path.write_text("\ufeffSKU;Weight;Image\nA-1;1,5 kg;https://img.example/a.jpg\nB-2;12oz;\n", encoding="utf-8")
    assert import_csv(book.conn, path).rows == 2
    assert catalogue.get_entry(book.conn, "A-1").weight == Weight(Decimal("1.5"), "kg")  # type: ignore[union-attr]
    assert catalogue.get_entry(book.conn, "B-2").weight == Weight(Decimal("12"), "oz")  # type: ignore[union-attr]


def test_exponent_weights_are_stored_as_plain_decimals(book: OrderBook, tmp_path: Path) -> None:
    """'1e3' is stored as 1000, never as an exponent (canonical JSON wants plain digits)."""
    import_csv(book.conn, write(tmp_path, "sku,weight\nX,1e3\n"))
    entry = catalogue.get_entry(book.conn, "X")
    assert entry is not None and entry.weight is not None
    assert str(entry.weight.value) == "1000"


def test_plugin_entries_merge_with_csv_data(book: OrderBook, tmp_path: Path) -> None:
    """Entries from a marketplace export add photos and EANs without erasing CSV weights and locations."""
    import_csv(book.conn, write(tmp_path, "sku,weight,location\nREF-1,400,A-1\n"))
    report = upsert_entries(
        book.conn,
        [
            CatalogueEntry(sku="REF-1", name="Sneaker", image_url="https://img.example/r1.jpg", ean="4006381333931"),
            CatalogueEntry(sku="REF-2", name="Boot", image_url="https://img.example/r2.jpg"),
        ],
        source="store:spartoo-fr",
    )
    assert (report.inserted, report.updated) == (1, 1)
    assert catalogue.get_entry(book.conn, "REF-1") == CatalogueEntry(
        sku="REF-1",
        name="Sneaker",
        weight=Weight(Decimal("400"), "g"),
        warehouse_location="A-1",
        image_url="https://img.example/r1.jpg",
        ean="4006381333931",
    )


def test_plugin_entries_without_sku_are_refused(book: OrderBook) -> None:
    """A plugin entry with an empty SKU refuses the whole batch."""
    with pytest.raises(CatalogueImportError):
        upsert_entries(book.conn, [CatalogueEntry(sku="A"), CatalogueEntry(sku=" ")], source="store:x")
    assert catalogue.list_entries(book.conn) == []


# -- enrichment ----------------------------------------------------------------


def order_with(*items: LineItem, total_weight: Weight | None = None) -> Order:
    return Order(
        store="s",
        marketplace="bazaar",
        order_key="A1",
        order_number="A1",
        order_date=datetime(2024, 5, 2, tzinfo=UTC),
        status="awaiting_shipment",
        marketplace_status=MarketplaceStatus("2"),
        ship_to=Address(name="A", street1="1 rue", city="Paris", country="FR"),
        currency="EUR",
        items=items,
        total=Decimal("10"),
        total_weight=total_weight,
    )


CATALOGUE = {
    "SHOE": CatalogueEntry(
        sku="SHOE",
        weight=Weight(Decimal("1.2"), "kg"),
        warehouse_location="A-01",
        image_url="https://img.example/shoe.jpg",
        ean="4006381333931",
    ),
    "SOCK": CatalogueEntry(sku="SOCK", weight=Weight(Decimal("250"), "g"), warehouse_location="B-07"),
    "BELT": CatalogueEntry(sku="BELT", weight=Weight(Decimal("1"), "lb")),
    "HAT": CatalogueEntry(sku="HAT", image_url="https://img.example/hat.jpg"),
}


def test_enrich_fills_missing_fields_and_sums_weight_in_grams() -> None:
    """Missing weight, location, image and EAN come from the catalogue; the total is the grams sum x quantity."""
    order = order_with(
        LineItem("1", "SHOE", "Shoe", 1, Decimal("5")),
        LineItem("2", "SOCK", "Sock", 2, Decimal("1")),
        LineItem("3", "BELT", "Belt", 1, Decimal("1")),
    )
    out = enrich(order, CATALOGUE, ProductSettings())
    shoe, sock, belt = out.items
    assert shoe.weight == Weight(Decimal("1.2"), "kg")
    assert (shoe.warehouse_location, shoe.image_url, shoe.ean) == (
        "A-01",
        "https://img.example/shoe.jpg",
        "4006381333931",
    )
    assert sock.warehouse_location == "B-07"
    assert belt.weight == Weight(Decimal("1"), "lb")
    # 1.2 kg + 2 x 250 g + 1 lb (453.59237 g) = 1200 + 500 + 453.59237 = 2153.59237 -> 2153.592 g
    assert out.total_weight == Weight(Decimal("2153.592"), "g")
    assert "weight_incomplete" not in out.flags
    assert out.items[0].line_key == "1" and out.order_key == order.order_key
    canonical_registry().validate("canonical/order", to_json(out))


def test_order_values_win_by_default_and_catalogue_wins_when_set() -> None:
    """With precedence 'order' the order's own values stay; with 'catalogue' the catalogue's replace them."""
    item = LineItem(
        "1", "SHOE", "Shoe", 2, Decimal("5"), weight=Weight(Decimal("1000"), "g"), warehouse_location="ORDER-LOC"
    )
    order = order_with(item, total_weight=Weight(Decimal("3"), "kg"))
    kept = enrich(order, CATALOGUE, ProductSettings(precedence="order"))
    assert kept.items[0].weight == Weight(Decimal("1000"), "g")
    assert kept.items[0].warehouse_location == "ORDER-LOC"
    assert kept.items[0].image_url == "https://img.example/shoe.jpg"  # was missing: filled
    assert kept.total_weight == Weight(Decimal("3"), "kg")  # the order's own total stays
    won = enrich(order, CATALOGUE, ProductSettings(precedence="catalogue"))
    assert won.items[0].weight == Weight(Decimal("1.2"), "kg")
    assert won.items[0].warehouse_location == "A-01"
    assert won.total_weight == Weight(Decimal("2400.000"), "g")


def test_partial_weights_sum_the_known_part_and_flag_it() -> None:
    """When some items have no weight anywhere, the known part is summed and the order is flagged weight_incomplete."""
    order = order_with(LineItem("1", "SOCK", "Sock", 3, Decimal("1")), LineItem("2", "HAT", "Hat", 1, Decimal("1")))
    out = enrich(order, CATALOGUE, ProductSettings())
    assert out.total_weight == Weight(Decimal("750.000"), "g")
    assert out.flags == ("weight_incomplete",)
    assert out.items[1].image_url == "https://img.example/hat.jpg"


def test_ounces_convert_exactly() -> None:
    """16 oz is exactly one pound: 453.592 g after rounding to the milligram."""
    order = order_with(LineItem("1", None, "Loose", 16, Decimal("1"), weight=Weight(Decimal("1"), "oz")))
    assert enrich(order, {}, ProductSettings()).total_weight == Weight(Decimal("453.592"), "g")


def test_use_catalogue_off_leaves_the_order_alone() -> None:
    """With use_catalogue off the order is returned unchanged."""
    order = order_with(LineItem("1", "SHOE", "Shoe", 1, Decimal("5")))
    assert enrich(order, CATALOGUE, ProductSettings(use_catalogue=False)) is order


def test_lookup_from_the_order_book(book: OrderBook, tmp_path: Path) -> None:
    """lookup_for reads the entries of the order's SKUs from the order book, usable by enrich."""
    import_csv(book.conn, write(tmp_path, GOOD))
    order = order_with(LineItem("1", "SOCK-1", "Sock", 4, Decimal("1")), LineItem("2", "NOPE", "x", 1, Decimal("1")))
    lookup = catalogue.lookup_for(book.conn, [i.sku for i in order.items if i.sku])
    assert sorted(lookup) == ["SOCK-1"]
    out = enrich(order, lookup, ProductSettings())
    assert out.items[0].image_url == "https://img.example/sock.jpg"
    assert out.total_weight == Weight(Decimal("1000.000"), "g")
    assert out.flags == ("weight_incomplete",)
