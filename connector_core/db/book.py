"""The canonical order book on one SQLite file (the embedded default backend).

The file lives at the path given to :class:`OrderBook`, else
``$CONNECTOR_HOST_DB``, else ``$XDG_DATA_HOME/connector-host/orders.sqlite3``
(``~/.local/share/...`` by default). It is created with mode ``0600``
because store settings (secrets included) are kept in it as given. Its
tables are in :mod:`connector_core.db.migrations`.

Writes are batched (``executemany``) and every multi-row write is one
transaction: :meth:`OrderBook.save_rows` stores a page of orders, their
items, their rejects, the accept intents it needs and the cursor that covers
them together, or nothing.

The marketplace's document of an order is stored as it was mapped
(``canonical`` and ``raw``, with their content hash); what the host changes
later (status after an accept, a cancel or a ship; internal notes) lives in
columns beside it, so such a change is one ``UPDATE`` with no decoding or
re-encoding, and a re-sync of an unchanged document keeps it. A changed
document from the marketplace replaces the host's status columns.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path
from typing import Any

from connector_core.clock import now_iso
from connector_core.db import migrations
from connector_core.db.connection import BUSY_TIMEOUT_MS, connect, default_db_path, transaction
from connector_core.db.history import HistoryTables
from connector_core.db.leases import DEFAULT_TTL, Lease, acquire
from connector_core.db.outbox import OutboxTables
from connector_core.db.quota import LedgerTable, QuotaTable
from connector_core.db.rows import (
    OrderRow,
    OrderSummary,
    PageStats,
    Reject,
    RejectedRow,
    StoreRecord,
    dumps,
    order_from_db,
    order_summary,
    prepare_row,
    rejected_row,
    store_record,
)
from connector_core.errors import StoreError
from connector_core.models import MarketplaceStatus, Order, OrderStatus

BULK_CHECKPOINT_PAGES = 10_000
"""WAL pages an import (:meth:`OrderBook.bulk_writes`) lets pile up before a checkpoint (SQLite's default: 1,000)."""
_BATCH = 500  # host parameters per IN (...) query, well under SQLite's limit
_ORDER_COLUMNS = (
    "o.canonical, o.raw, o.status, o.marketplace_status, o.marketplace_status_name, o.host_changed_at, n.notes"
    " FROM orders o LEFT JOIN order_notes n ON n.store = o.store AND n.order_key = o.order_key"
)
_SQLITE_MAGIC = b"SQLite format 3\x00"


def _check_existing(path: Path) -> None:
    """Refuse an existing file that is not an order book, before anything touches it."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return
    if size == 0:
        return  # an empty file: created just now, or by an interrupted first open
    try:
        with path.open("rb") as f:
            head = f.read(len(_SQLITE_MAGIC))
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc}") from None
    if head != _SQLITE_MAGIC:
        raise StoreError(f"{path} is not an order book (not an SQLite file): pass --db a new or existing order book")
    try:
        probe = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            tables = {r[0] for r in probe.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            probe.close()
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read {path}: {exc}") from None
    if tables and "stores" not in tables:
        raise StoreError(
            f"{path} is an SQLite database of something else (no stores table), not an order book: "
            "pass --db a new or existing order book"
        )


class OrderBook(OutboxTables, HistoryTables, QuotaTable, LedgerTable):
    """The order book on one SQLite file. Use as a context manager, or call :meth:`close`."""

    UTF8_TEXT = "CAST(? AS TEXT)"
    """The parameter of a JSON column: UTF-8 bytes stored as text (SQLite reads a blob cast to text as UTF-8)."""

    def __init__(self, path: str | os.PathLike[str] | None = None, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> None:
        self.path = Path(path).expanduser() if path is not None else default_db_path()
        self.busy_timeout_ms = busy_timeout_ms
        _check_existing(self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not self.path.exists():
                fd = os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600)
                os.close(fd)
            os.chmod(self.path, 0o600)
            self.conn = connect(self.path, busy_timeout_ms)
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
        return migrations.version(self.conn)

    def migrate(self, scripts: Sequence[str] | None = None) -> int:
        """Apply every migration newer than the file; return the resulting version."""
        return migrations.migrate(self.conn, f"the order book {self.path}", scripts)

    def reopen(self) -> OrderBook:
        """A new connection to the same book (for another thread or a forked process)."""
        return OrderBook(self.path, busy_timeout_ms=self.busy_timeout_ms)

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

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``): committed on success, rolled back on error.

        Inside a transaction already open on this connection it is a
        savepoint of it (all-or-nothing too; the outer one commits), so
        several writes can be batched into one commit.
        """
        return transaction(self.conn, savepoint="order_book", where=f"the order book {self.path}")

    def lease(self, store: str, *, purpose: str, ttl: float = DEFAULT_TTL, wait: float = 0.0) -> Lease:
        """Take the store's lease (see :mod:`connector_core.db.leases`); use it as a context manager.

        Waits up to ``wait`` seconds for another process's lease, then raises
        :class:`~connector_core.errors.LeaseBusyError`.
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
                        dumps(dict(settings)),
                        dumps(dict(status_map or {})),
                        dumps(dict(store_settings or {})),
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
        return store_record(row)

    def list_stores(self) -> list[StoreRecord]:
        """Every store, by name."""
        return [store_record(r) for r in self.conn.execute("SELECT * FROM stores ORDER BY name")]

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
            c.execute("UPDATE stores SET status_map = ? WHERE name = ?", (dumps(mapping), name))
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
                c.execute("UPDATE stores SET settings = ? WHERE name = ?", (dumps(dict(settings)), name))
            if store_settings is not None:
                c.execute("UPDATE stores SET store_settings = ? WHERE name = ?", (dumps(dict(store_settings)), name))
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
        self,
        store: str,
        rows: Sequence[OrderRow],
        rejects: Sequence[Reject] = (),
        cursor: Any = None,
        *,
        accept: Sequence[str] = (),
    ) -> PageStats:
        """:meth:`save_page` for orders already turned into rows (:func:`prepare_row`, e.g. in a worker).

        ``accept``: keys of orders in ``rows`` to accept on the marketplace;
        for each that is new or changed, an accept intent is written in the
        same transaction (the accept outbox), so a crash after this commit
        only delays the accept. An unchanged order is not accepted again.
        """
        latest: dict[str, OrderRow] = {row.order_key: row for row in rows}  # the last copy of a key in a page wins
        stamp = now_iso()
        wanted = set(accept)
        with self.transaction() as c:
            existing = _existing_hashes(c, store, list(latest))
            inserts: list[tuple[Any, ...]] = []
            updates: list[tuple[Any, ...]] = []
            unchanged = 0
            accepts: list[tuple[Any, ...]] = []
            for key, row in latest.items():
                digest = row.hash
                held = existing.get(key)
                if held == digest:
                    unchanged += 1
                    continue
                if held is not None:
                    updates.append((*row[1:], stamp, store, key))
                else:
                    inserts.append((store, *row, stamp, stamp))
                if key in wanted:
                    accepts.append((store, key, stamp))
            text = self.UTF8_TEXT  # canonical and raw come as UTF-8 bytes and are stored as text
            c.executemany(
                "INSERT INTO orders (store, order_key, order_number, status, marketplace_status, order_date,"
                " modified_date, canonical, raw, hash, marketplace_status_name, skus, created_at, updated_at)"
                f" VALUES (?, ?, ?, ?, ?, ?, ?, {text}, {text}, ?, ?, ?, ?, ?)",
                inserts,
            )
            c.executemany(
                "UPDATE orders SET order_number = ?, status = ?, marketplace_status = ?, order_date = ?,"
                f" modified_date = ?, canonical = {text}, raw = {text}, hash = ?, marketplace_status_name = ?,"
                " skus = ?, host_changed_at = NULL, updated_at = ? WHERE store = ? AND order_key = ?",
                updates,
            )
            self._queue_accepts(c, accepts)
            _insert_rejects(c, store, rejects, stamp)
            if cursor is not None:
                _save_cursor(c, store, cursor)
        return PageStats(inserted=len(inserts), updated=len(updates), unchanged=unchanged, rejected=len(rejects))

    def get_order(self, store: str, order_key: str) -> Order:
        """The canonical order; :class:`StoreError` if it is not in the book."""
        row = self.conn.execute(
            f"SELECT {_ORDER_COLUMNS} WHERE o.store = ? AND o.order_key = ?", (store, order_key)
        ).fetchone()
        if row is None:
            raise _no_order(store, order_key)
        return order_from_db(row)

    def has_order(self, store: str, order_key: str) -> bool:
        """Whether the book holds this order (nothing is decoded)."""
        found = self.conn.execute("SELECT 1 FROM orders WHERE store = ? AND order_key = ?", (store, order_key))
        return found.fetchone() is not None

    def require_order(self, store: str, order_key: str) -> None:
        """:class:`StoreError` unless the book holds this order (nothing is decoded)."""
        if not self.has_order(store, order_key):
            raise _no_order(store, order_key)

    def set_internal_notes(self, store: str, order_key: str, notes: str | None) -> None:
        """Set (or, with ``None`` or an empty text, clear) the host's internal notes of an order.

        The notes live beside the marketplace's copy, so a later sync that
        updates the order keeps them.
        """
        self.require_order(store, order_key)
        with self.transaction():
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
        """The stores holding an order with this key (one primary-key lookup per store)."""
        found = self.conn.execute(
            "SELECT s.name FROM stores s WHERE EXISTS"
            " (SELECT 1 FROM orders o WHERE o.store = s.name AND o.order_key = ?) ORDER BY s.name",
            (order_key,),
        )
        return [r[0] for r in found]

    def iter_orders(self, store: str) -> Iterator[Order]:
        """Every order of ``store``, by key."""
        for row in self.conn.execute(f"SELECT {_ORDER_COLUMNS} WHERE o.store = ? ORDER BY o.order_key", (store,)):
            yield order_from_db(row)

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
        return [order_summary(r) for r in self.conn.execute(sql, args)]

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
    ) -> None:
        """Record a status the host changed (accept, cancel, ship): one ``UPDATE``, the document untouched.

        Without ``marketplace_status`` the marketplace's code and name stay
        as they are. :class:`StoreError` if the order is not in the book.
        """
        self.update_statuses(store, [(order_key, OrderStatus(status), marketplace_status)])

    def update_statuses(self, store: str, changes: Sequence[tuple[str, OrderStatus, MarketplaceStatus | None]]) -> None:
        """:meth:`update_order_status` for many orders of one store, in one write."""
        stamp = now_iso()
        with self.transaction() as c:
            for key, status, market in changes:
                if market is None:
                    cur = c.execute(
                        "UPDATE orders SET status = ?, host_changed_at = ?, updated_at = ?"
                        " WHERE store = ? AND order_key = ?",
                        (OrderStatus(status).value, stamp, stamp, store, key),
                    )
                else:
                    cur = c.execute(
                        "UPDATE orders SET status = ?, marketplace_status = ?, marketplace_status_name = ?,"
                        " host_changed_at = ?, updated_at = ? WHERE store = ? AND order_key = ?",
                        (OrderStatus(status).value, market.code, market.name, stamp, stamp, store, key),
                    )
                if cur.rowcount == 0:
                    raise _no_order(store, key)

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
        return [rejected_row(r) for r in self.conn.execute(sql, args)]

    def get_rejected(self, reject_id: int) -> RejectedRow:
        """One quarantined payload; :class:`StoreError` if the id is unknown."""
        row = self.conn.execute("SELECT * FROM rejected WHERE id = ?", (reject_id,)).fetchone()
        if row is None:
            raise StoreError(f"no rejected payload with id {reject_id}: see `rejected list`")
        return rejected_row(row)

    def mark_rejected_retried(self, reject_id: int) -> None:
        """Stamp a quarantined payload as retried."""
        with self.transaction() as c:
            c.execute("UPDATE rejected SET retried_at = ? WHERE id = ?", (now_iso(), reject_id))


# -- helpers -------------------------------------------------------------------


def _no_order(store: str, order_key: str) -> StoreError:
    return StoreError(f"no order {order_key!r} in store {store!r}: run `sync` first?", store=store, order_key=order_key)


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
        (store, dumps(cursor), now_iso()),
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
