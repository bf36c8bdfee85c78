"""Mapping Spartoo order documents to canonical orders, field by field."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from connector_spartoo.mapping import map_order_document, normalise_country, parse_date, parse_money
from connector_spartoo.xmlstream import OrderStream
from spartoo_docs import HOME_ORDER, NO_ADDRESS_ORDER, RELAY_ORDER, document

from connector_core.errors import MappingError
from connector_core.models import Address, Customer, Discount, ItemOption, MarketplaceStatus, OrderStatus, PickupPoint

PARIS = ZoneInfo("Europe/Paris")


def doc(xml: str) -> dict[str, Any]:
    (item,) = list(OrderStream([document(xml)], site="com"))
    assert isinstance(item, dict)
    return item


def test_home_order_every_field() -> None:
    """Every field of a home-delivery order lands in its canonical place."""
    order = map_order_document(doc(HOME_ORDER), store="shop", site="it", zone=PARIS)
    assert order.store == "shop" and order.marketplace == "spartoo" and order.site == "it"
    assert order.order_key == "it:3FF75E96C3434E92" and order.order_number == "3FF75E96C3434E92"
    assert order.order_date == datetime(2024, 7, 14, 8, 30, tzinfo=UTC)  # CEST = UTC+2
    assert order.modified_date == datetime(2024, 7, 14, 9, 0, 5, tzinfo=UTC)
    assert order.status is OrderStatus.PENDING_FULFILLMENT
    assert order.marketplace_status == MarketplaceStatus("11", "Commande Vérifiée")
    assert order.customer == Customer(
        name="Zoé Lefèvre", company="Atelier Zoé", email="zoe@example.org", phone="+33 4 72 00 00 00"
    )
    assert order.bill_to == Address(
        name="Zoé Lefèvre",
        company="Atelier Zoé",
        street1="12 rue des Écoles",
        street2="Bâtiment B",
        city="Lyon",
        state=None,
        postal_code="69003",
        country="FR",
        phone="+33 4 72 00 00 00",
        email="zoe@example.org",
    )
    assert order.ship_to == Address(
        name="Marco Rossi",
        company=None,
        street1="Via Roma 5",
        street2="Scala C",
        city="Torino",
        state="TO",
        postal_code="10121",
        country="IT",
        phone="+33 4 72 00 00 00",
        email="zoe@example.org",
    )
    assert order.pickup_point is None
    assert order.currency == "EUR"
    assert order.requested_shipping_service == "Colissimo domicile"
    assert order.payment_method == "Carte bancaire"
    assert order.payment_fee == Decimal("1.50") and order.shipping_amount == Decimal("4.90")
    boot, sock = order.items
    assert (boot.line_key, boot.sku, boot.name, boot.quantity) == ("1", "REF-BOOT-38", "Bottine Ténéré", 2)
    assert boot.unit_price == Decimal("59.90") and boot.discount == Decimal("20.00")
    assert boot.options == (ItemOption("size", "38"), ItemOption("colour", "Noir"))
    assert (boot.brand, boot.marketplace_product_id) == ("Kickers", "123456")
    assert (sock.sku, sock.discount, sock.options, sock.brand) == ("REF-SOCK", Decimal("0"), (), "Falke")
    assert order.discounts == (Discount(amount=Decimal("20.00"), description="Spartoo reduced price", line_key="1"),)
    assert order.item_total == Decimal("128.90")  # 2*59.90 - 20.00 + 29.10
    assert order.total == Decimal("135.30")  # 128.90 + 4.90 + 1.50
    assert order.flags == ()
    assert order.raw["orders_id"] == "3FF75E96C3434E92"


def test_relay_order_ships_to_the_relay_with_the_buyers_name() -> None:
    """A pick-up point order: pickup_point from relay_info, ship_to = relay address with the buyer's name."""
    order = map_order_document(doc(RELAY_ORDER), store="shop", site="es", zone=PARIS)
    assert order.pickup_point == PickupPoint(
        id="4521",
        type="MR",
        name="Tabac de la Gare",
        address=Address(
            name="Tabac de la Gare", street1="3 place de la Gare", city="Perpignan", postal_code="66000", country="FR"
        ),
    )
    assert order.ship_to.name == "Ana García"
    assert order.ship_to.company == "Tabac de la Gare"
    assert (order.ship_to.street1, order.ship_to.city, order.ship_to.country) == (
        "3 place de la Gare",
        "Perpignan",
        "FR",
    )
    assert order.bill_to is not None and order.bill_to.country == "ES"
    assert order.status is OrderStatus.AWAITING_SHIPMENT
    assert order.shipping_amount == Decimal("0.00")  # "0,00" read with a decimal comma
    assert order.items[0].discount == Decimal("0")
    assert order.modified_date is None
    # 02:30 on 2024-03-31 does not exist in Paris (clocks jump 02:00 -> 03:00): read with the CET offset
    assert order.order_date == datetime(2024, 3, 31, 1, 30, tzinfo=UTC)


def test_no_shipping_address_is_a_mapping_error() -> None:
    """An order without a usable delivery address raises MappingError naming the reason and path."""
    with pytest.raises(MappingError, match="order has no usable shipping address") as info:
        map_order_document(doc(NO_ADDRESS_ORDER), store="shop", site="pl", zone=PARIS)
    assert info.value.path == "$.delivery"
    assert info.value.order_key == "pl:NOADDR1"


def _home(**changes: str) -> dict[str, Any]:
    raw = doc(HOME_ORDER)
    for key, value in changes.items():
        raw[key] = value
    return raw


@pytest.mark.parametrize(
    ("key", "value", "path"),
    [
        ("order_total", "12,3,4x", "$.order_total"),
        ("shipping_price", "free", "$.shipping_price"),
        ("date_purchased", "yesterday", "$.date_purchased"),
        ("last_modified", "2024-13-45 99:00:00", "$.last_modified"),
    ],
)
def test_bad_values_raise_mapping_error_with_path(key: str, value: str, path: str) -> None:
    """An unreadable amount or date raises MappingError with the JSON path of the value."""
    with pytest.raises(MappingError) as info:
        map_order_document(_home(**{key: value}), store="s", site="com", zone=PARIS)
    assert info.value.path == path


def test_bad_line_values_raise_mapping_error_with_path() -> None:
    """A bad quantity or price in a line is reported with the line's path."""
    raw = doc(HOME_ORDER)
    raw["products"]["product"][1]["products_qty"] = "two"
    with pytest.raises(MappingError) as info:
        map_order_document(raw, store="s", site="com", zone=PARIS)
    assert info.value.path == "$.products.product[1].products_qty"
    raw = doc(HOME_ORDER)
    raw["products"]["product"][0]["products_price_unit"] = "??"
    with pytest.raises(MappingError) as info:
        map_order_document(raw, store="s", site="com", zone=PARIS)
    assert info.value.path == "$.products.product[0].products_price_unit"


def test_wrong_shapes_raise_mapping_error_only() -> None:
    """Structures of the wrong type never leak another exception type."""
    raw = doc(HOME_ORDER)
    raw["customers"] = ["not", "an", "object"]
    with pytest.raises(MappingError) as info:
        map_order_document(raw, store="s", site="com", zone=PARIS)
    assert info.value.path == "$.customers"
    with pytest.raises(MappingError):
        map_order_document({"orders_id": "X", "products": 5}, store="s", site="com", zone=PARIS)


def test_totals_mismatch_is_flagged_not_an_error() -> None:
    """An order_total that does not add up is mapped and flagged totals_mismatch."""
    order = map_order_document(_home(order_total="999.99"), store="s", site="com", zone=PARIS)
    assert order.total == Decimal("999.99")
    assert order.flags == ("totals_mismatch",)


def test_reduced_price_above_unit_is_flagged() -> None:
    """A reduced price above the unit price gives no (negative) discount and is flagged."""
    raw = doc(HOME_ORDER)
    raw["products"]["product"][1]["products_price_unit_with_reduce"] = "35.00"
    order = map_order_document(raw, store="s", site="com", zone=PARIS)
    assert order.items[1].discount == Decimal("0")
    assert "reduced_price_above_unit" in order.flags


def test_site_currency() -> None:
    """Prices are in the site's currency."""
    assert map_order_document(doc(HOME_ORDER), store="s", site="co.uk", zone=PARIS).currency == "GBP"
    assert map_order_document(doc(HOME_ORDER), store="s", site="se", zone=PARIS).currency == "SEK"
    assert map_order_document(doc(HOME_ORDER), store="s", site="ch", zone=PARIS).currency == "CHF"


def test_custom_status_map_sets_provisional_status() -> None:
    """A store's status map wins over the default in the mapped order."""
    order = map_order_document(doc(HOME_ORDER), store="s", site="com", zone=PARIS, status_map={"11": "on_hold"})
    assert order.status is OrderStatus.ON_HOLD


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("France", "FR"),
        ("Italie", "IT"),
        ("Italy", "IT"),
        ("it", "IT"),
        ("Royaume-Uni", "GB"),
        ("United Kingdom", "GB"),
        ("UK", "GB"),
        ("Allemagne", "DE"),
        ("Germany", "DE"),
        ("Espagne", "ES"),
        ("Suède", "SE"),
        ("Pologne", "PL"),
        ("Croatie", "HR"),
        ("Suisse", "CH"),
        ("  belgique ", "BE"),
        ("Pays-Bas", "NL"),
        ("", None),
        ("Atlantis", None),
    ],
)
def test_country_normalisation(text: str, code: str | None) -> None:
    """Country names (French or English) and codes become ISO alpha-2."""
    assert normalise_country(text) == code


def test_unknown_shipping_country_is_a_mapping_error() -> None:
    """A delivery country that cannot be read is reported with its path."""
    raw = doc(HOME_ORDER)
    raw["delivery"]["delivery_country"] = "Atlantis"
    with pytest.raises(MappingError) as info:
        map_order_document(raw, store="s", site="com", zone=PARIS)
    assert info.value.path == "$.delivery.delivery_country"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-15 12:00:00", datetime(2024, 1, 15, 11, 0, tzinfo=UTC)),  # CET, UTC+1
        ("2024-07-15 12:00:00", datetime(2024, 7, 15, 10, 0, tzinfo=UTC)),  # CEST, UTC+2
        ("2024-03-31 01:59:59", datetime(2024, 3, 31, 0, 59, 59, tzinfo=UTC)),  # just before the spring change
        ("2024-03-31 03:00:00", datetime(2024, 3, 31, 1, 0, tzinfo=UTC)),  # just after it
        ("2024-10-27 02:30:00", datetime(2024, 10, 27, 0, 30, tzinfo=UTC)),  # ambiguous: first occurrence (CEST)
        ("2024-10-27 03:30:00", datetime(2024, 10, 27, 2, 30, tzinfo=UTC)),  # after the autumn change (CET)
        ("2024-07-15:12:00:00", datetime(2024, 7, 15, 10, 0, tzinfo=UTC)),  # the request-field format
        ("2024-07-15T12:00:00+00:00", datetime(2024, 7, 15, 12, 0, tzinfo=UTC)),  # explicit offset wins
        ("2024-07-15T12:00:00Z", datetime(2024, 7, 15, 12, 0, tzinfo=UTC)),
    ],
)
def test_dates_around_dst(text: str, expected: datetime) -> None:
    """Spartoo dates are read in Europe/Paris across DST changes and turned into aware UTC."""
    assert parse_date(text, PARIS) == expected


def test_dates_follow_the_store_timezone() -> None:
    """The store's timezone setting decides how naive dates are read."""
    assert parse_date("2024-07-15 12:00:00", ZoneInfo("Europe/London")) == datetime(2024, 7, 15, 11, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "value"),
    [("12.50", "12.50"), ("12,50", "12.50"), ("1 234,50", "1234.50"), ("1.234,50", "1234.50"), ("1,234.50", "1234.50")],
)
def test_money_formats(text: str, value: str) -> None:
    """Prices with decimal commas or thousands separators are read exactly."""
    assert parse_money(text) == Decimal(value)
