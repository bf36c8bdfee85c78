"""The canonical order book: one SQLite file per host.

The file lives at the path given to :class:`OrderBook`, else
``$CONNECTOR_HOST_DB``, else ``$XDG_DATA_HOME/connector-host/orders.sqlite3``
(``~/.local/share/...`` by default). It is created with mode ``0600``
because store settings (secrets included) are kept in it as given.

The schema is versioned: :data:`MIGRATIONS` is the single list of DDL
scripts, applied in order and recorded in ``PRAGMA user_version``, so an
older file upgrades in place. Append a script to evolve the schema; never
edit one that has shipped.

Writes are batched (``executemany``) and every multi-row write is one
transaction: :meth:`OrderBook.save_page` stores a page of orders, their
items, their rejects and the cursor that covers them together, or nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import attrs
import orjson

from connector_core.catalogue import CATALOGUE_DDL
from connector_core.errors import StoreError
from connector_core.leases import DEFAULT_TTL, LEASES_DDL, Lease, acquire
from connector_core.models import (
    MarketplaceStatus,
    Order,
    OrderStatus,
    PushResult,
    Shipment,
    from_json,
    to_json,
)
from connector_core.notify import NOTIFICATIONS_DDL
from connector_core.sqlite_tx import write_transaction

DB_ENV = "CONNECTOR_HOST_DB"
BUSY_TIMEOUT_MS = 30_000
BULK_CHECKPOINT_PAGES = 10_000
"""WAL pages an import (:meth:`OrderBook.bulk_writes`) lets pile up before a checkpoint (SQLite's default: 1,000)."""
_BATCH = 500  # host parameters per IN (...) query, well under SQLite's limit

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
    CATALOGUE_DDL,
    # v3: customer notifications (shipment confirmations)
    NOTIFICATIONS_DDL,
    # v4: per-store leases (one host process at a time syncs or pushes a store)
    LEASES_DDL,
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
]
"""DDL scripts; ``MIGRATIONS[i]`` brings a file from version ``i`` to ``i + 1``."""


def default_db_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$CONNECTOR_HOST_DB``, else ``$XDG_DATA_HOME/connector-host/orders.sqlite3``."""
    env = os.environ if environ is None else environ
    if env.get(DB_ENV):
        return Path(env[DB_ENV]).expanduser()
    data_home = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home).expanduser() / "connector-host" / "orders.sqlite3"


def now_iso() -> str:
    """The current UTC time as ISO 8601 (``...Z``)."""
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _dump_bytes(value: Any) -> bytes:
    # orjson writes the same compact, key-sorted UTF-8 JSON as the json call below, about ten times
    # faster (it is most of the cost of storing an order); json takes what orjson refuses (big ints).
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _dumps(value: Any) -> str:
    return _dump_bytes(value).decode()


def order_hash(order: Order) -> str:
    """A content hash of the whole order (canonical fields and raw payload)."""
    return _stored_form(to_json(order))[2]


def _stored_form(data: dict[str, Any]) -> tuple[str, str, str]:
    """The ``canonical`` and ``raw`` column texts of an order's JSON form, and their content hash.

    The hash is of the two columns' bytes, so nothing is serialised twice (an
    order book written before this hashed one JSON text of both: its orders
    are rewritten once, unchanged, by their next sync). ``data`` is not modified.
    """
    canonical = _dump_bytes({k: v for k, v in data.items() if k != "raw"})
    raw = _dump_bytes(data.get("raw", {}))
    digest = hashlib.sha256(canonical)
    digest.update(b"\n")
    digest.update(raw)  # == sha256 of f"{canonical}\n{raw}", without building that text
    return canonical.decode(), raw.decode(), digest.hexdigest()


def shipment_key(shipment: Shipment) -> str:
    """The outbox idempotency key: ``shipment_id`` when set, else tracking number and items."""
    if shipment.shipment_id:
        return f"id:{shipment.shipment_id}"
    items = sorted((i.line_key, i.quantity) for i in shipment.items)
    return "t:" + hashlib.sha256(_dumps([shipment.tracking_number, items]).encode()).hexdigest()[:32]


@attrs.frozen
class StoreRecord:
    """One configured store as saved (``settings`` holds secrets: never print it unmasked)."""

    name: str
    marketplace: str
    settings: dict[str, Any] = attrs.field(repr=False)
    status_map: dict[str, str] = attrs.field(factory=dict)
    store_settings: dict[str, Any] = attrs.field(factory=dict, repr=False)
    created_at: str = ""


@attrs.frozen
class PageStats:
    """What :meth:`OrderBook.save_page` did with one page."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0


class OrderRow(NamedTuple):
    """One order as :meth:`OrderBook.save_rows` writes it: its columns, content hash and item rows.

    Built by :func:`prepare_row` from the order's JSON form; plain strings and
    tuples, so a page of them crosses a process boundary cheaply.
    """

    order_key: str
    order_number: str
    status: str
    marketplace_status: str
    order_date: str | None
    modified_date: str | None
    canonical: str
    raw: str
    hash: str
    items: tuple[tuple[str, str | None, int, str], ...]
    """``(line_key, sku, quantity, item JSON)`` per line."""


def prepare_row(order: Order, document: dict[str, Any] | None = None) -> OrderRow:
    """The row of ``order``; ``document`` is its :func:`~connector_core.models.to_json` form if already made.

    One JSON form per order: the hash, both JSON columns and the item rows
    come from it. ``document`` is not modified.
    """
    data = to_json(order) if document is None else document
    canonical, raw, digest = _stored_form(data)
    return OrderRow(
        order.order_key,
        order.order_number,
        order.status.value,
        order.marketplace_status.code,
        _iso(order.order_date),
        _iso(order.modified_date),
        canonical,
        raw,
        digest,  # == order_hash(order)
        tuple((item["line_key"], item["sku"], item["quantity"], _dumps(item)) for item in data["items"]),
    )


def order_from_row(row: OrderRow) -> Order:
    """The :class:`Order` a row was made from (its two JSON columns read back)."""
    return _from_columns(row.canonical, row.raw)


def _from_columns(canonical: str, raw: str) -> Order:
    data = json.loads(canonical)
    data["raw"] = json.loads(raw)
    return from_json(data, Order)


@attrs.frozen
class Reject:
    """A payload to quarantine: where it failed, why, and the payload itself."""

    stage: str
    reason: str
    order_key: str | None = None
    path: str | None = None
    payload: str | None = attrs.field(default=None, repr=False)
    retried: bool = False  # already recovered (e.g. fetched again and imported): stored with retried_at


@attrs.frozen
class RejectedRow:
    """A quarantined payload as stored."""

    id: int
    store: str
    order_key: str | None
    stage: str
    reason: str
    path: str | None
    payload: str | None = attrs.field(repr=False)
    created_at: str
    retried_at: str | None


@attrs.frozen
class OrderSummary:
    """One line of ``orders list``."""

    store: str
    order_key: str
    order_number: str
    status: str
    marketplace_status: str
    order_date: str
    total: str
    currency: str
    updated_at: str


@attrs.frozen
class OutboxEntry:
    """A shipment in the outbox and what became of it."""

    id: int
    store: str
    order_key: str
    shipment: Shipment
    state: str
    attempts: int
    last_error: str | None
    result: PushResult | None
    created_at: str
    pushed_at: str | None


def _connect(path: Path, timeout_ms: int) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=timeout_ms / 1000, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {int(timeout_ms)}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


class OrderBook:
    """The order book on one SQLite file. Use as a context manager, or call :meth:`close`."""

    def __init__(self, path: str | os.PathLike[str] | None = None, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> None:
        self.path = Path(path).expanduser() if path is not None else default_db_path()
        self.busy_timeout_ms = busy_timeout_ms
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not self.path.exists():
                fd = os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600)
                os.close(fd)
            os.chmod(self.path, 0o600)
            self.conn = _connect(self.path, busy_timeout_ms)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the order book at {self.path}: {exc}") from None
        self.migrate()

    # -- lifecycle -----------------------------------------------------------

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def __enter__(self) -> OrderBook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def version(self) -> int:
        """The schema version of the file (``PRAGMA user_version``)."""
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def migrate(self, migrations: Sequence[str] | None = None) -> int:
        """Apply every migration newer than the file; return the resulting version."""
        scripts = MIGRATIONS if migrations is None else migrations
        with self.transaction():
            current = self.version
            if current > len(scripts):
                raise StoreError(
                    f"the order book {self.path} has schema version {current}, newer than this "
                    f"connector-core knows ({len(scripts)}): upgrade connector-core"
                )
            for version in range(current, len(scripts)):
                for statement in _statements(scripts[version]):
                    self.conn.execute(statement)
                self.conn.execute(f"PRAGMA user_version = {version + 1}")
        return self.version

    @contextmanager
    def bulk_writes(self, *, checkpoint_pages: int = BULK_CHECKPOINT_PAGES) -> Iterator[None]:
        """Many large write transactions in a row (an import): checkpoint the WAL less often meanwhile.

        SQLite moves its write-ahead log into the database file (a
        *checkpoint*, with two ``fsync`` calls) whenever a commit leaves the
        log over 1,000 pages; a large import would stop for one every few
        hundred orders. Inside this block the log may grow to
        ``checkpoint_pages`` pages first (about 40 MB by default); on the way
        out one passive checkpoint moves what is left (all of it, unless a
        reader still holds an older snapshot), so the block's work is not
        left for later. Readers and other writers are not blocked.
        """
        previous = int(self.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0])
        self.conn.execute(f"PRAGMA wal_autocheckpoint = {int(checkpoint_pages)}")
        try:
            yield
        finally:
            self.conn.execute(f"PRAGMA wal_autocheckpoint = {previous}")
            if not self.conn.in_transaction:
                with suppress(sqlite3.Error):
                    self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``): committed on success, rolled back on error.

        Inside a transaction already open on this connection it is a
        savepoint of it (all-or-nothing too; the outer one commits), so
        several writes can be batched into one commit.
        """
        if self.conn.in_transaction:
            with write_transaction(self.conn, "order_book"):
                yield self.conn
            return
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreError(f"the order book {self.path} is not writable: {exc}") from None
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        try:
            self.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self.conn.execute("ROLLBACK")
            raise StoreError(f"could not commit to the order book: {exc}") from None

    def lease(self, store: str, *, purpose: str, ttl: float = DEFAULT_TTL, wait: float = 0.0) -> Lease:
        """Take the store's lease (see :mod:`connector_core.leases`); use it as a context manager.

        Waits up to ``wait`` seconds for another process's lease, then raises
        :class:`~connector_core.leases.LeaseBusyError`.
        """
        return acquire(
            self.conn, self.path, store, purpose=purpose, ttl=ttl, wait=wait, timeout_ms=self.busy_timeout_ms
        )

    # -- stores --------------------------------------------------------------

    def add_store(
        self,
        name: str,
        marketplace: str,
        settings: Mapping[str, Any],
        *,
        status_map: Mapping[str, str] | None = None,
        store_settings: Mapping[str, Any] | None = None,
    ) -> StoreRecord:
        """Save a new store; :class:`StoreError` if the name is taken."""
        created = now_iso()
        try:
            with self.transaction() as c:
                c.execute(
                    "INSERT INTO stores (name, marketplace, settings, status_map, store_settings, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        name,
                        marketplace,
                        _dumps(dict(settings)),
                        _dumps(dict(status_map or {})),
                        _dumps(dict(store_settings or {})),
                        created,
                    ),
                )
        except sqlite3.IntegrityError:
            raise StoreError(f"a store named {name!r} already exists: pick another --name", store=name) from None
        return self.get_store(name)

    def has_store(self, name: str) -> bool:
        """Whether a store named ``name`` exists."""
        return self.conn.execute("SELECT 1 FROM stores WHERE name = ?", (name,)).fetchone() is not None

    def get_store(self, name: str) -> StoreRecord:
        """The store named ``name``; :class:`StoreError` if there is none."""
        row = self.conn.execute("SELECT * FROM stores WHERE name = ?", (name,)).fetchone()
        if row is None:
            known = ", ".join(s.name for s in self.list_stores()) or "none yet: add one with `stores add`"
            raise StoreError(f"no store named {name!r} (stores: {known})", store=name)
        return _store(row)

    def list_stores(self) -> list[StoreRecord]:
        """Every store, by name."""
        return [_store(r) for r in self.conn.execute("SELECT * FROM stores ORDER BY name")]

    def remove_store(self, name: str) -> None:
        """Delete a store with its orders, cursor, outbox and rejects."""
        self.get_store(name)
        with self.transaction() as c:
            c.execute("DELETE FROM outbox WHERE store = ?", (name,))
            c.execute("DELETE FROM stores WHERE name = ?", (name,))

    def set_status_map(self, name: str, marketplace_status: str, status: str | None) -> StoreRecord:
        """Map ``marketplace_status`` to ``status`` for this store (``None`` removes the entry)."""
        with self.transaction() as c:
            record = self.get_store(name)
            mapping = dict(record.status_map)
            if status is None:
                mapping.pop(str(marketplace_status), None)
            else:
                mapping[str(marketplace_status)] = OrderStatus(status).value
            c.execute("UPDATE stores SET status_map = ? WHERE name = ?", (_dumps(mapping), name))
        return self.get_store(name)

    def update_store(
        self,
        name: str,
        *,
        settings: Mapping[str, Any] | None = None,
        store_settings: Mapping[str, Any] | None = None,
    ) -> StoreRecord:
        """Replace a store's plugin settings and/or host-side settings."""
        with self.transaction() as c:
            self.get_store(name)
            if settings is not None:
                c.execute("UPDATE stores SET settings = ? WHERE name = ?", (_dumps(dict(settings)), name))
            if store_settings is not None:
                c.execute("UPDATE stores SET store_settings = ? WHERE name = ?", (_dumps(dict(store_settings)), name))
        return self.get_store(name)

    # -- cursors -------------------------------------------------------------

    def get_cursor(self, store: str) -> Any:
        """The saved cursor of ``store`` (``None`` before the first sync)."""
        row = self.conn.execute("SELECT cursor FROM cursors WHERE store = ?", (store,)).fetchone()
        return None if row is None else json.loads(row[0])

    def set_cursor(self, store: str, cursor: Any) -> None:
        """Save a cursor on its own (e.g. to reset a store's sync)."""
        with self.transaction() as c:
            _save_cursor(c, store, cursor)

    # -- orders --------------------------------------------------------------

    def save_page(
        self,
        store: str,
        orders: Sequence[Order],
        rejects: Sequence[Reject] = (),
        cursor: Any = None,
        *,
        documents: Sequence[dict[str, Any]] | None = None,
    ) -> PageStats:
        """Upsert a page of orders with their items and rejects, and save its cursor: one transaction.

        Orders whose content hash is unchanged are not rewritten. A ``None``
        cursor leaves the saved cursor as it is. ``documents``, when given,
        are the orders' :func:`~connector_core.models.to_json` forms (one per
        order, same order), already computed by the caller; they are not
        modified.
        """
        if documents is not None and len(documents) != len(orders):
            raise ValueError(f"save_page got {len(documents)} documents for {len(orders)} orders")
        for order in orders:
            if order.store != store:
                raise StoreError(
                    f"order {order.order_key!r} belongs to store {order.store!r}, not {store!r}", store=store
                )
        rows = [prepare_row(order, None if documents is None else documents[i]) for i, order in enumerate(orders)]
        return self.save_rows(store, rows, rejects, cursor)

    def save_rows(
        self, store: str, rows: Sequence[OrderRow], rejects: Sequence[Reject] = (), cursor: Any = None
    ) -> PageStats:
        """:meth:`save_page` for orders already turned into rows (:func:`prepare_row`, e.g. in a worker)."""
        latest: dict[str, OrderRow] = {row.order_key: row for row in rows}  # the last copy of a key in a page wins
        stamp = now_iso()
        with self.transaction() as c:
            existing = _existing_hashes(c, store, list(latest))
            inserts: list[tuple[Any, ...]] = []
            updates: list[tuple[Any, ...]] = []
            unchanged = 0
            item_rows: list[tuple[Any, ...]] = []
            for key, row in latest.items():
                digest = row.hash
                held = existing.get(key)
                if held == digest:
                    unchanged += 1
                    continue
                item_rows.extend((store, key, *item) for item in row.items)
                if held is not None:
                    updates.append((*row[1:9], stamp, store, key))
                else:
                    inserts.append((store, *row[:9], stamp, stamp))
            c.executemany(
                "INSERT INTO orders (store, order_key, order_number, status, marketplace_status, order_date,"
                " modified_date, canonical, raw, hash, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                inserts,
            )
            c.executemany(
                "UPDATE orders SET order_number = ?, status = ?, marketplace_status = ?, order_date = ?,"
                " modified_date = ?, canonical = ?, raw = ?, hash = ?, updated_at = ?"
                " WHERE store = ? AND order_key = ?",
                updates,
            )
            c.executemany(
                "DELETE FROM order_items WHERE store = ? AND order_key = ?",
                [(store, u[-1]) for u in updates],
            )
            c.executemany(
                "INSERT INTO order_items (store, order_key, line_key, sku, quantity, data) VALUES (?, ?, ?, ?, ?, ?)",
                item_rows,
            )
            _insert_rejects(c, store, rejects, stamp)
            if cursor is not None:
                _save_cursor(c, store, cursor)
        return PageStats(inserted=len(inserts), updated=len(updates), unchanged=unchanged, rejected=len(rejects))

    def get_order(self, store: str, order_key: str) -> Order:
        """The canonical order; :class:`StoreError` if it is not in the book."""
        row = self.conn.execute(
            "SELECT o.canonical, o.raw, n.notes FROM orders o LEFT JOIN order_notes n"
            " ON n.store = o.store AND n.order_key = o.order_key WHERE o.store = ? AND o.order_key = ?",
            (store, order_key),
        ).fetchone()
        if row is None:
            raise StoreError(
                f"no order {order_key!r} in store {store!r}: run `sync` first?", store=store, order_key=order_key
            )
        return _with_notes(_order(row), row["notes"])

    def set_internal_notes(self, store: str, order_key: str, notes: str | None) -> None:
        """Set (or, with ``None`` or an empty text, clear) the host's internal notes of an order.

        The notes live beside the marketplace's copy, so a later sync that
        updates the order keeps them.
        """
        self.get_order(store, order_key)  # a clear error for an unknown order
        with self.conn:
            if notes:
                self.conn.execute(
                    "INSERT INTO order_notes (store, order_key, notes, updated_at) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (store, order_key) DO UPDATE SET notes = excluded.notes,"
                    " updated_at = excluded.updated_at",
                    (store, order_key, notes, now_iso()),
                )
            else:
                self.conn.execute("DELETE FROM order_notes WHERE store = ? AND order_key = ?", (store, order_key))

    def find_order_stores(self, order_key: str) -> list[str]:
        """The stores holding an order with this key."""
        return [
            r[0] for r in self.conn.execute("SELECT store FROM orders WHERE order_key = ? ORDER BY store", (order_key,))
        ]

    def iter_orders(self, store: str) -> Iterator[Order]:
        """Every order of ``store``, by key."""
        for row in self.conn.execute(
            "SELECT o.canonical, o.raw, n.notes FROM orders o LEFT JOIN order_notes n"
            " ON n.store = o.store AND n.order_key = o.order_key WHERE o.store = ? ORDER BY o.order_key",
            (store,),
        ):
            yield _with_notes(_order(row), row["notes"])

    def list_orders(
        self, *, store: str | None = None, status: str | None = None, limit: int | None = None
    ) -> list[OrderSummary]:
        """Order summaries, newest first."""
        sql = (
            "SELECT store, order_key, order_number, status, marketplace_status, order_date, updated_at,"
            " json_extract(canonical, '$.total') AS total, json_extract(canonical, '$.currency') AS currency"
            " FROM orders WHERE 1 = 1"
        )
        args: list[Any] = []
        if store is not None:
            sql += " AND store = ?"
            args.append(store)
        if status is not None:
            sql += " AND status = ?"
            args.append(OrderStatus(status).value)
        sql += " ORDER BY order_date DESC, store, order_key"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [
            OrderSummary(
                store=r["store"],
                order_key=r["order_key"],
                order_number=r["order_number"],
                status=r["status"],
                marketplace_status=r["marketplace_status"],
                order_date=r["order_date"],
                total=str(r["total"]),
                currency=str(r["currency"]),
                updated_at=r["updated_at"],
            )
            for r in self.conn.execute(sql, args)
        ]

    def count_orders(self, store: str | None = None) -> int:
        """How many orders the book holds (for one store or all)."""
        if store is None:
            return int(self.conn.execute("SELECT count(*) FROM orders").fetchone()[0])
        return int(self.conn.execute("SELECT count(*) FROM orders WHERE store = ?", (store,)).fetchone()[0])

    def update_order_status(
        self,
        store: str,
        order_key: str,
        status: OrderStatus | str,
        marketplace_status: MarketplaceStatus | None = None,
    ) -> Order:
        """Change an order's canonical (and optionally marketplace) status locally; return the new order."""
        with self.transaction() as c:
            order = self.get_order(store, order_key)
            changes: dict[str, Any] = {"status": OrderStatus(status)}
            if marketplace_status is not None:
                changes["marketplace_status"] = marketplace_status
            new = attrs.evolve(order, **changes)
            canonical, _, digest = _stored_form(to_json(new))
            c.execute(
                "UPDATE orders SET status = ?, marketplace_status = ?, canonical = ?, hash = ?, updated_at = ?"
                " WHERE store = ? AND order_key = ?",
                (
                    new.status.value,
                    new.marketplace_status.code,
                    canonical,
                    digest,
                    now_iso(),
                    store,
                    order_key,
                ),
            )
        return new

    # -- rejects -------------------------------------------------------------

    def add_rejects(self, store: str, rejects: Sequence[Reject]) -> None:
        """Quarantine payloads outside a page (e.g. a failure before mapping)."""
        with self.transaction() as c:
            _insert_rejects(c, store, rejects, now_iso())

    def list_rejected(self, *, store: str | None = None, limit: int | None = None) -> list[RejectedRow]:
        """Quarantined payloads, newest first."""
        sql = "SELECT * FROM rejected"
        args: list[Any] = []
        if store is not None:
            sql += " WHERE store = ?"
            args.append(store)
        sql += " ORDER BY id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [_rejected(r) for r in self.conn.execute(sql, args)]

    def get_rejected(self, reject_id: int) -> RejectedRow:
        """One quarantined payload; :class:`StoreError` if the id is unknown."""
        row = self.conn.execute("SELECT * FROM rejected WHERE id = ?", (reject_id,)).fetchone()
        if row is None:
            raise StoreError(f"no rejected payload with id {reject_id}: see `rejected list`")
        return _rejected(row)

    def mark_rejected_retried(self, reject_id: int) -> None:
        """Stamp a quarantined payload as retried."""
        with self.transaction() as c:
            c.execute("UPDATE rejected SET retried_at = ? WHERE id = ?", (now_iso(), reject_id))

    # -- outbox --------------------------------------------------------------

    def add_shipment(self, shipment: Shipment) -> int:
        """Put a shipment in the outbox; the same shipment recorded again returns the existing id."""
        key = shipment_key(shipment)
        with self.transaction() as c:
            self.get_order(shipment.store, shipment.order_key)
            c.execute(
                "INSERT INTO outbox (store, order_key, shipment_key, shipment, created_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (store, order_key, shipment_key) DO NOTHING",
                (shipment.store, shipment.order_key, key, _dumps(to_json(shipment)), now_iso()),
            )
            row = c.execute(
                "SELECT id FROM outbox WHERE store = ? AND order_key = ? AND shipment_key = ?",
                (shipment.store, shipment.order_key, key),
            ).fetchone()
        return int(row[0])

    def get_shipment(self, outbox_id: int) -> OutboxEntry:
        """One outbox entry; :class:`StoreError` if the id is unknown."""
        row = self.conn.execute("SELECT * FROM outbox WHERE id = ?", (outbox_id,)).fetchone()
        if row is None:
            raise StoreError(f"no shipment with outbox id {outbox_id}")
        return _outbox(row)

    def list_outbox(self, *, store: str | None = None, state: str | None = None) -> list[OutboxEntry]:
        """Outbox entries, oldest first."""
        sql = "SELECT * FROM outbox WHERE 1 = 1"
        args: list[Any] = []
        if store is not None:
            sql += " AND store = ?"
            args.append(store)
        if state is not None:
            sql += " AND state = ?"
            args.append(state)
        return [_outbox(r) for r in self.conn.execute(sql + " ORDER BY id", args)]

    def pending_shipments(self, store: str) -> list[OutboxEntry]:
        """Shipments of ``store`` waiting to be pushed, oldest first."""
        return self.list_outbox(store=store, state="pending")

    def mark_pushed(self, outbox_id: int, result: PushResult) -> None:
        """Record a successful push and its per-field result."""
        with self.transaction() as c:
            c.execute(
                "UPDATE outbox SET state = 'pushed', attempts = attempts + 1, last_error = NULL, result = ?,"
                " pushed_at = ? WHERE id = ?",
                (_dumps(to_json(result)), now_iso(), outbox_id),
            )

    def mark_retry(self, outbox_id: int, error: str) -> int:
        """Count a failed attempt that will be retried; return the attempts so far."""
        with self.transaction() as c:
            c.execute("UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE id = ?", (error, outbox_id))
            row = c.execute("SELECT attempts FROM outbox WHERE id = ?", (outbox_id,)).fetchone()
        return int(row[0])

    def mark_failed(self, outbox_id: int, error: str, result: PushResult | None = None) -> None:
        """Give up on a shipment: the marketplace refused it for good."""
        with self.transaction() as c:
            c.execute(
                "UPDATE outbox SET state = 'failed', attempts = attempts + 1, last_error = ?, result = ? WHERE id = ?",
                (error, None if result is None else _dumps(to_json(result)), outbox_id),
            )

    def requeue_shipment(self, outbox_id: int) -> None:
        """Put a failed shipment back to pending."""
        with self.transaction() as c:
            c.execute("UPDATE outbox SET state = 'pending', last_error = NULL WHERE id = ?", (outbox_id,))


# -- helpers -------------------------------------------------------------------


def _statements(script: str) -> Iterable[str]:
    """Split a DDL script into statements (``executescript`` would commit our transaction)."""
    buf = ""
    for part in script.split(";"):
        buf += part + ";"
        if sqlite3.complete_statement(buf):
            if buf.strip(" \t\r\n;"):
                yield buf.strip()
            buf = ""
    if buf.strip(" \t\r\n;"):
        yield buf.strip()


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _order(row: sqlite3.Row) -> Order:
    return _from_columns(row["canonical"], row["raw"])


def _with_notes(order: Order, notes: str | None) -> Order:
    """The order with the host's internal notes (they win over any the marketplace gave)."""
    return order if not notes else attrs.evolve(order, internal_notes=notes)


def _existing_hashes(c: sqlite3.Connection, store: str, keys: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for start in range(0, len(keys), _BATCH):
        chunk = keys[start : start + _BATCH]
        marks = ",".join("?" * len(chunk))
        for row in c.execute(
            f"SELECT order_key, hash FROM orders WHERE store = ? AND order_key IN ({marks})", (store, *chunk)
        ):
            found[row[0]] = row[1]
    return found


def _save_cursor(c: sqlite3.Connection, store: str, cursor: Any) -> None:
    c.execute(
        "INSERT INTO cursors (store, cursor, updated_at) VALUES (?, ?, ?)"
        " ON CONFLICT (store) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at",
        (store, _dumps(cursor), now_iso()),
    )


def _insert_rejects(c: sqlite3.Connection, store: str, rejects: Sequence[Reject], stamp: str) -> None:
    c.executemany(
        # the same payload rejected for the same reason again (an unchanged order exported again) is kept once
        "INSERT INTO rejected (store, order_key, stage, reason, path, payload, created_at, retried_at)"
        " SELECT ?, ?, ?, ?, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM rejected WHERE store = ?"
        " AND order_key IS ? AND stage = ? AND reason = ? AND payload IS ? AND retried_at IS NULL)",
        [
            (
                store,
                r.order_key,
                r.stage,
                r.reason,
                r.path,
                r.payload,
                stamp,
                stamp if r.retried else None,
                store,
                r.order_key,
                r.stage,
                r.reason,
                r.payload,
            )
            for r in rejects
        ],
    )


def _store(row: sqlite3.Row) -> StoreRecord:
    return StoreRecord(
        name=row["name"],
        marketplace=row["marketplace"],
        settings=json.loads(row["settings"]),
        status_map=json.loads(row["status_map"]),
        store_settings=json.loads(row["store_settings"]),
        created_at=row["created_at"],
    )


def _rejected(row: sqlite3.Row) -> RejectedRow:
    return RejectedRow(
        id=row["id"],
        store=row["store"],
        order_key=row["order_key"],
        stage=row["stage"],
        reason=row["reason"],
        path=row["path"],
        payload=row["payload"],
        created_at=row["created_at"],
        retried_at=row["retried_at"],
    )


def _outbox(row: sqlite3.Row) -> OutboxEntry:
    return OutboxEntry(
        id=row["id"],
        store=row["store"],
        order_key=row["order_key"],
        shipment=from_json(json.loads(row["shipment"]), Shipment),
        state=row["state"],
        attempts=row["attempts"],
        last_error=row["last_error"],
        result=None if row["result"] is None else from_json(json.loads(row["result"]), PushResult),
        created_at=row["created_at"],
        pushed_at=row["pushed_at"],
    )
