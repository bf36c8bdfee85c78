"""The order book on PostgreSQL: the SQLite book's storage contract, plus what only PostgreSQL does."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from test_core_order_book import (  # the same contract, run here on the PostgreSQL book
    _orders,
    _shop,
    test_order_round_trips_through_the_book,
    test_outbox_records_the_same_shipment_once,
    test_rejects_are_saved_with_the_page,
    test_remove_store_deletes_its_data,
    test_save_page_is_idempotent_and_updates_changes,
    test_search_finds_a_name_the_json_wrote_escaped,
    test_search_ignores_case_on_every_field_it_reads,
    test_shipment_for_unknown_order_is_refused,
    test_store_record_repr_hides_settings,
)
from test_status_history import (
    test_a_marketplace_code_change_alone_is_recorded_and_removing_the_store_clears_the_history,
    test_changes_from_the_marketplace_and_the_host_are_recorded_in_order,
)

from connector_core.db import mask_url, open_book
from connector_core.db.migrations import MIGRATIONS as SQLITE_MIGRATIONS
from connector_core.db.postgres.book import PostgresBook
from connector_core.errors import LeaseBusyError, StoreError
from connector_core.models import Shipment

__all__ = [
    "test_a_marketplace_code_change_alone_is_recorded_and_removing_the_store_clears_the_history",
    "test_changes_from_the_marketplace_and_the_host_are_recorded_in_order",
    "test_order_round_trips_through_the_book",
    "test_outbox_records_the_same_shipment_once",
    "test_rejects_are_saved_with_the_page",
    "test_remove_store_deletes_its_data",
    "test_save_page_is_idempotent_and_updates_changes",
    "test_search_finds_a_name_the_json_wrote_escaped",
    "test_search_ignores_case_on_every_field_it_reads",
    "test_shipment_for_unknown_order_is_refused",
    "test_store_record_repr_hides_settings",
]


def test_migrations_reach_the_sqlite_version_and_reopen_is_a_no_op(pg_url: str) -> None:
    """A new database gets every migration; the version means the same as the SQLite file's."""
    with open_book(pg_url) as book:
        assert book.version == len(SQLITE_MIGRATIONS)
        tables = {r[0] for r in book.conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"stores", "orders", "cursors", "outbox", "accepts", "notifications", "catalogue"} <= tables
    with open_book(pg_url) as again:
        assert again.version == len(SQLITE_MIGRATIONS)
        assert again.conn.execute("SELECT count(*) FROM schema_version").fetchone()[0] == 1


def test_newer_database_is_refused(pg_url: str) -> None:
    with open_book(pg_url) as book:
        book.conn.execute("UPDATE schema_version SET version = 999")
    with pytest.raises(StoreError, match="newer than this"):
        open_book(pg_url)


def test_unchanged_page_writes_nothing(book: PostgresBook) -> None:
    """Re-saving the same page leaves every row untouched (no new row version: same xmin)."""
    _shop(book)
    book.save_page("shop", _orders([1, 2]), cursor={"seq": 2})
    before = book.conn.execute("SELECT order_key, xmin::text FROM orders ORDER BY order_key").fetchall()
    stats = book.save_page("shop", _orders([1, 2]), cursor={"seq": 2})
    after = book.conn.execute("SELECT order_key, xmin::text FROM orders ORDER BY order_key").fetchall()
    assert (stats.inserted, stats.updated) == (0, 0)
    assert before == after
    assert book.get_cursor("shop") == {"seq": 2}


def test_claims_skip_rows_another_worker_holds(book: PostgresBook) -> None:
    """Two connections claiming the same store's outbox never get the same shipment."""
    _shop(book)
    book.save_page("shop", _orders([1]))
    now = datetime.now(UTC)
    ids = [
        book.add_shipment(Shipment(store="shop", order_key="BZ0001", tracking_number=f"T{i}", ship_date=now))
        for i in range(4)
    ]
    other = book.reopen()
    try:
        with book.claim_shipments("shop", limit=2) as mine, other.claim_shipments("shop", limit=10) as theirs:
            assert not {e.id for e in mine} & {e.id for e in theirs}
            assert sorted(e.id for e in mine + theirs) == sorted(ids)
        with book.claim_shipments("shop", limit=10) as later:  # claims end with their block
            assert len(later) == 4
    finally:
        other.close()


def test_lease_is_exclusive_and_freed_when_its_holder_dies(book: PostgresBook, pg_url: str) -> None:
    """A second host is refused while the lease is held, and gets it once the holder's connection is gone."""
    _shop(book)
    other = open_book(pg_url)
    try:
        with book.lease("shop", purpose="sync"):
            with pytest.raises(LeaseBusyError, match="sync"):
                other.lease("shop", purpose="push")
            with other.lease("elsewhere", purpose="push"):  # another store is free
                pass
        held = book.lease("shop", purpose="sync")
        pid = held._conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        with psycopg.connect(pg_url, autocommit=True) as admin:  # the holder's process dies
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with other.lease("shop", purpose="push", wait=10):
            pass
        held.release()  # closing a connection the server already ended is harmless
    finally:
        other.close()


def test_lease_wait_gets_it_when_released(book: PostgresBook, pg_url: str) -> None:
    held = book.lease("shop", purpose="sync")
    timer = threading.Timer(0.2, held.release)
    timer.start()
    try:
        with open_book(pg_url) as other, other.lease("shop", purpose="push", wait=20):
            pass
    finally:
        timer.join()


def test_quota_state_round_trips(book: PostgresBook) -> None:
    until = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)
    book.block_quota("spartoo", "P1", until, "daily quota")
    assert book.quota_blocked_until("spartoo", "P1") == until
    book.clear_quota("spartoo", "P1")
    assert book.quota_blocked_until("spartoo", "P1") is None


def test_password_is_masked_everywhere(pg_server: str) -> None:
    """A wrong password, or an unreachable server, is one line naming the URL without its password."""
    url = pg_server.replace("postgres@", "postgres:s3cret-pw@").rsplit("/", 1)[0] + "/no_such_db"
    with pytest.raises(StoreError) as info:
        open_book(url)
    assert "s3cret-pw" not in str(info.value)
    assert "\n" not in str(info.value)
    assert mask_url("postgresql://u:pw@h/db?password=pw2") == "postgresql://u:***@h/db?password=***"


def test_a_version_13_book_keeps_its_skus_when_upgraded(pg_url: str) -> None:
    """Version 14's backfill in PostgreSQL's dialect: each order's order_items SKUs become its skus column."""
    from connector_core.db.history import OrderFilter
    from connector_core.db.postgres.migrations import MIGRATIONS

    with psycopg.connect(pg_url, autocommit=False) as conn:
        for statements in MIGRATIONS[:13]:
            for statement in statements:
                conn.execute(statement)
        conn.execute("CREATE TABLE schema_version (version BIGINT NOT NULL)")
        conn.execute("INSERT INTO schema_version (version) VALUES (13)")
        conn.execute(
            "INSERT INTO stores (name, marketplace, settings, created_at) VALUES ('shop', 'bazaar', '{}', 'x')"
        )
        for key, skus in (("A1", ["OLD-1", None, "OLD-3"]), ("A2", [None])):
            conn.execute(
                "INSERT INTO orders (store, order_key, order_number, status, marketplace_status, order_date,"
                " canonical, raw, hash, created_at, updated_at)"
                " VALUES ('shop', %s, %s, 'pending', '1', 'x', '{}', '{}', 'h', 'x', 'x')",
                (key, key),
            )
            for line, sku in enumerate(skus):
                conn.execute(
                    "INSERT INTO order_items (store, order_key, line_key, sku, quantity)"
                    " VALUES ('shop', %s, %s, %s, 1)",
                    (key, str(line), sku),
                )
        conn.commit()
    with open_book(pg_url) as book:
        assert book.version == len(SQLITE_MIGRATIONS)
        skus = dict(book.conn.execute("SELECT order_key, skus FROM orders").fetchall())
        assert skus == {"A1": "OLD-1\nOLD-3", "A2": None}
        tables = {r[0] for r in book.conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        assert "order_items" not in tables
        assert [s.order_key for s in book.page_orders(OrderFilter(search="OLD-3")).rows] == ["A1"]
