"""A DB-API adapter that lets the order book's SQLite-dialect SQL run on psycopg 3.

The book's SQL is written once, with ``?`` placeholders, rows read by
position or by name (``sqlite3.Row``), ``conn.in_transaction`` and
``sqlite3`` exceptions caught by the code that runs it. :class:`PgConnection`
gives the same surface over a psycopg connection: placeholders become
``%s`` (outside string literals), ``LIMIT -1`` (SQLite's "no limit") means
``LIMIT ALL``, ``x IS ?`` is ``IS NOT DISTINCT FROM``, ``LIKE`` is ``ILIKE`` (SQLite's
``LIKE`` ignores case, PostgreSQL's does not: a search finds the same orders on both; PostgreSQL
also folds letters beyond ASCII, which SQLite leaves as they are), ``BEGIN IMMEDIATE`` becomes ``BEGIN``,
rows are :class:`PgRow`, and psycopg's errors are re-raised as the matching
``sqlite3`` exception (an integrity error stays an integrity error), so the
shared code's error handling holds on both backends.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from typing import Any

import psycopg
from psycopg import pq

from connector_core.db.target import mask_url
from connector_core.errors import StoreError

_TOKEN = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\?|%|(?<!\w)LIKE(?!\w)")


@lru_cache(maxsize=1024)
def translate(sql: str) -> str:
    """``sql`` in psycopg's placeholder style: ``?`` -> ``%s``, a literal ``%`` -> ``%%``, ``LIKE`` -> ``ILIKE``.

    Nothing inside quotes is changed.
    """

    def swap(m: re.Match[str]) -> str:
        tok = m.group(0)
        if tok == "?":
            return "%s"
        if tok == "%":
            return "%%"
        if tok == "LIKE":
            return "ILIKE"
        return tok

    out = _TOKEN.sub(
        swap, sql.replace("LIMIT ?", "LIMIT NULLIF(?, -1)").replace(" IS ?", " IS NOT DISTINCT FROM ?")
    )  # SQLite's "no limit" is -1
    if out.lstrip().upper().startswith("BEGIN IMMEDIATE"):
        return "BEGIN"
    return out


class PgRow(Sequence[Any]):
    """A row readable like ``sqlite3.Row``: ``row[0]``, ``row["name"]``, ``row.keys()``, ``dict(row)``."""

    __slots__ = ("_names", "_values")

    def __init__(self, names: tuple[str, ...], values: tuple[Any, ...]) -> None:
        self._names = names
        self._values = values

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            try:
                return self._values[self._names.index(key)]
            except ValueError:
                raise IndexError(f"no such column: {key}") from None
        return self._values[key]

    def __len__(self) -> int:
        return len(self._values)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __eq__(self, other: object) -> bool:
        return tuple(self) == tuple(other) if isinstance(other, (PgRow, tuple)) else NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def keys(self) -> list[str]:
        return list(self._names)

    def __repr__(self) -> str:
        return f"PgRow({dict(zip(self._names, self._values, strict=True))!r})"


def _row_factory(cursor: psycopg.Cursor[Any]) -> Any:
    names = tuple(c.name for c in cursor.description or ())

    def make(values: Sequence[Any]) -> PgRow:
        return PgRow(names, tuple(values))

    return make


def _as_sqlite_error(exc: psycopg.Error) -> sqlite3.Error:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, psycopg.errors.IntegrityError):
        return sqlite3.IntegrityError(text)
    if isinstance(exc, psycopg.OperationalError):
        return sqlite3.OperationalError(text)
    if isinstance(exc, psycopg.ProgrammingError):
        return sqlite3.OperationalError(text)
    return sqlite3.DatabaseError(text)


def _params(params: Sequence[Any] | None) -> Sequence[Any] | None:
    if params is None:
        return None
    # SQLite keeps booleans as integers; so does the PostgreSQL schema
    return [int(p) if isinstance(p, bool) else p for p in params]


class PgCursor:
    """The result of :meth:`PgConnection.execute`: ``fetchone``, ``fetchall``, iteration, ``rowcount``."""

    def __init__(self, cur: psycopg.Cursor[Any]) -> None:
        self._cur = cur

    @property
    def rowcount(self) -> int:
        return self._cur.rowcount

    def fetchone(self) -> Any:
        return self._cur.fetchone() if self._cur.description else None

    def fetchall(self) -> list[Any]:
        return self._cur.fetchall() if self._cur.description else []

    def fetchmany(self, size: int = 1) -> list[Any]:
        return self._cur.fetchmany(size) if self._cur.description else []

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())


class PgConnection:
    """One autocommit psycopg connection, spoken to like the ``sqlite3`` connection the book uses."""

    def __init__(self, url: str, *, connect_timeout: int = 10, options: dict[str, Any] | None = None) -> None:
        self.url = url
        try:
            self._conn = psycopg.connect(url, autocommit=True, connect_timeout=connect_timeout, **(options or {}))
        except psycopg.Error as exc:
            detail = mask_url(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
            raise StoreError(f"cannot connect to the order book at {mask_url(url)}: {detail}") from None
        self._conn.row_factory = _row_factory

    def __repr__(self) -> str:
        return f"PgConnection({mask_url(self.url)!r})"

    @property
    def raw(self) -> psycopg.Connection[Any]:
        """The psycopg connection underneath (for PostgreSQL-only statements)."""
        return self._conn

    @property
    def in_transaction(self) -> bool:
        return self._conn.info.transaction_status != pq.TransactionStatus.IDLE

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> PgCursor:
        try:
            if params is None:  # no placeholders to fill: a literal % stays as written
                text = "BEGIN" if sql.lstrip().upper().startswith("BEGIN IMMEDIATE") else sql
                cur = self._conn.execute(text)  # type: ignore[arg-type]
            else:
                cur = self._conn.execute(translate(sql), _params(params))  # type: ignore[arg-type]
        except psycopg.Error as exc:
            raise _as_sqlite_error(exc) from None
        return PgCursor(cur)

    def executemany(self, sql: str, seq: Iterable[Sequence[Any]]) -> PgCursor:
        cur = self._conn.cursor()
        try:
            cur.executemany(translate(sql), [_params(p) for p in seq])  # type: ignore[arg-type,misc]
        except psycopg.Error as exc:
            raise _as_sqlite_error(exc) from None
        return PgCursor(cur)

    def close(self) -> None:
        self._conn.close()

    @property
    def closed(self) -> bool:
        return self._conn.closed
