"""The order book's two outboxes: shipments to push, and orders to accept.

Every intent to change the marketplace is a row written in the same
transaction as what caused it (a ``ship`` for a shipment; the page that
imported an order for its accept), then drained: at-least-once, each send
idempotent on the marketplace's side, each result recorded on its row.
:class:`OutboxTables` is a part of :class:`~connector_core.db.book.OrderBook`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

from connector_core.clock import now_iso
from connector_core.db.rows import AcceptEntry, OutboxEntry, accept_entry, dumps, outbox_entry, shipment_key
from connector_core.errors import StoreError
from connector_core.models import PushResult, Shipment, to_json


class OutboxTables:
    """Outbox and accept-outbox methods of the order book (mixed into :class:`OrderBook`)."""

    conn: sqlite3.Connection

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:  # pragma: no cover - OrderBook's
        raise NotImplementedError

    def require_order(self, store: str, order_key: str) -> None:  # pragma: no cover - OrderBook's
        raise NotImplementedError

    # -- shipments -------------------------------------------------------------

    def add_shipment(self, shipment: Shipment) -> int:
        """Put a shipment in the outbox; the same shipment recorded again returns the existing id."""
        key = shipment_key(shipment)
        with self.transaction() as c:
            self.require_order(shipment.store, shipment.order_key)
            row = c.execute(
                "INSERT INTO outbox (store, order_key, shipment_key, shipment, created_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (store, order_key, shipment_key) DO NOTHING RETURNING id",
                (shipment.store, shipment.order_key, key, dumps(to_json(shipment)), now_iso()),
            ).fetchone()
            if row is None:
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
        return outbox_entry(row)

    def list_outbox(
        self, *, store: str | None = None, state: str | None = None, limit: int | None = None, offset: int = 0
    ) -> list[OutboxEntry]:
        """Outbox entries, oldest first (``limit`` of them from ``offset``)."""
        rows = _select(self.conn, "outbox", "id", store=store, state=state, limit=limit, offset=offset)
        return [outbox_entry(r) for r in rows]

    def pending_shipments(self, store: str) -> list[OutboxEntry]:
        """Shipments of ``store`` waiting to be pushed, oldest first."""
        return self.list_outbox(store=store, state="pending")

    def has_pending_shipments(self, store: str) -> bool:
        """Whether ``store`` has a shipment waiting (nothing is decoded)."""
        found = self.conn.execute("SELECT 1 FROM outbox WHERE store = ? AND state = 'pending' LIMIT 1", (store,))
        return found.fetchone() is not None

    def mark_pushed(self, outbox_id: int, result: PushResult) -> None:
        """Record a successful push and its per-field result."""
        with self.transaction() as c:
            c.execute(
                "UPDATE outbox SET state = 'pushed', attempts = attempts + 1, last_error = NULL, result = ?,"
                " pushed_at = ? WHERE id = ?",
                (dumps(to_json(result)), now_iso(), outbox_id),
            )

    def mark_retry(self, outbox_id: int, error: str) -> int:
        """Count a failed attempt that will be retried; return the attempts so far."""
        with self.transaction() as c:
            row = c.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE id = ? RETURNING attempts",
                (error, outbox_id),
            ).fetchone()
        return int(row[0])

    def mark_failed(self, outbox_id: int, error: str, result: PushResult | None = None) -> None:
        """Give up on a shipment: the marketplace refused it for good."""
        with self.transaction() as c:
            c.execute(
                "UPDATE outbox SET state = 'failed', attempts = attempts + 1, last_error = ?, result = ? WHERE id = ?",
                (error, None if result is None else dumps(to_json(result)), outbox_id),
            )

    def requeue_shipment(self, outbox_id: int) -> None:
        """Put a failed (or conflicting, or dropped) shipment back to pending."""
        with self.transaction() as c:
            c.execute(
                "UPDATE outbox SET state = 'pending', last_error = NULL, conflict = NULL, dropped_at = NULL"
                " WHERE id = ?",
                (outbox_id,),
            )

    def mark_conflict(self, outbox_id: int, error: str, conflict: Mapping[str, Any]) -> None:
        """Give up on a shipment that contradicts what the marketplace holds (e.g. another tracking number)."""
        with self.transaction() as c:
            c.execute(
                "UPDATE outbox SET state = 'conflict', attempts = attempts + 1, last_error = ?, conflict = ?"
                " WHERE id = ?",
                (error, dumps(dict(conflict)), outbox_id),
            )

    def drop_shipment(self, outbox_id: int) -> None:
        """Take a shipment out of the outbox for good (kept, as ``dropped``, for the record)."""
        with self.transaction() as c:
            c.execute("UPDATE outbox SET state = 'dropped', dropped_at = ? WHERE id = ?", (now_iso(), outbox_id))

    def order_shipments(self, store: str, order_key: str) -> list[OutboxEntry]:
        """Every outbox entry of one order, oldest first."""
        rows = self.conn.execute(
            "SELECT * FROM outbox WHERE store = ? AND order_key = ? ORDER BY id", (store, order_key)
        )
        return [outbox_entry(r) for r in rows]

    def count_outbox(self, *, store: str | None = None, state: str | None = None) -> int:
        """How many outbox entries match (for "showing N of M")."""
        given = {column: value for column, value in (("store", store), ("state", state)) if value is not None}
        where = " AND ".join(f"{column} = ?" for column in given) or "1 = 1"
        return int(self.conn.execute(f"SELECT count(*) FROM outbox WHERE {where}", list(given.values())).fetchone()[0])

    # -- accepts ---------------------------------------------------------------

    def _queue_accepts(self, c: sqlite3.Connection, rows: Sequence[tuple[str, str, str]]) -> None:
        """Write accept intents ``(store, order_key, stamp)`` inside the caller's transaction."""
        c.executemany(
            "INSERT INTO accepts (store, order_key, created_at) VALUES (?, ?, ?)"
            " ON CONFLICT (store, order_key) DO UPDATE SET state = 'pending', attempts = 0, last_error = NULL,"
            " done_at = NULL WHERE accepts.state != 'pending'",
            rows,
        )

    def queue_accepts(self, store: str, order_keys: Sequence[str]) -> None:
        """Write accept intents for orders already in the book (e.g. recovered by a second fetch)."""
        stamp = now_iso()
        with self.transaction() as c:
            self._queue_accepts(c, [(store, key, stamp) for key in order_keys])

    def pending_accepts(self, store: str, *, limit: int | None = None) -> list[AcceptEntry]:
        """Accept intents of ``store`` still to send, oldest first."""
        sql = "SELECT * FROM accepts WHERE store = ? AND state = 'pending' ORDER BY created_at, order_key"
        args: list[Any] = [store]
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [accept_entry(r) for r in self.conn.execute(sql, args)]

    def count_pending_accepts(self, store: str) -> int:
        """How many accept intents of ``store`` wait to be sent."""
        row = self.conn.execute("SELECT count(*) FROM accepts WHERE store = ? AND state = 'pending'", (store,))
        return int(row.fetchone()[0])

    def list_accepts(self, *, store: str | None = None, state: str | None = None) -> list[AcceptEntry]:
        """Accept intents, oldest first."""
        return [
            accept_entry(r) for r in _select(self.conn, "accepts", "created_at, order_key", store=store, state=state)
        ]

    def claim_accepts(self, store: str, order_keys: Sequence[str]) -> None:
        """Count an attempt for each accept about to be sent, in one committed write before any is sent.

        An accept whose attempts are above zero may have reached the
        marketplace already (a crash, a timeout): the next drain reads the
        order's current state from the marketplace before sending it again.
        """
        with self.transaction() as c:
            c.executemany(
                "UPDATE accepts SET attempts = attempts + 1 WHERE store = ? AND order_key = ? AND state = 'pending'",
                [(store, key) for key in order_keys],
            )

    def finish_accepts(
        self,
        store: str,
        done: Sequence[str],
        retry: Sequence[tuple[str, str]],
        failed: Sequence[tuple[str, str]],
        unsent: Sequence[str] = (),
    ) -> None:
        """Record a drain of claimed accepts in one write: ``done`` keys; ``(key, error)`` to retry or give up.

        ``unsent``: claimed but never sent (the drain stopped at a quota
        block): their attempt is given back.
        """
        stamp = now_iso()
        with self.transaction() as c:
            c.executemany(
                "UPDATE accepts SET state = 'done', last_error = NULL, done_at = ? WHERE store = ? AND order_key = ?",
                [(stamp, store, key) for key in done],
            )
            c.executemany(
                "UPDATE accepts SET last_error = ? WHERE store = ? AND order_key = ?",
                [(error, store, key) for key, error in retry],
            )
            c.executemany(
                "UPDATE accepts SET state = 'failed', last_error = ? WHERE store = ? AND order_key = ?",
                [(error, store, key) for key, error in failed],
            )
            c.executemany(
                "UPDATE accepts SET attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END"
                " WHERE store = ? AND order_key = ?",
                [(store, key) for key in unsent],
            )


def _select(
    conn: sqlite3.Connection,
    table: str,
    order: str,
    *,
    limit: int | None = None,
    offset: int = 0,
    **equal: str | None,
) -> list[sqlite3.Row]:
    """Rows of ``table`` (a name of ours, never user input) whose given columns equal the values not ``None``.

    ``limit`` rows from ``offset`` (every row by default).
    """
    given = {column: value for column, value in equal.items() if value is not None}
    where = " AND ".join(f"{column} = ?" for column in given) or "1 = 1"
    return conn.execute(
        f"SELECT * FROM {table} WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?",
        [*given.values(), -1 if limit is None else limit, offset],
    ).fetchall()
