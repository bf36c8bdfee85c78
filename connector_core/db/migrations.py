"""Every table of the order book, as one list of versioned migrations.

:data:`MIGRATIONS` is the single list of DDL scripts, applied in order and
recorded in ``PRAGMA user_version``, so an older file upgrades in place
(:func:`migrate`). Append a script to evolve the schema; never edit one that
has shipped. The catalogue, notification and lease tables are here too, with
the order book's own: one place says what the file holds.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from connector_core.db.connection import split_statements, transaction
from connector_core.errors import StoreError

_CATALOGUE = """
CREATE TABLE catalogue (
    sku TEXT PRIMARY KEY,
    name TEXT,
    weight_value TEXT,
    weight_unit TEXT CHECK (weight_unit IS NULL OR weight_unit IN ('g', 'kg', 'oz', 'lb')),
    warehouse_location TEXT,
    image_url TEXT,
    ean TEXT,
    upc TEXT,
    source TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
"""
"""The host-side product catalogue."""

_NOTIFICATIONS = """
CREATE TABLE notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    store TEXT NOT NULL REFERENCES stores(name) ON DELETE CASCADE,
    outbox_id INTEGER NOT NULL,
    kind TEXT NOT NULL DEFAULT 'shipment_confirmation',
    order_key TEXT NOT NULL,
    mail_from TEXT NOT NULL,
    recipients TEXT NOT NULL,
    subject TEXT NOT NULL,
    message_id TEXT NOT NULL,
    message BLOB NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'sending', 'sent', 'failed', 'skipped')),
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL DEFAULT 8,
    last_error TEXT,
    next_attempt_at TEXT NOT NULL,
    claimed_at TEXT,
    created_at TEXT NOT NULL,
    sent_at TEXT,
    UNIQUE (store, outbox_id, kind)
);
CREATE INDEX notifications_due ON notifications(state, next_attempt_at);
"""
"""Customer notifications (shipment confirmations), queued and delivered once."""

_LEASES = """
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    purpose TEXT NOT NULL,
    expires_at REAL NOT NULL,
    acquired_at REAL NOT NULL
);
"""
"""Per-store leases (one row per held lease)."""

MIGRATIONS: list[str] = [
    # v1: the order book
    """
    CREATE TABLE stores (
        name TEXT PRIMARY KEY,
        marketplace TEXT NOT NULL,
        settings TEXT NOT NULL,
        status_map TEXT NOT NULL DEFAULT '{}',
        store_settings TEXT NOT NULL DEFAULT '{}',
        created_at TEXT NOT NULL
    );
    CREATE TABLE orders (
        store TEXT NOT NULL REFERENCES stores(name) ON DELETE CASCADE,
        order_key TEXT NOT NULL,
        order_number TEXT NOT NULL,
        status TEXT NOT NULL,
        marketplace_status TEXT NOT NULL,
        order_date TEXT NOT NULL,
        modified_date TEXT,
        canonical TEXT NOT NULL,
        raw TEXT NOT NULL,
        hash TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (store, order_key)
    );
    CREATE INDEX orders_status ON orders(store, status);
    CREATE INDEX orders_key ON orders(order_key);
    CREATE TABLE order_items (
        store TEXT NOT NULL,
        order_key TEXT NOT NULL,
        line_key TEXT NOT NULL,
        sku TEXT,
        quantity INTEGER NOT NULL,
        data TEXT NOT NULL,
        PRIMARY KEY (store, order_key, line_key),
        FOREIGN KEY (store, order_key) REFERENCES orders(store, order_key) ON DELETE CASCADE
    );
    CREATE INDEX order_items_sku ON order_items(sku);
    CREATE TABLE cursors (
        store TEXT PRIMARY KEY REFERENCES stores(name) ON DELETE CASCADE,
        cursor TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        store TEXT NOT NULL,
        order_key TEXT NOT NULL,
        shipment_key TEXT NOT NULL,
        shipment TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'pushed', 'failed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        result TEXT,
        created_at TEXT NOT NULL,
        pushed_at TEXT,
        UNIQUE (store, order_key, shipment_key),
        FOREIGN KEY (store, order_key) REFERENCES orders(store, order_key) ON DELETE CASCADE
    );
    CREATE INDEX outbox_state ON outbox(store, state);
    CREATE TABLE rejected (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        store TEXT NOT NULL REFERENCES stores(name) ON DELETE CASCADE,
        order_key TEXT,
        stage TEXT NOT NULL,
        reason TEXT NOT NULL,
        path TEXT,
        payload TEXT,
        created_at TEXT NOT NULL,
        retried_at TEXT
    );
    CREATE INDEX rejected_store ON rejected(store, created_at);
    """,
    # v2: the host-side product catalogue
    _CATALOGUE,
    # v3: customer notifications (shipment confirmations)
    _NOTIFICATIONS,
    # v4: per-store leases (one host process at a time syncs or pushes a store)
    _LEASES,
    # v5: find a store's quarantined payloads by order (a payload seen again is not stored twice)
    "CREATE INDEX rejected_order ON rejected(store, order_key);",
    # v6: internal notes, kept by the host beside the marketplace's copy of an order
    """
    CREATE TABLE order_notes (
        store TEXT NOT NULL,
        order_key TEXT NOT NULL,
        notes TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (store, order_key),
        FOREIGN KEY (store, order_key) REFERENCES orders(store, order_key) ON DELETE CASCADE
    );
    """,
    # v7: host-changed state beside the marketplace's document (one UPDATE per status change, no
    # re-encoding), the accept outbox (an accept intent is written with the page that needs it), item
    # rows without a second copy of each item's JSON (the order's document holds it)
    """
    ALTER TABLE orders ADD COLUMN marketplace_status_name TEXT;
    ALTER TABLE orders ADD COLUMN host_changed_at TEXT;
    CREATE TABLE accepts (
        store TEXT NOT NULL,
        order_key TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'failed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        created_at TEXT NOT NULL,
        done_at TEXT,
        PRIMARY KEY (store, order_key),
        FOREIGN KEY (store, order_key) REFERENCES orders(store, order_key) ON DELETE CASCADE
    );
    CREATE INDEX accepts_state ON accepts(store, state);
    CREATE TABLE order_items_v7 (
        store TEXT NOT NULL,
        order_key TEXT NOT NULL,
        line_key TEXT NOT NULL,
        sku TEXT,
        quantity INTEGER NOT NULL,
        PRIMARY KEY (store, order_key, line_key),
        FOREIGN KEY (store, order_key) REFERENCES orders(store, order_key) ON DELETE CASCADE
    );
    INSERT INTO order_items_v7 (store, order_key, line_key, sku, quantity)
        SELECT store, order_key, line_key, sku, quantity FROM order_items;
    DROP TABLE order_items;
    ALTER TABLE order_items_v7 RENAME TO order_items;
    CREATE INDEX order_items_sku ON order_items(sku);
    """,
    # v8: what the operator sees and corrects: outbox entries in conflict with the marketplace or
    # dropped by hand (the outbox is rebuilt to widen its states), the reason an order was cancelled
    # for, and the history of every sync and push (runs)
    """
    CREATE TABLE outbox_v8 (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        store TEXT NOT NULL,
        order_key TEXT NOT NULL,
        shipment_key TEXT NOT NULL,
        shipment TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending'
            CHECK (state IN ('pending', 'pushed', 'failed', 'conflict', 'dropped')),
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        result TEXT,
        created_at TEXT NOT NULL,
        pushed_at TEXT,
        conflict TEXT,
        dropped_at TEXT,
        UNIQUE (store, order_key, shipment_key),
        FOREIGN KEY (store, order_key) REFERENCES orders(store, order_key) ON DELETE CASCADE
    );
    INSERT INTO outbox_v8 (id, store, order_key, shipment_key, shipment, state, attempts, last_error, result,
                           created_at, pushed_at)
        SELECT id, store, order_key, shipment_key, shipment, state, attempts, last_error, result, created_at,
               pushed_at FROM outbox;
    DROP TABLE outbox;
    ALTER TABLE outbox_v8 RENAME TO outbox;
    CREATE INDEX outbox_state ON outbox(store, state);
    CREATE INDEX outbox_order ON outbox(store, order_key);
    ALTER TABLE orders ADD COLUMN cancel_reason TEXT;
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL CHECK (kind IN ('sync', 'push')),
        store TEXT NOT NULL REFERENCES stores(name) ON DELETE CASCADE,
        sites TEXT,
        state TEXT NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'done', 'failed', 'interrupted')),
        started_at TEXT NOT NULL,
        ended_at TEXT,
        fetched INTEGER NOT NULL DEFAULT 0,
        stored INTEGER NOT NULL DEFAULT 0,
        rejected INTEGER NOT NULL DEFAULT 0,
        accepted INTEGER NOT NULL DEFAULT 0,
        pushed INTEGER NOT NULL DEFAULT 0,
        deferred INTEGER NOT NULL DEFAULT 0,
        errors INTEGER NOT NULL DEFAULT 0,
        error TEXT,
        cursor TEXT
    );
    CREATE INDEX runs_store ON runs(store, started_at);
    """,
    # v9: the quota state per (marketplace, partner), shared by every store and process on the book
    """
    CREATE TABLE quotas (
        marketplace TEXT NOT NULL,
        partner TEXT NOT NULL,
        blocked_until TEXT NOT NULL,
        reason TEXT,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (marketplace, partner)
    );
    """,
    # v10: the operator web app: who may log in (Argon2id hashes), the key that signs its session
    # cookies, and the syncs, pushes and connection checks started from it
    """
    CREATE TABLE users (
        name TEXT PRIMARY KEY,
        password_hash TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE web_keys (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE web_runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        store TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('sync', 'push', 'check')),
        state TEXT NOT NULL CHECK (state IN ('running', 'ok', 'error')),
        started_at TEXT NOT NULL,
        finished_at TEXT,
        summary TEXT,
        error TEXT,
        started_by TEXT
    );
    CREATE INDEX web_runs_store ON web_runs(store, id);
    """,
    # v11: each order's status history. A trigger writes one row whenever an order's status or
    # marketplace status changes, whoever changes it (a sync's update, an accept, a cancel, a push,
    # a remap), so no write path can forget it and an import of new orders costs nothing more.
    # The status an order was imported with is the first row's old_status (or its current status).
    """
    CREATE TABLE order_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        store TEXT NOT NULL,
        order_key TEXT NOT NULL,
        at TEXT NOT NULL,
        source TEXT NOT NULL CHECK (source IN ('marketplace', 'host')),
        old_status TEXT,
        new_status TEXT NOT NULL,
        old_marketplace_status TEXT,
        new_marketplace_status TEXT,
        FOREIGN KEY (store, order_key) REFERENCES orders(store, order_key) ON DELETE CASCADE
    );
    CREATE INDEX order_events_order ON order_events(store, order_key, id);
    CREATE TRIGGER orders_status_history AFTER UPDATE OF status, marketplace_status ON orders
    WHEN OLD.status IS NOT NEW.status OR OLD.marketplace_status IS NOT NEW.marketplace_status
    BEGIN
        INSERT INTO order_events (store, order_key, at, source, old_status, new_status,
                                  old_marketplace_status, new_marketplace_status)
        VALUES (NEW.store, NEW.order_key, NEW.updated_at,
                CASE WHEN NEW.host_changed_at IS NULL THEN 'marketplace' ELSE 'host' END,
                OLD.status, NEW.status, OLD.marketplace_status, NEW.marketplace_status);
    END;
    """,
    # v12: the request ledger per (marketplace, partner): how many requests the current quota window holds,
    # taken by one statement per request from every process on the book (connector_core.quota.Ledger)
    """
    CREATE TABLE quota_ledger (
        marketplace TEXT NOT NULL,
        partner TEXT NOT NULL,
        stamp REAL NOT NULL,
        level REAL NOT NULL,
        granted INTEGER NOT NULL DEFAULT 0,
        refused INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (marketplace, partner)
    );
    """,
    # v13: the database session a run was started from (PostgreSQL: backend pid and start), so that a run
    # left "running" by a dead process is found while other live processes share the store's lease
    """
    ALTER TABLE runs ADD COLUMN session TEXT;
    """,
    # v14: an order's SKUs in one column of the order (``skus``: one per line of text, NULL when it has none)
    # instead of a row per line in order_items with an index on sku. The SKU search was all that read them,
    # and it matches LIKE '%text%', which no index serves; the lines themselves are in the canonical document.
    # Writing them cost each imported order three rows, three index entries and three key checks
    # (bench/RESULTS.md, round 8: about half of what storing a page cost)
    """
    ALTER TABLE orders ADD COLUMN skus TEXT;
    UPDATE orders SET skus = (SELECT group_concat(i.sku, char(10)) FROM order_items i
                              WHERE i.store = orders.store AND i.order_key = orders.order_key);
    DROP TABLE order_items;
    """,
    # v15: no index on order_key alone. Its one reader, the stores holding a key (``find_order_stores``), asks
    # each store's primary key (store, order_key) instead, and there are few stores. Order keys come in no
    # order, so every page written touched a leaf of that index per order: dropping it took about a fifth
    # of the cost of storing a page of an import into a book of 100,000 orders (bench/RESULTS.md, round 13)
    """
    DROP INDEX orders_key;
    """,
]
"""DDL scripts; ``MIGRATIONS[i]`` brings a file from version ``i`` to ``i + 1``."""


def version(conn: sqlite3.Connection) -> int:
    """The schema version of the file (``PRAGMA user_version``)."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, where: str, migrations: Sequence[str] | None = None) -> int:
    """Apply every migration newer than the file, in one transaction; return the resulting version."""
    scripts = MIGRATIONS if migrations is None else migrations
    with transaction(conn, where=where):
        current = version(conn)
        if current > len(scripts):
            raise StoreError(
                f"{where} has schema version {current}, newer than this "
                f"connector-core knows ({len(scripts)}): upgrade connector-core"
            )
        for number in range(current, len(scripts)):
            for statement in split_statements(scripts[number]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number + 1}")
    return version(conn)
