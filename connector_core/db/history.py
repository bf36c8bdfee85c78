"""What the operator looks at: sync and push history (``runs``), paged listings, cancel reasons.

:class:`HistoryTables` is a part of :class:`~connector_core.db.book.OrderBook`,
as :class:`~connector_core.db.outbox.OutboxTables` is. Every listing here
returns a :class:`Page`: the rows asked for and how many match in all, so a
caller can say "showing N of M" and page on with ``offset``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Generic, TypeVar

import attrs

from connector_core.clock import now_iso
from connector_core.db.rows import OrderSummary, RejectedRow, dumps, order_summary, rejected_row
from connector_core.errors import StoreError
from connector_core.models import OrderStatus

T = TypeVar("T")

RUN_COUNTS = ("fetched", "stored", "rejected", "accepted", "pushed", "deferred", "errors")
"""The counters of a run; a sync fills the first four, a push ``pushed``; both ``deferred`` and ``errors``."""


@attrs.frozen
class Page(Generic[T]):
    """Some rows of a listing and how many rows match the filters in all."""

    rows: list[T]
    total: int
    offset: int = 0

    def showing(self, noun: str) -> str:
        """``showing 1-100 of 19,209 orders`` (or ``no orders``)."""
        if not self.rows:
            return f"no {noun}" if self.total == 0 else f"no {noun} from offset {self.offset} (of {self.total:,})"
        first, last = self.offset + 1, self.offset + len(self.rows)
        return f"showing {first:,}-{last:,} of {self.total:,} {noun}"


@attrs.frozen
class OrderFilter:
    """What ``orders list`` and ``orders export`` select: every field optional, all of them ANDed."""

    store: str | None = None
    status: str | None = None
    since: str | None = None
    """Orders placed at or after this ISO time (UTC)."""
    until: str | None = None
    """Orders placed before this ISO time (UTC)."""
    search: str | None = None
    """A part of the order key, the buyer's name or e-mail, or a SKU (case-insensitive)."""


@attrs.frozen
class RunRecord:
    """One sync or push of one store, as recorded."""

    id: int
    kind: str
    store: str
    sites: str | None
    state: str
    started_at: str
    ended_at: str | None
    fetched: int
    stored: int
    rejected: int
    accepted: int
    pushed: int
    deferred: int
    errors: int
    error: str | None
    cursor: Any


def like_pattern(text: str) -> str:
    """``%text%`` for ``LIKE ? ESCAPE '\\'``: ``text`` anywhere, its ``%``, ``_`` and ``\\`` matched as themselves."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def order_search(text: str) -> tuple[str, list[Any]]:
    """The order search, on ``orders o``: a parenthesised condition and its arguments.

    ``text`` (stripped) anywhere in the order's key, its number, one of its
    SKUs, the buyer's name or e-mail or the ship-to name, in any case. The
    CLI's ``orders list --search`` and the web app's search both use it, so
    they find the same orders. When the text is ASCII without a quote, a
    backslash or a control character, it stands as it is in the canonical
    JSON however that was written (an encoder may escape any other
    character), so a scan of the JSON's text comes first and the JSON is
    parsed only for the rows it matches.
    """
    text = text.strip()
    like = like_pattern(text)
    people = (
        "json_extract(o.canonical, '$.customer.name') LIKE ? ESCAPE '\\'"
        " OR json_extract(o.canonical, '$.customer.email') LIKE ? ESCAPE '\\'"
        " OR json_extract(o.canonical, '$.ship_to.name') LIKE ? ESCAPE '\\'"
    )
    people_args = [like, like, like]
    if text.isascii() and not any(c in '"\\' or c < " " for c in text):
        people = f"(o.canonical LIKE ? ESCAPE '\\' AND ({people}))"
        people_args = [like, *people_args]
    condition = (
        "(o.order_key LIKE ? ESCAPE '\\' OR o.order_number LIKE ? ESCAPE '\\' OR o.skus LIKE ? ESCAPE '\\'"
        f" OR {people})"
    )
    return condition, [like, like, like, *people_args]


def order_where(flt: OrderFilter) -> tuple[str, list[Any]]:
    """The ``WHERE`` clause (on ``orders o``) and arguments of an order filter."""
    sql = " WHERE 1 = 1"
    args: list[Any] = []
    if flt.store is not None:
        sql += " AND o.store = ?"
        args.append(flt.store)
    if flt.status is not None:
        sql += " AND o.status = ?"
        args.append(OrderStatus(flt.status).value)
    if flt.since is not None:
        sql += " AND o.order_date >= ?"
        args.append(flt.since)
    if flt.until is not None:
        sql += " AND o.order_date < ?"
        args.append(flt.until)
    if flt.search:
        condition, found = order_search(flt.search)
        sql += f" AND {condition}"
        args.extend(found)
    return sql, args


_SUMMARY = (
    "SELECT o.store, o.order_key, o.order_number, o.status, o.marketplace_status, o.order_date, o.updated_at,"
    " json_extract(o.canonical, '$.total') AS total, json_extract(o.canonical, '$.currency') AS currency"
    " FROM orders o"
)


def _run(row: sqlite3.Row) -> RunRecord:
    return RunRecord(
        id=row["id"],
        kind=row["kind"],
        store=row["store"],
        sites=row["sites"],
        state=row["state"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        **{name: int(row[name]) for name in RUN_COUNTS},
        error=row["error"],
        cursor=None if row["cursor"] is None else json.loads(row["cursor"]),
    )


@attrs.frozen
class StatusEvent:
    """One change of an order's status or marketplace status (table ``order_events``)."""

    at: str
    source: str
    """``marketplace`` (a sync brought it) or ``host`` (an accept, cancel or push made here)."""
    old_status: str | None
    new_status: str
    old_marketplace_status: str | None
    new_marketplace_status: str | None


class HistoryTables:
    """Run history, paged listings and cancel reasons (mixed into :class:`OrderBook`)."""

    conn: sqlite3.Connection

    RUN_SESSION = "NULL"
    """SQL for the database session a run is started from (``runs.session``); SQLite has none to name."""
    RUN_SESSION_GONE: str | None = None
    """SQL, true of a ``runs`` row whose session has ended; ``None`` where the book cannot tell (SQLite)."""

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:  # pragma: no cover - OrderBook's
        raise NotImplementedError

    def require_order(self, store: str, order_key: str) -> None:  # pragma: no cover - OrderBook's
        raise NotImplementedError

    # -- runs ------------------------------------------------------------------

    def start_run(self, kind: str, store: str, sites: Sequence[str] | None = None) -> int:
        """Record that a sync or push of ``store`` starts now (with this connection's session); the run's id."""
        with self.transaction() as c:
            row = c.execute(
                f"INSERT INTO runs (kind, store, sites, started_at, session) VALUES (?, ?, ?, ?, {self.RUN_SESSION})"
                " RETURNING id",
                (kind, store, ",".join(sites) if sites else None, now_iso()),
            ).fetchone()
        return int(row[0])

    def finish_run(
        self,
        run_id: int,
        state: str,
        counts: Mapping[str, int],
        *,
        error: str | None = None,
        cursor: Any = None,
    ) -> None:
        """Record how a run ended (``done``, ``failed`` or ``interrupted``) with its counters."""
        unknown = set(counts) - set(RUN_COUNTS)
        if unknown:
            raise ValueError(f"unknown run counters: {sorted(unknown)}")
        sets = ", ".join(f"{name} = ?" for name in counts)
        with self.transaction() as c:
            c.execute(
                f"UPDATE runs SET state = ?, ended_at = ?, error = ?, cursor = ?{', ' + sets if sets else ''}"
                " WHERE id = ?",
                (state, now_iso(), error, None if cursor is None else dumps(cursor), *counts.values(), run_id),
            )

    def close_abandoned_runs(self, kind: str, store: str, keep: int, *, alone: bool = True) -> int:
        """End as ``interrupted`` every other ``kind`` run of ``store`` still marked running; how many.

        Called by a run that holds the store's lease. With ``alone`` (the
        lease is exclusive, or no one else shares it) no other process can be
        running that work, so such a row was left by one that was killed or
        cut off before it could record its end. Without it only the runs whose
        database session has ended (:data:`RUN_SESSION_GONE`: a host process
        keeps its book's connection for the whole run); a book that cannot
        tell (SQLite) ends none.
        """
        if not alone and self.RUN_SESSION_GONE is None:
            return 0
        gone = "" if alone else f" AND {self.RUN_SESSION_GONE}"
        with self.transaction() as c:
            cur = c.execute(
                "UPDATE runs SET state = 'interrupted', ended_at = ?, error = ?"
                " WHERE kind = ? AND store = ? AND state = 'running' AND id != ?" + gone,
                (now_iso(), "its process ended before the run did (killed, or cut off)", kind, store, keep),
            )
            return int(cur.rowcount)

    def get_run(self, run_id: int) -> RunRecord:
        """One run; :class:`StoreError` if the id is unknown."""
        row = self.conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise StoreError(f"no run with id {run_id}: see `runs list`")
        return _run(row)

    def list_runs(
        self, *, store: str | None = None, kind: str | None = None, limit: int | None = None, offset: int = 0
    ) -> Page[RunRecord]:
        """Runs, newest first."""
        where = " WHERE 1 = 1"
        args: list[Any] = []
        if store is not None:
            where += " AND store = ?"
            args.append(store)
        if kind is not None:
            where += " AND kind = ?"
            args.append(kind)
        total = int(self.conn.execute("SELECT count(*) FROM runs" + where, args).fetchone()[0])
        rows = self.conn.execute(
            "SELECT * FROM runs" + where + " ORDER BY id DESC LIMIT ? OFFSET ?", [*args, limit or -1, offset]
        )
        return Page([_run(r) for r in rows], total, offset)

    def last_sync_starts(self) -> dict[str, str]:
        """When each store's latest sync began (ISO, UTC), whatever its outcome; stores never synced are absent."""
        rows = self.conn.execute(
            "SELECT store, started_at FROM runs"
            " WHERE id IN (SELECT max(id) FROM runs WHERE kind = 'sync' GROUP BY store)"
        )
        return {str(store): str(started) for store, started in rows}

    # -- orders ----------------------------------------------------------------

    def page_orders(self, flt: OrderFilter, *, limit: int | None = 100, offset: int = 0) -> Page[OrderSummary]:
        """Order summaries matching ``flt``, newest first, with how many match in all."""
        where, args = order_where(flt)
        total = int(self.conn.execute("SELECT count(*) FROM orders o" + where, args).fetchone()[0])
        rows = self.conn.execute(
            _SUMMARY + where + " ORDER BY o.order_date DESC, o.store, o.order_key LIMIT ? OFFSET ?",
            [*args, -1 if limit is None else limit, offset],
        )
        return Page([order_summary(r) for r in rows], total, offset)

    def iter_order_documents(self, flt: OrderFilter) -> Iterator[sqlite3.Row]:
        """Every order matching ``flt`` (oldest first) as its stored columns, read as a stream.

        Each row has ``canonical``, ``raw`` and the host's own columns
        (``status``, ``marketplace_status``, ``marketplace_status_name``,
        ``host_changed_at``, ``notes``, ``cancel_reason``), for
        :func:`~connector_core.db.rows.order_from_db`.
        """
        where, args = order_where(flt)
        yield from self.conn.execute(
            "SELECT o.canonical, o.raw, o.status, o.marketplace_status, o.marketplace_status_name,"
            " o.host_changed_at, o.cancel_reason, n.notes FROM orders o"
            " LEFT JOIN order_notes n ON n.store = o.store AND n.order_key = o.order_key"
            + where
            + " ORDER BY o.order_date, o.store, o.order_key",
            args,
        )

    # -- cancel reasons ----------------------------------------------------------

    def status_history(self, store: str, order_key: str) -> list[StatusEvent]:
        """Every status change of one order, oldest first (empty if its status never changed)."""
        rows = self.conn.execute(
            "SELECT at, source, old_status, new_status, old_marketplace_status, new_marketplace_status"
            " FROM order_events WHERE store = ? AND order_key = ? ORDER BY id",
            (store, order_key),
        )
        return [StatusEvent(*row) for row in rows]

    def set_cancel_reason(self, store: str, order_key: str, reason: str | None) -> None:
        """Keep why the host cancelled an order (beside the marketplace's copy: a re-sync keeps it)."""
        self.require_order(store, order_key)
        with self.transaction() as c:
            c.execute(
                "UPDATE orders SET cancel_reason = ? WHERE store = ? AND order_key = ?",
                (reason or None, store, order_key),
            )

    def get_cancel_reason(self, store: str, order_key: str) -> str | None:
        """Why the host cancelled the order, if it was given a reason."""
        row = self.conn.execute(
            "SELECT cancel_reason FROM orders WHERE store = ? AND order_key = ?", (store, order_key)
        ).fetchone()
        return None if row is None else row[0]

    # -- quarantine ----------------------------------------------------------------

    def page_rejected(
        self,
        *,
        store: str | None = None,
        since: str | None = None,
        until: str | None = None,
        search: str | None = None,
        limit: int | None = 100,
        offset: int = 0,
    ) -> Page[RejectedRow]:
        """Quarantined payloads, newest first, with how many match in all."""
        where = " WHERE 1 = 1"
        args: list[Any] = []
        if store is not None:
            where += " AND store = ?"
            args.append(store)
        if since is not None:
            where += " AND created_at >= ?"
            args.append(since)
        if until is not None:
            where += " AND created_at < ?"
            args.append(until)
        if search:
            like = like_pattern(search.strip())
            where += " AND (order_key LIKE ? ESCAPE '\\' OR reason LIKE ? ESCAPE '\\' OR payload LIKE ? ESCAPE '\\')"
            args.extend([like] * 3)
        total = int(self.conn.execute("SELECT count(*) FROM rejected" + where, args).fetchone()[0])
        rows = self.conn.execute(
            "SELECT * FROM rejected" + where + " ORDER BY id DESC LIMIT ? OFFSET ?",
            [*args, -1 if limit is None else limit, offset],
        )
        return Page([rejected_row(r) for r in rows], total, offset)
