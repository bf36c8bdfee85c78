"""The read queries behind the listings: orders with filters, paging, sort and counts; store summaries.

The order book's own listing (:meth:`OrderBook.list_orders`) has no search,
paging or counts, which a page of a 10,000-order book needs; these are single
SQL statements over its tables (``bench/web.py`` measures them).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from datetime import date
from typing import Any

import attrs

from connector_core.db.history import order_search
from connector_core.errors import ConfigError
from connector_core.models import CANONICAL_STATUSES

SORTS: dict[str, str] = {
    "date": "o.order_date",
    "number": "o.order_number",
    "store": "o.store",
    "status": "o.status",
    "total": "CAST(json_extract(o.canonical, '$.total') AS REAL)",
    "updated": "o.updated_at",
}
MAX_PAGE_SIZE = 500


@attrs.frozen
class OrderFilter:
    """What the orders list shows: filters, sort and page, typed from the query string."""

    store: str | None = None
    status: str | None = None
    date_from: str | None = None
    date_to: str | None = None
    q: str | None = None
    sort: str = "date"
    descending: bool = True
    page: int = 1
    page_size: int = 50

    @classmethod
    def from_query(cls, params: Mapping[str, str], page_size: int = 50) -> OrderFilter:
        """Parse ``?store=&status=&from=&to=&q=&sort=&dir=&page=&size=``; :class:`ConfigError` says what is wrong."""

        def text(name: str) -> str | None:
            value = (params.get(name) or "").strip()
            return value or None

        status = text("status")
        if status is not None and status not in CANONICAL_STATUSES:
            raise ConfigError(f"status must be one of {', '.join(CANONICAL_STATUSES)}")
        days: dict[str, str | None] = {}
        for name in ("from", "to"):
            value = text(name)
            if value is not None:
                try:
                    value = date.fromisoformat(value).isoformat()
                except ValueError:
                    raise ConfigError(f"{name} must be a date such as 2026-12-01") from None
            days[name] = value
        sort = text("sort") or "date"
        if sort not in SORTS:
            raise ConfigError(f"sort must be one of {', '.join(SORTS)}")
        try:
            page = max(1, int(text("page") or "1"))
            size = min(MAX_PAGE_SIZE, max(1, int(text("size") or str(page_size))))
        except ValueError:
            raise ConfigError("page and size are whole numbers") from None
        return cls(
            store=text("store"),
            status=status,
            date_from=days["from"],
            date_to=days["to"],
            q=text("q"),
            sort=sort,
            descending=(text("dir") or "desc") != "asc",
            page=page,
            page_size=size,
        )

    def query(self, **changes: Any) -> dict[str, str]:
        """The query string of this filter with ``changes`` (for links: next page, sort by ...)."""
        values = attrs.evolve(self, **changes)
        out = {
            "store": values.store,
            "status": values.status,
            "from": values.date_from,
            "to": values.date_to,
            "q": values.q,
            "sort": values.sort if values.sort != "date" else None,
            "dir": None if values.descending else "asc",
            "page": str(values.page) if values.page != 1 else None,
            "size": str(values.page_size) if values.page_size != 50 else None,
        }
        return {k: v for k, v in out.items() if v}


@attrs.frozen
class OrderLine:
    """One row of the orders list."""

    store: str
    order_key: str
    order_number: str
    status: str
    marketplace_status: str
    order_date: str
    buyer: str | None
    email: str | None
    total: str
    currency: str
    items: int
    country: str | None


@attrs.frozen
class OrderPage:
    """One page of the orders list and the counts around it."""

    lines: tuple[OrderLine, ...]
    total: int
    by_status: dict[str, int]
    filter: OrderFilter

    @property
    def pages(self) -> int:
        """How many pages the filter has."""
        return max(1, -(-self.total // self.filter.page_size))


def _where(f: OrderFilter, *, with_status: bool) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    args: list[Any] = []
    if f.store:
        clauses.append("o.store = ?")
        args.append(f.store)
    if with_status and f.status:
        clauses.append("o.status = ?")
        args.append(f.status)
    if f.date_from:
        clauses.append("o.order_date >= ?")
        args.append(f.date_from)
    if f.date_to:
        clauses.append("o.order_date < date(?, '+1 day')")
        args.append(f.date_to)
    if f.q:
        condition, found = order_search(f.q)
        clauses.append(condition)
        args += found
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


_LINE_COLUMNS = (
    "SELECT o.store, o.order_key, o.order_number, o.status, o.marketplace_status, o.order_date,"
    " json_extract(o.canonical, '$.customer.name') AS buyer,"
    " json_extract(o.canonical, '$.customer.email') AS email,"
    " json_extract(o.canonical, '$.total') AS total, json_extract(o.canonical, '$.currency') AS currency,"
    " json_array_length(o.canonical, '$.items') AS items,"
    " json_extract(o.canonical, '$.ship_to.country') AS country"
)


def _line(r: sqlite3.Row) -> OrderLine:
    return OrderLine(
        store=r["store"],
        order_key=r["order_key"],
        order_number=r["order_number"],
        status=r["status"],
        marketplace_status=r["marketplace_status"],
        order_date=r["order_date"],
        buyer=r["buyer"],
        email=r["email"],
        total=str(r["total"]),
        currency=str(r["currency"]),
        items=int(r["items"] or 0),
        country=r["country"],
    )


def _lines(conn: sqlite3.Connection, keys: list[tuple[str, str]]) -> tuple[OrderLine, ...]:
    """The list's columns of the orders ``keys``, in that order (the JSON is read for these rows only)."""
    sql = f"{_LINE_COLUMNS} FROM orders o WHERE o.store = ? AND o.order_key = ?"  # one primary-key lookup each
    out = []
    for key in keys:
        row = conn.execute(sql, key).fetchone()
        if row is not None:
            out.append(_line(row))
    return tuple(out)


def _sort_key(value: Any) -> tuple[int, Any]:
    return (0, 0) if value is None else (1, value)  # NULL first when ascending, as SQLite sorts


def order_page(conn: sqlite3.Connection, f: OrderFilter) -> OrderPage:
    """The page of orders ``f`` asks for, the number that match, and the counts by status.

    Without a search, the counts come from the status index and the page's
    keys from one sorted scan; the JSON columns are read for the page's rows
    only. A search reads every order's text once: its matches (key, status,
    sort value) are counted, sorted and paged here.
    """
    offset = (f.page - 1) * f.page_size
    by_status = {s: 0 for s in CANONICAL_STATUSES}
    if not f.q:
        where_all, args_all = _where(f, with_status=False)
        for r in conn.execute(f"SELECT o.status, count(*) FROM orders o{where_all} GROUP BY o.status", args_all):
            by_status[r[0]] = int(r[1])
        where, args = _where(f, with_status=True)
        direction = "DESC" if f.descending else "ASC"
        keys = [
            (r[0], r[1])
            for r in conn.execute(
                f"SELECT o.store, o.order_key FROM orders o{where}"
                f" ORDER BY {SORTS[f.sort]} {direction}, o.store, o.order_key LIMIT ? OFFSET ?",
                [*args, f.page_size, offset],
            )
        ]
    else:
        where_all, args_all = _where(f, with_status=False)
        hits = conn.execute(
            f"SELECT o.store, o.order_key, o.status, {SORTS[f.sort]} FROM orders o{where_all}", args_all
        ).fetchall()
        for hit in hits:
            by_status[hit[2]] = by_status.get(hit[2], 0) + 1
        chosen = [(h[0], h[1], h[3]) for h in hits if not f.status or h[2] == f.status]
        chosen.sort(key=lambda h: (h[0], h[1]))
        chosen.sort(key=lambda h: _sort_key(h[2]), reverse=f.descending)  # stable: ties stay by store, key
        keys = [(h[0], h[1]) for h in chosen[offset : offset + f.page_size]]
    total = by_status.get(f.status, 0) if f.status else sum(by_status.values())
    return OrderPage(lines=_lines(conn, keys), total=total, by_status=by_status, filter=f)


@attrs.frozen
class StoreSummary:
    """One store on the stores page."""

    name: str
    marketplace: str
    created_at: str
    last_sync: str | None
    by_status: dict[str, int]
    orders: int
    pending_shipments: int
    failed_shipments: int
    rejected: int


def store_summaries(conn: sqlite3.Connection) -> list[StoreSummary]:
    """Every store with its counts (one query per table, not per store)."""
    counts: dict[str, dict[str, int]] = {}
    for r in conn.execute("SELECT store, status, count(*) FROM orders GROUP BY store, status"):
        counts.setdefault(r[0], {})[r[1]] = int(r[2])
    outbox: dict[tuple[str, str], int] = {
        (r[0], r[1]): int(r[2]) for r in conn.execute("SELECT store, state, count(*) FROM outbox GROUP BY store, state")
    }
    rejected = {
        r[0]: int(r[1])
        for r in conn.execute("SELECT store, count(*) FROM rejected WHERE retried_at IS NULL GROUP BY store")
    }
    cursors = {r[0]: r[1] for r in conn.execute("SELECT store, updated_at FROM cursors")}
    out = []
    for r in conn.execute("SELECT name, marketplace, created_at FROM stores ORDER BY name"):
        by_status = {s: counts.get(r[0], {}).get(s, 0) for s in CANONICAL_STATUSES}
        out.append(
            StoreSummary(
                name=r[0],
                marketplace=r[1],
                created_at=r[2],
                last_sync=cursors.get(r[0]),
                by_status=by_status,
                orders=sum(by_status.values()),
                pending_shipments=outbox.get((r[0], "pending"), 0),
                failed_shipments=outbox.get((r[0], "failed"), 0),
                rejected=rejected.get(r[0], 0),
            )
        )
    return out
