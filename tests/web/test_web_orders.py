"""The orders list and one order: filters, paging, detail, accept, cancel, ship, notes, several at once."""

from __future__ import annotations

import html
import re
from typing import Any

from web_support import Web

from connector_core.db import OrderBook


def _json(web: Web, query: str = "") -> Any:
    return web.client.get("/orders" + query, headers={"accept": "application/json"}).json()


def _keys(web: Web, status: str) -> list[str]:
    with OrderBook(web.path) as book:
        return [s.order_key for s in book.list_orders(store="sp", status=status)]


def test_the_list_counts_every_order_by_status(synced: Web) -> None:
    """The JSON list's total and counts agree with the order book."""
    data = _json(synced)
    with OrderBook(synced.path) as book:
        total = book.count_orders("sp")
        by_status = {r[0]: r[1] for r in book.conn.execute("SELECT status, count(*) FROM orders GROUP BY status")}
    assert data["total"] == total
    assert {k: v for k, v in data["by_status"].items() if v} == by_status


def test_filter_by_status_and_store(synced: Web) -> None:
    """?status= shows only that status; ?store= only that store; counts stay per status."""
    data = _json(synced, "?status=awaiting_shipment&store=sp")
    assert data["orders"] and {o["status"] for o in data["orders"]} == {"awaiting_shipment"}
    assert data["total"] == len(_keys(synced, "awaiting_shipment"))
    assert _json(synced, "?store=elsewhere")["total"] == 0


def test_search_by_sku_email_key_and_buyer(synced: Web) -> None:
    """?q= finds orders by SKU, buyer e-mail, order key and buyer name."""
    with OrderBook(synced.path) as book:
        order = book.get_order("sp", _keys(synced, "awaiting_shipment")[0])
    sku = order.items[0].sku
    assert sku
    assert order.order_key in {o["order_key"] for o in _json(synced, f"?q={sku}")["orders"]}
    assert order.customer.email
    by_mail = _json(synced, f"?q={order.customer.email}")["orders"]
    assert [o["order_key"] for o in by_mail] == [order.order_key]
    assert [o["order_key"] for o in _json(synced, f"?q={order.order_key}")["orders"]] == [order.order_key]
    assert order.customer.name
    assert order.order_key in {o["order_key"] for o in _json(synced, f"?q={order.customer.name}")["orders"]}
    assert _json(synced, "?q=nobody-has-this-zz")["total"] == 0


def test_the_web_search_finds_what_the_cli_search_finds(synced: Web) -> None:
    """One search for both: the same orders for the same text, padded or not, in any case."""
    from urllib.parse import quote

    from connector_core.db.history import OrderFilter

    with OrderBook(synced.path) as book:
        order = book.get_order("sp", _keys(synced, "awaiting_shipment")[0])
        assert order.customer.email and order.customer.name and order.ship_to.name and order.items[0].sku
        texts = [
            f"  {order.customer.email.upper()} ",  # padded, in capitals
            order.customer.name.split()[-1].lower(),
            order.ship_to.name,
            order.items[0].sku.lower(),
            order.order_number[2:-2],
            order.order_key,
            "%",  # a LIKE wildcard, matched as itself
            'a "quoted" name',
        ]
        cli = {t: sorted(s.order_key for s in book.page_orders(OrderFilter(search=t), limit=1000).rows) for t in texts}
    for text in texts:
        web = sorted(o["order_key"] for o in _json(synced, f"?size=500&q={quote(text)}")["orders"])
        assert web == cli[text], text
    assert cli[texts[0]] == [order.order_key]


def test_date_range_paging_and_sort(synced: Web) -> None:
    """Dates bound the list, pages split it without overlap, sort orders it."""
    everything = _json(synced, "?size=500&sort=date&dir=asc")["orders"]
    dates = [o["order_date"] for o in everything]
    assert dates == sorted(dates)
    first_day = dates[0][:10]
    same_day = _json(synced, f"?from={first_day}&to={first_day}&size=500")["orders"]
    assert same_day and all(o["order_date"].startswith(first_day) for o in same_day)
    page1 = _json(synced, "?size=7")
    page2 = _json(synced, "?size=7&page=2")
    assert page1["pages"] == -(-page1["total"] // 7)
    assert not {o["order_key"] for o in page1["orders"]} & {o["order_key"] for o in page2["orders"]}
    totals = [float(o["total"]) for o in _json(synced, "?size=500&sort=total")["orders"]]
    assert totals == sorted(totals, reverse=True)


def test_bad_filters_are_one_line_errors(synced: Web) -> None:
    """A bad status, date or sort is a 400 saying what to use."""
    assert "status must be one of" in synced.client.get("/orders?status=lost").text
    assert synced.client.get("/orders?from=yesterday").status_code == 400
    assert "sort must be one of" in synced.client.get("/orders?sort=colour").text


def test_the_partial_answer_is_the_table_alone(synced: Web) -> None:
    """With X-Partial the list answers the table fragment the page's script swaps in."""
    fragment = synced.client.get("/orders?status=shipped", headers={"x-partial": "1"}).text
    assert "<html" not in fragment and 'id="order-count"' in fragment


def test_order_detail_shows_items_with_thumbnails_and_options(synced: Web) -> None:
    """The detail page has buyer, ship-to, items with their catalogue images, SKUs, locations and options."""
    key = _keys(synced, "awaiting_shipment")[0]
    page = synced.client.get(f"/orders/{key}")
    assert page.status_code == 200
    with OrderBook(synced.path) as book:
        order = book.get_order("sp", key)
    text = html.unescape(page.text)
    for item in order.items:
        assert item.image_url and f'src="{item.image_url}"' in text
        assert item.sku and item.sku in text
        assert item.warehouse_location and item.warehouse_location in text
        for option in item.options:
            assert f"{option.name}: {option.value}" in text
    assert order.ship_to.city and order.ship_to.city in text
    assert order.customer.email and order.customer.email in text
    assert "imported" in text  # the history


def test_order_json_has_no_raw_payload(synced: Web) -> None:
    """The JSON view of an order is the canonical order with its shipments, without the raw payload."""
    key = _keys(synced, "awaiting_shipment")[0]
    data = synced.client.get(f"/orders/{key}", headers={"accept": "application/json"}).json()
    assert data["order_key"] == key and "raw" not in data and data["shipments"] == []


def test_unknown_order_is_404(synced: Web) -> None:
    """An order key the book does not hold is a 404."""
    assert synced.client.get("/orders/com:nope").status_code == 404


def test_internal_notes_are_saved(synced: Web) -> None:
    """The notes form saves internal notes that the page shows again."""
    key = _keys(synced, "awaiting_shipment")[0]
    answer = synced.post(f"/orders/{key}/notes", {"store": "sp", "internal_notes": "fragile, gift wrap"})
    assert "internal notes saved" in answer.text and "fragile, gift wrap" in answer.text
    with OrderBook(synced.path) as book:
        assert book.get_order("sp", key).internal_notes == "fragile, gift wrap"


def test_accept_and_cancel_call_the_marketplace(synced: Web) -> None:
    """Accept turns a pending order to awaiting shipment; cancel needs a reason and cancels."""
    pending = _keys(synced, "pending_fulfillment") or _keys(synced, "awaiting_shipment")
    key = pending[0]
    answer = synced.post(f"/orders/{key}/accept", {"store": "sp"})
    assert "accepted on the marketplace" in answer.text
    refused = synced.post(f"/orders/{key}/cancel", {"store": "sp", "reason": ""})
    assert refused.status_code == 400 and "give a reason" in refused.text
    cancelled = synced.post(f"/orders/{key}/cancel", {"store": "sp", "reason": "out of stock"})
    assert "cancelled on the marketplace" in cancelled.text
    with OrderBook(synced.path) as book:
        assert book.get_order("sp", key).status.value == "cancelled"


def test_ship_then_push_shows_the_per_field_result(synced: Web) -> None:
    """A shipment recorded on the page is pushed and its per-field answer shown on the order and /shipments."""
    key = _keys(synced, "awaiting_shipment")[0]
    data = {"store": "sp", "tracking": "6A1234567890", "carrier": "Colissimo", "service": "Expert"}
    data |= {"fee": "6.90", "notes_to_buyer": "Merci !", "notify": "on"}
    answer = synced.post(f"/orders/{key}/ship", data)
    assert "is in the outbox" in answer.text
    synced.post("/stores/sp/push")
    page = html.unescape(synced.client.get(f"/orders/{key}").text)
    assert "6A1234567890" in page and 'class="state pushed"' in page
    assert re.search(r"<code>tracking_number</code> <span class=\"outcome sent\">", page)
    with OrderBook(synced.path) as book:
        assert book.get_order("sp", key).status.value == "shipped"
    listed = synced.client.get("/shipments", headers={"accept": "application/json"}).json()
    assert listed[0]["state"] == "pushed" and listed[0]["result"]["accepted"] is True


def test_ship_form_errors_are_inline(synced: Web) -> None:
    """No tracking number, a bad fee or too many items are refused on the page with what to fix."""
    key = _keys(synced, "awaiting_shipment")[0]
    assert "enter the tracking number" in synced.post(f"/orders/{key}/ship", {"store": "sp"}).text
    bad_fee = synced.post(f"/orders/{key}/ship", {"store": "sp", "tracking": "T1", "fee": "cheap"})
    assert bad_fee.status_code == 400 and "carrier fee must be an amount" in bad_fee.text
    with OrderBook(synced.path) as book:
        item = book.get_order("sp", key).items[0]
    too_many = {"store": "sp", "tracking": "T1", "partial": "on", f"line.{item.line_key}": str(item.quantity + 1)}
    assert "ship 0 to" in synced.post(f"/orders/{key}/ship", too_many).text
    with OrderBook(synced.path) as book:
        assert book.list_outbox(store="sp") == []


def test_a_partial_shipment_carries_its_lines(synced: Web) -> None:
    """Ticking "partial" ships only the lines and quantities given."""
    with OrderBook(synced.path) as book:
        multi = [o for o in (book.get_order("sp", k) for k in _keys(synced, "awaiting_shipment")) if len(o.items) > 1]
    assert multi, "the sandbox has orders of several lines"
    order = multi[0]
    first = order.items[0]
    data = {"store": "sp", "tracking": "PART1", "partial": "on", f"line.{first.line_key}": "1"}
    data |= {f"line.{i.line_key}": "0" for i in order.items[1:]}
    synced.post(f"/orders/{order.order_key}/ship", data)
    with OrderBook(synced.path) as book:
        (entry,) = book.list_outbox(store="sp")
    assert [(i.line_key, i.quantity) for i in entry.shipment.items] == [(first.line_key, 1)]


def test_ship_several_orders_at_once(synced: Web) -> None:
    """Selected orders get one shipment each; one without a tracking number fails alone."""
    keys = _keys(synced, "awaiting_shipment")[:3]
    refs = [f"sp/{k}" for k in keys]
    form = synced.post("/orders/bulk", {"action": "ship", "keys": refs})
    assert form.status_code == 200 and all(f'name="tracking.{r}"' in form.text for r in refs)
    data: dict[str, Any] = {"keys": refs, "carrier": "DHL", f"tracking.{refs[0]}": "D1", f"tracking.{refs[1]}": "D2"}
    answer = synced.post("/orders/ship-many", data)
    assert answer.status_code == 400
    assert "enter the tracking number" in answer.text
    with OrderBook(synced.path) as book:
        shipped = {e.order_key: e.shipment.tracking_number for e in book.list_outbox(store="sp")}
    assert shipped == {keys[0]: "D1", keys[1]: "D2"}


def test_print_several_redirects_to_their_slips(synced: Web) -> None:
    """ "Print packing slips" on a selection leads to one PDF of them all."""
    keys = _keys(synced, "awaiting_shipment")[:2]
    answer = synced.post("/orders/bulk", {"action": "print", "keys": [f"sp/{k}" for k in keys]})
    assert answer.url.path == "/packing-slips.pdf"
    assert answer.headers["content-type"] == "application/pdf"


def test_an_empty_selection_is_refused(synced: Web) -> None:
    """Shipping or printing nothing says to select orders."""
    answer = synced.post("/orders/bulk", {"action": "ship"})
    assert answer.status_code == 400 and "select at least one order" in answer.text


def test_no_secret_on_any_page(synced: Web) -> None:
    """The partner ID appears on no page or JSON view."""
    with OrderBook(synced.path) as book:
        partner = book.get_store("sp").settings["partner_id"]
        key = book.list_orders(store="sp", limit=1)[0].order_key
    paths = ["/connect", "/stores", "/stores/sp", "/stores/sp/settings", "/orders", f"/orders/{key}"]
    paths += ["/rejected", "/shipments", "/runs", "/stores/sp/email-preview"]
    for path in paths:
        for accept in ("text/html", "application/json"):
            body = synced.client.get(path, headers={"accept": accept}).text
            assert partner not in body, (path, accept)


def test_order_history_shows_each_status_change_and_who_made_it(synced: Web) -> None:
    """After a cancel from the web, the order's history says what it was imported as and the host's change."""
    pending = _keys(synced, "pending_fulfillment") or _keys(synced, "awaiting_shipment")
    key = pending[0]
    with OrderBook(synced.path) as book:
        before = book.get_order("sp", key)
    synced.post(f"/orders/{key}/cancel", {"store": "sp", "reason": "out of stock"})
    text = html.unescape(synced.client.get(f"/orders/{key}").text)
    code = before.marketplace_status.code
    assert f"imported as {before.status.value} (marketplace status {code})" in text
    assert f"{before.status.value} -> cancelled, marketplace status {code} -> " in text
    assert "(by the host)" in text
