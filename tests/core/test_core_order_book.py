"""The SQLite order book: file, migrations, page upserts, cursor, outbox, quarantine."""

from __future__ import annotations

import json
import sqlite3
import stat
import threading
from datetime import UTC, datetime
from pathlib import Path

import attrs
import pytest
from bazaar_plugin import TOKEN, Bazaar, make_order

from connector_core.db import OrderBook, Reject, default_db_path
from connector_core.db import migrations as store_module
from connector_core.db.connection import BUSY_TIMEOUT_MS
from connector_core.db.migrations import MIGRATIONS
from connector_core.db.rows import prepare_row
from connector_core.errors import StoreError
from connector_core.models import LineItem, Order, RawOrder, Shipment
from connector_core.store_context import StoreContext


def _orders(seqs: list[int], **kw: object) -> list[Order]:
    plugin = Bazaar()
    ctx = StoreContext(name="shop", marketplace="bazaar", settings={})
    try:
        return [plugin.map_order(ctx, RawOrder(order_key=f"BZ{s:04d}", payload=make_order(s, **kw))) for s in seqs]
    finally:
        ctx.http.close()


def _shop(book: OrderBook) -> None:
    book.add_store("shop", "bazaar", {"token": TOKEN})


def test_file_is_private_and_folder_created(db_path: Path) -> None:
    """The book creates its folder and a file only the owner can read (it holds store secrets)."""
    assert not db_path.parent.exists()
    with OrderBook(db_path) as book:
        _shop(book)
    mode = stat.S_IMODE(db_path.stat().st_mode)
    assert mode == 0o600
    assert db_path.parent.is_dir()


def test_default_path_from_env_then_xdg(tmp_path: Path) -> None:
    """CONNECTOR_HOST_DB wins; else the file lives under XDG_DATA_HOME/connector-host."""
    assert default_db_path({"CONNECTOR_HOST_DB": str(tmp_path / "x.db")}) == tmp_path / "x.db"
    expected = tmp_path / "xdg" / "connector-host" / "orders.sqlite3"
    assert default_db_path({"XDG_DATA_HOME": str(tmp_path / "xdg")}) == expected


def test_pragmas_wal_foreign_keys_busy_timeout(book: OrderBook) -> None:
    """The connection runs in WAL mode, enforces foreign keys and waits when the file is busy."""
    assert book.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert book.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert book.conn.execute("PRAGMA busy_timeout").fetchone()[0] == BUSY_TIMEOUT_MS
    assert book.version == len(MIGRATIONS)


def _autocheckpoint(book: OrderBook) -> int:
    return int(book.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0])


def test_bulk_writes_defer_checkpoints_then_empty_the_log(book: OrderBook, db_path: Path) -> None:
    """Inside bulk_writes commits stay in the WAL; on the way out one checkpoint moves them into the file."""
    _shop(book)
    assert _autocheckpoint(book) == 1000  # SQLite's default outside the block
    before = db_path.stat().st_size
    with book.bulk_writes(checkpoint_pages=100_000):
        assert _autocheckpoint(book) == 100_000
        for start in range(1, 2001, 100):  # 20 commits, over 1,000 WAL pages in all
            book.save_page("shop", _orders(list(range(start, start + 100))), cursor={"seq": start + 99})
        wal = Path(f"{db_path}-wal").stat().st_size
        assert wal > 1000 * 4096  # with the default, a checkpoint would have restarted the log by now
        assert db_path.stat().st_size == before  # nothing moved into the database file yet
    assert _autocheckpoint(book) == 1000
    assert db_path.stat().st_size > before + wal // 2  # the exit checkpoint moved the orders in
    assert book.count_orders("shop") == 2000


def test_bulk_writes_restore_the_setting_after_an_error(book: OrderBook) -> None:
    """A failing import leaves the connection's checkpoint setting as it found it."""
    with pytest.raises(RuntimeError), book.bulk_writes(checkpoint_pages=7000):
        raise RuntimeError("boom")
    assert _autocheckpoint(book) == 1000


def test_old_file_upgrades_in_place(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A version-1 file written by older code is migrated on open and keeps its data."""
    db_path.parent.mkdir(parents=True)
    raw = sqlite3.connect(db_path)
    raw.executescript(MIGRATIONS[0])
    raw.execute("PRAGMA user_version = 1")
    raw.execute(
        "INSERT INTO stores (name, marketplace, settings, created_at)"
        " VALUES ('old', 'bazaar', '{\"token\": \"t\"}', 'x')"
    )
    raw.commit()
    raw.close()
    v2 = "ALTER TABLE orders ADD COLUMN note TEXT; CREATE TABLE extra (id INTEGER PRIMARY KEY);"
    monkeypatch.setattr(store_module, "MIGRATIONS", [*MIGRATIONS, v2])
    with OrderBook(db_path) as book:
        assert book.version == len(MIGRATIONS) + 1
        assert book.get_store("old").settings == {"token": "t"}
        columns = [r[1] for r in book.conn.execute("PRAGMA table_info(orders)")]
        assert "note" in columns
        book.save_page("old", [attrs.evolve(o, store="old") for o in _orders([1])], cursor={"seq": 1})
    with OrderBook(db_path) as again:  # opening an up-to-date file changes nothing
        assert again.version == len(MIGRATIONS) + 1
        assert again.count_orders("old") == 1


def test_newer_file_is_refused(db_path: Path) -> None:
    """A file from a newer connector-core is refused with a message saying to upgrade."""
    with OrderBook(db_path) as book:
        book.conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 3}")
    with pytest.raises(StoreError, match="upgrade connector-core"):
        OrderBook(db_path)


def test_save_page_is_idempotent_and_updates_changes(book: OrderBook) -> None:
    """Saving the same orders twice keeps one copy; a changed order is rewritten with its items."""
    _shop(book)
    first = book.save_page("shop", _orders([1, 2, 3]), cursor={"seq": 3})
    assert (first.inserted, first.updated, first.unchanged) == (3, 0, 0)
    stamp = book.conn.execute("SELECT updated_at FROM orders WHERE order_key = 'BZ0002'").fetchone()[0]
    again = book.save_page("shop", _orders([1, 2, 3]), cursor={"seq": 3})
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 3)
    assert book.count_orders("shop") == 3
    assert book.conn.execute("SELECT updated_at FROM orders WHERE order_key = 'BZ0002'").fetchone()[0] == stamp
    changed = attrs.evolve(
        _orders([2])[0],
        items=[LineItem(line_key="9", sku="NEW-SKU", name="new", quantity=4, unit_price="2.50")],
    )
    third = book.save_page("shop", [changed])
    assert (third.inserted, third.updated, third.unchanged) == (0, 1, 0)
    assert book.get_order("shop", "BZ0002") == changed
    assert book.conn.execute("SELECT skus FROM orders WHERE order_key = 'BZ0002'").fetchone()[0] == "NEW-SKU"
    assert book.get_cursor("shop") == {"seq": 3}


def test_order_round_trips_through_the_book(book: OrderBook) -> None:
    """An order read back from the book equals the one stored, raw payload included."""
    _shop(book)
    order = _orders([7])[0]
    book.save_page("shop", [order])
    assert book.get_order("shop", "BZ0007") == order
    assert book.get_order("shop", "BZ0007").raw["id"] == "BZ0007"


def test_failed_commit_keeps_old_cursor_and_no_orders(book: OrderBook) -> None:
    """A page whose transaction fails leaves neither its orders nor its cursor behind."""
    _shop(book)
    book.save_page("shop", _orders([1]), cursor={"seq": 1})
    book.conn.execute(
        "CREATE TRIGGER no_cursor BEFORE UPDATE ON cursors BEGIN SELECT RAISE(ABORT, 'disk trouble'); END"
    )
    with pytest.raises(sqlite3.DatabaseError, match="disk trouble"):
        book.save_page("shop", _orders([2, 3]), rejects=[Reject(stage="parse", reason="bad")], cursor={"seq": 3})
    assert book.get_cursor("shop") == {"seq": 1}
    assert [o.order_key for o in book.list_orders(store="shop")] == ["BZ0001"]
    assert book.list_rejected(store="shop") == []


def test_rejects_are_saved_with_the_page(book: OrderBook) -> None:
    """Rejected payloads of a page are stored with stage, reason, path and payload."""
    _shop(book)
    book.save_page("shop", _orders([1]), rejects=[Reject("mapping", "no address", "BZ0009", "$.address", "{}")])
    [row] = book.list_rejected(store="shop")
    assert (row.order_key, row.stage, row.reason, row.path, row.payload) == (
        "BZ0009",
        "mapping",
        "no address",
        "$.address",
        "{}",
    )
    assert book.get_rejected(row.id) == row


def test_outbox_records_the_same_shipment_once(book: OrderBook) -> None:
    """Recording one shipment twice (same tracking number) yields one outbox row and the same id."""
    _shop(book)
    book.save_page("shop", _orders([1]))
    ship = Shipment(store="shop", order_key="BZ0001", tracking_number="TR1", ship_date=datetime.now(UTC))
    first = book.add_shipment(ship)
    second = book.add_shipment(attrs.evolve(ship, ship_date=datetime(2024, 1, 1, tzinfo=UTC), carrier="UPS"))
    assert first == second
    assert len(book.list_outbox(store="shop")) == 1
    other = book.add_shipment(attrs.evolve(ship, tracking_number="TR2"))
    assert other != first
    assert [e.shipment.tracking_number for e in book.pending_shipments("shop")] == ["TR1", "TR2"]


def test_shipment_for_unknown_order_is_refused(book: OrderBook) -> None:
    """A shipment for an order not in the book is refused with a StoreError."""
    _shop(book)
    ship = Shipment(store="shop", order_key="NOPE", tracking_number="TR1", ship_date=datetime.now(UTC))
    with pytest.raises(StoreError, match="NOPE"):
        book.add_shipment(ship)


def test_busy_database_is_waited_for(book: OrderBook, db_path: Path) -> None:
    """A write while another connection holds the write lock waits for it instead of failing."""
    _shop(book)
    other = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("UPDATE stores SET marketplace = 'bazaar' WHERE name = 'shop'")
    started = threading.Event()

    def release() -> None:
        started.wait()
        threading.Event().wait(0.3)
        other.execute("COMMIT")

    t = threading.Thread(target=release)
    t.start()
    started.set()
    try:
        stats = book.save_page("shop", _orders([1]), cursor={"seq": 1})
    finally:
        t.join()
        other.close()
    assert stats.inserted == 1


def test_store_record_repr_hides_settings(book: OrderBook) -> None:
    """A store's repr never shows its settings (they hold secrets)."""
    _shop(book)
    record = book.get_store("shop")
    assert record.settings == {"token": TOKEN}
    assert TOKEN not in repr(record)


def test_remove_store_deletes_its_data(book: OrderBook) -> None:
    """Removing a store removes its orders, items, cursor, outbox and rejects."""
    _shop(book)
    book.save_page("shop", _orders([1]), rejects=[Reject("parse", "x")], cursor={"seq": 1})
    book.add_shipment(Shipment(store="shop", order_key="BZ0001", tracking_number="T", ship_date=datetime.now(UTC)))
    book.remove_store("shop")
    for tbl in ("orders", "cursors", "outbox", "rejected"):
        assert book.conn.execute(f"SELECT count(*) FROM {tbl}").fetchone()[0] == 0
    with pytest.raises(StoreError, match="no store named 'shop'"):
        book.get_store("shop")


def test_skus_are_a_column_of_the_order_that_the_search_reads(book: OrderBook) -> None:
    """An order's SKUs are one column (v14), one per line, NULL without any; the search finds an order by one."""
    from connector_core.db.history import OrderFilter

    _shop(book)
    two_lines = attrs.evolve(
        _orders([4])[0],
        items=[
            LineItem(line_key="1", sku="RED-42", name="red", quantity=1, unit_price="5.00"),
            LineItem(line_key="2", sku=None, name="gift wrap", quantity=1, unit_price="1.00"),
            LineItem(line_key="3", sku="BLUE-40", name="blue", quantity=2, unit_price="6.00"),
        ],
    )
    no_sku = attrs.evolve(
        _orders([5])[0], items=[LineItem(line_key="1", sku=None, name="x", quantity=1, unit_price="1.00")]
    )
    book.save_page("shop", [*_orders([1, 2, 3]), two_lines, no_sku])
    skus = dict(book.conn.execute("SELECT order_key, skus FROM orders").fetchall())
    assert (skus["BZ0002"], skus["BZ0004"], skus["BZ0005"]) == ("SKU-2", "RED-42\nBLUE-40", None)
    tables = {r[0] for r in book.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "order_items" not in tables

    def found(text: str) -> list[str]:
        return [s.order_key for s in book.page_orders(OrderFilter(search=text)).rows]

    assert found("sku-2") == ["BZ0002"]
    assert found("blue-4") == ["BZ0004"]  # any line's SKU, in any case


def test_search_ignores_case_on_every_field_it_reads(book: OrderBook) -> None:
    """The order search finds an order whatever the case of its key, number, buyer, e-mail or SKU."""
    from connector_core.db.history import OrderFilter

    _shop(book)
    book.save_page("shop", _orders([1, 2, 3]))

    def found(text: str) -> list[str]:
        return [s.order_key for s in book.page_orders(OrderFilter(search=text)).rows]

    assert found("bz0002") == ["BZ0002"]  # the order key
    assert found("BUYER 3") == ["BZ0003"]  # the buyer's name ("Buyer 3")
    assert found("Buyer1@Example.ORG") == ["BZ0001"]  # the e-mail
    assert found("sku-3") == ["BZ0003"]
    assert sorted(found("bUyEr")) == ["BZ0001", "BZ0002", "BZ0003"]
    assert found("nobody") == []


def test_search_finds_a_name_the_json_wrote_escaped(book: OrderBook) -> None:
    """A buyer's name outside ASCII is found whether the canonical JSON holds it as is or as a \\u escape."""
    import json

    from connector_core.db.history import OrderFilter

    _shop(book)
    first, second = _orders([1, 2])
    book.save_page("shop", [attrs.evolve(first, customer=attrs.evolve(first.customer, name="Zoé Girard")), second])
    (canonical,) = book.conn.execute("SELECT canonical FROM orders WHERE order_key = 'BZ0001'").fetchone()
    assert "Zoé" in canonical
    escaped = json.dumps(json.loads(canonical), ensure_ascii=True)  # as another encoder may have written it
    assert "Zoé" not in escaped
    book.conn.execute("UPDATE orders SET canonical = ? WHERE order_key = 'BZ0001'", (escaped,))

    def found(text: str) -> list[str]:
        return [s.order_key for s in book.page_orders(OrderFilter(search=text)).rows]

    assert found("Zoé") == ["BZ0001"]
    assert found("girard") == ["BZ0001"]  # ASCII: the quick scan of the JSON's text finds it too
    assert found("Zoë") == []


def test_an_older_book_keeps_its_skus_when_upgraded(db_path: Path) -> None:
    """A version-13 book's order_items rows become each order's skus column; the search still finds them."""
    from connector_core.db.history import OrderFilter

    db_path.parent.mkdir(parents=True)
    raw = sqlite3.connect(db_path)
    for script in MIGRATIONS[:13]:
        raw.executescript(script)
    raw.execute("PRAGMA user_version = 13")
    raw.execute("INSERT INTO stores (name, marketplace, settings, created_at) VALUES ('shop', 'bazaar', '{}', 'x')")
    row = prepare_row(_orders([8])[0])
    raw.execute(
        "INSERT INTO orders (store, order_key, order_number, status, marketplace_status, order_date, modified_date,"
        " canonical, raw, hash, created_at, updated_at) VALUES ('shop', ?, ?, ?, ?, ?, ?, ?, ?, ?, 'x', 'x')",
        row[:9],
    )
    raw.executemany(
        "INSERT INTO order_items (store, order_key, line_key, sku, quantity) VALUES ('shop', 'BZ0008', ?, ?, 1)",
        [("1", "OLD-1"), ("2", None), ("3", "OLD-3")],
    )
    raw.commit()
    raw.close()
    with OrderBook(db_path) as book:
        assert book.version == len(MIGRATIONS)
        assert book.conn.execute("SELECT skus FROM orders").fetchone()[0].split("\n") == ["OLD-1", "OLD-3"]
        assert [s.order_key for s in book.page_orders(OrderFilter(search="old-3")).rows] == ["BZ0008"]


def test_the_stores_holding_a_key_are_found_through_each_stores_primary_key(book: OrderBook) -> None:
    """No index on order_key alone (v15): the stores of a key are still found, by (store, order_key) lookups."""
    for name in ("north", "south", "west"):
        book.add_store(name, "bazaar", {"token": TOKEN})
    order = _orders([7])[0]
    for name in ("south", "north"):
        book.save_page(name, [attrs.evolve(order, store=name)])
    assert book.find_order_stores(order.order_key) == ["north", "south"]
    assert book.find_order_stores("BZ9999") == []
    indexes = {r[0] for r in book.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "orders_key" not in indexes
    asked: list[str] = []
    book.conn.set_trace_callback(asked.append)
    book.find_order_stores(order.order_key)
    book.conn.set_trace_callback(None)
    (query,) = asked  # the statement as run, its parameter inlined
    plan = " ".join(str(r[3]) for r in book.conn.execute(f"EXPLAIN QUERY PLAN {query}"))
    assert "sqlite_autoindex_orders_1 (store=? AND order_key=?)" in plan


def test_the_json_columns_are_stored_as_text_from_the_bytes_of_a_row(book: OrderBook) -> None:
    """A row carries its JSON columns as UTF-8 bytes; the book stores them as text, as they read back."""
    _shop(book)
    order = attrs.evolve(_orders([3])[0], customer_notes="Zoé, 2e étage")
    row = prepare_row(order)
    assert isinstance(row.canonical, bytes) and isinstance(row.raw, bytes)
    book.save_rows("shop", [row])
    book.save_rows("shop", [prepare_row(attrs.evolve(order, customer_notes="Zoë"))])  # the UPDATE's path too
    kinds, canonical, raw = book.conn.execute(
        "SELECT typeof(canonical) || ' ' || typeof(raw), canonical, raw FROM orders WHERE order_key = ?",
        (order.order_key,),
    ).fetchone()
    assert kinds == "text text"
    assert json.loads(canonical)["customer_notes"] == "Zoë" and json.loads(raw) == order.raw
    assert book.get_order("shop", order.order_key).customer_notes == "Zoë"
