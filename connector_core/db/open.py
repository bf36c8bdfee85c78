"""Open the order book named by ``--db`` / ``$CONNECTOR_HOST_DB``: an SQLite file, or a PostgreSQL URL."""

from __future__ import annotations

import os

from connector_core.db.book import OrderBook
from connector_core.db.connection import DB_ENV
from connector_core.db.storage import OrderStore
from connector_core.db.target import is_db_url
from connector_core.errors import StoreError


def open_book(target: str | os.PathLike[str] | None = None) -> OrderStore:
    """The order book at ``target``: a ``postgresql://`` (or ``postgres://``) URL, else an SQLite file.

    ``None`` means ``$CONNECTOR_HOST_DB`` (which may be a URL too), else the
    default file. SQLite stays the default; PostgreSQL needs the optional
    ``postgres`` extra, and its absence is a one-line error saying so.
    """
    if target is None and is_db_url(os.environ.get(DB_ENV)):
        target = os.environ[DB_ENV]
    if isinstance(target, str) and is_db_url(target):
        try:
            from connector_core.db.postgres.book import PostgresBook
        except ImportError:
            raise StoreError("a PostgreSQL order book needs psycopg: pip install 'connector-core[postgres]'") from None
        return PostgresBook(target.strip())  # type: ignore[return-value]
    return OrderBook(target)  # type: ignore[return-value]
