"""The order book: connection and transactions, migrations, row forms, the book and its outboxes.

``db`` imports no feature module (sync, push, notify, cli ...): they call it.
:class:`~connector_core.db.storage.OrderStore` is the interface the engine
uses; :class:`~connector_core.db.book.OrderBook` is its SQLite implementation
(the embedded default), so a second backend can be added without touching
the engine.
"""

from connector_core.db.book import OrderBook
from connector_core.db.connection import DB_ENV, default_db_path
from connector_core.db.rows import (
    AcceptEntry,
    OrderRow,
    OrderSummary,
    OutboxEntry,
    PageStats,
    Reject,
    RejectedRow,
    StoreRecord,
    order_from_row,
    order_hash,
    prepare_row,
)
from connector_core.db.storage import OrderStore
from connector_core.errors import ConfigError


def open_book(target: str | None = None) -> OrderBook:
    """The order book at ``target``: a SQLite file path (default location if ``None``).

    A ``postgresql://`` URL is refused with a one-line error until the
    PostgreSQL book is available, rather than being taken for a file name.
    """
    if target is not None and target.startswith(("postgresql://", "postgres://")):
        raise ConfigError("a PostgreSQL order book is not available in this version: give a SQLite file as --db")
    return OrderBook(target)


__all__ = [
    "DB_ENV",
    "AcceptEntry",
    "OrderBook",
    "OrderRow",
    "OrderStore",
    "OrderSummary",
    "OutboxEntry",
    "PageStats",
    "Reject",
    "RejectedRow",
    "StoreRecord",
    "default_db_path",
    "open_book",
    "order_from_row",
    "order_hash",
    "prepare_row",
]
