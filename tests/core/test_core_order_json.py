"""The hand-written JSON form of an Order is exactly cattrs' generic one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from connector_core import models
from connector_core.models import (
    Address,
    Customer,
    Discount,
    ItemOption,
    LineItem,
    MarketplaceStatus,
    Order,
    OrderStatus,
    PickupPoint,
    Weight,
    from_json,
    to_json,
)

text = st.none() | st.text(max_size=8)
money = st.decimals(min_value=Decimal("-1000"), max_value=Decimal("100000"), places=2, allow_nan=False)
zones = st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30))])
dates = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=zones)
addresses = st.builds(
    Address, name=text, company=text, street1=text, street2=text, street3=text, city=text, state=text,
    postal_code=text, country=text, phone=text, email=text,
)  # fmt: skip
weights = st.none() | st.builds(Weight, value=money, unit=st.sampled_from(["g", "kg", "oz", "lb"]))
items = st.builds(
    LineItem, line_key=st.text(min_size=1, max_size=4), sku=text, name=st.text(max_size=8),
    quantity=st.integers(1, 50), unit_price=money, discount=money, image_url=text, weight=weights,
    options=st.lists(st.builds(ItemOption, name=st.text(max_size=5), value=st.text(max_size=5)), max_size=2),
    warehouse_location=text, brand=text, marketplace_product_id=text, ean=text, upc=text,
)  # fmt: skip
orders = st.builds(
    Order, store=st.text(min_size=1, max_size=5), marketplace=st.just("spartoo"), order_key=st.text(min_size=1),
    order_number=st.text(min_size=1, max_size=5), order_date=dates, status=st.sampled_from(list(OrderStatus)),
    marketplace_status=st.builds(MarketplaceStatus, code=st.text(min_size=1, max_size=3), name=text),
    ship_to=addresses, currency=st.sampled_from(["EUR", "GBP"]), items=st.lists(items, min_size=1, max_size=3),
    total=money, site=text, modified_date=st.none() | dates,
    customer=st.builds(Customer, name=text, company=text, email=text, phone=text),
    bill_to=st.none() | addresses,
    pickup_point=st.none() | st.builds(PickupPoint, id=st.text(min_size=1, max_size=4), type=text, name=text,
                                       address=st.none() | addresses),
    item_total=money, shipping_amount=money, payment_fee=money, tax_amount=st.none() | money,
    discounts=st.lists(st.builds(Discount, amount=money, code=text, description=text, line_key=text), max_size=2),
    requested_shipping_service=text, payment_method=text, gift=st.booleans(), gift_message=text,
    customer_notes=text, internal_notes=text, total_weight=weights, flags=st.lists(st.text(max_size=6), max_size=3),
    raw=st.dictionaries(st.text(max_size=5), st.none() | st.text(max_size=5), max_size=3),
)  # fmt: skip


def test_the_hand_written_form_is_in_use() -> None:
    """The field lists of the hand-written JSON form match the canonical classes (so it is used)."""
    assert models._fields_match() is True
    assert models._FAST_ORDER_JSON is True


@settings(max_examples=150, deadline=None)
@given(orders)
def test_order_json_equals_cattrs(order: Order) -> None:
    """to_json(order) equals cattrs' unstructure, key order included, and round-trips."""
    fast = to_json(order)
    generic = models.converter.unstructure(order)
    assert fast == generic
    assert list(fast) == list(generic)
    assert [list(i) for i in fast["items"]] == [list(i) for i in generic["items"]]
    assert from_json(fast, Order) == order


def test_save_page_with_documents_stores_the_same_rows(tmp_path: Path) -> None:
    """save_page given the orders' JSON forms writes the rows it writes without them, and leaves them intact."""
    from bazaar_plugin import Bazaar, make_order

    from connector_core.db import OrderBook, order_hash
    from connector_core.models import RawOrder
    from connector_core.store_context import StoreContext

    plugin = Bazaar()
    ctx = StoreContext(name="shop", marketplace="bazaar", settings={})
    try:
        orders = [plugin.map_order(ctx, RawOrder(order_key=f"BZ{s:04d}", payload=make_order(s))) for s in range(1, 6)]
    finally:
        ctx.http.close()
    documents = [to_json(o) for o in orders]
    copies = [to_json(o) for o in orders]
    rows = []
    for name, docs in (("a", None), ("b", documents)):
        with OrderBook(tmp_path / f"{name}.sqlite3") as book:
            book.add_store("shop", "bazaar", {"token": "t"})
            stats = book.save_page("shop", orders, documents=docs)
            assert stats.inserted == 5
            rows.append(
                [
                    tuple(r)
                    for r in book.conn.execute(
                        "SELECT order_key, canonical, raw, hash FROM orders ORDER BY order_key"
                    ).fetchall()
                ]
            )
            again = book.save_page("shop", orders, documents=docs)
            assert again.unchanged == 5
    assert rows[0] == rows[1]
    assert [r[3] for r in rows[1]] == [order_hash(o) for o in orders]
    assert documents == copies
